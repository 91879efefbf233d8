//! Container lifecycle hooks: `postStart` runs right after StartContainer (the container is
//! killed when it fails), `preStop` runs before StopContainer and spends the pod's grace
//! period, the rest of which goes to SIGTERM before SIGKILL. Both use the handler actions
//! probes use ([`probe::run_handler`]); an httpGet hook makes the request a probe would (HTTPS
//! unverified, same-host redirects, 10 KiB of the body read) as `kube-lifecycle/<version>`, and
//! any answer counts, as Kubernetes' hook client fails only when no answer comes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use skiff_cri::Cri;

use crate::probe::{self, Handler, HttpCheck, Target};

/// What a container gets between SIGTERM and SIGKILL at least, even when its preStop hook
/// used up the grace period (Kubernetes' minimum, so a container is never SIGKILLed unwarned).
pub const MINIMUM_GRACE: Duration = Duration::from_secs(2);

/// The container event reason Kubernetes records when a postStart hook fails.
pub const FAILED_POST_START: &str = "FailedPostStartHook";
/// The waiting reason of a container whose postStart hook failed (Kubernetes' ErrPostStartHook).
pub const POST_START_ERROR: &str = "PostStartHookError";
/// The container event reason Kubernetes records when a preStop hook fails.
pub const FAILED_PRE_STOP: &str = "FailedPreStopHook";

/// Runs the container's postStart hook, if it has one, to completion (Kubernetes sets it no
/// time limit; the container's start waits for it).
pub async fn post_start(
    cri: &Cri,
    container: &Container,
    container_id: &str,
    pod_ip: Option<IpAddr>,
) -> Result<(), String> {
    let Some(hook) = container
        .lifecycle
        .as_ref()
        .and_then(|l| l.post_start.as_ref())
    else {
        return Ok(());
    };
    let target = Target {
        cri,
        container_id,
        pod_ip,
    };
    probe::run_handler(
        Handler::of_hook(hook),
        container,
        &target,
        None,
        HttpCheck::Answered,
    )
    .await
}

/// Stops a running container the way the kubelet kills one: its preStop hook (if `container`,
/// its spec, has one and there is a grace period) for at most `grace`, then StopContainer
/// with what is left of `grace` (at least [`MINIMUM_GRACE`]): SIGTERM, then SIGKILL.
pub async fn kill_container(
    cri: &Cri,
    container: Option<&Container>,
    container_id: &str,
    pod_ip: Option<IpAddr>,
    grace: Duration,
) -> Result<(), skiff_cri::Error> {
    let mut grace = grace;
    let hook = container.and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref().map(|h| (c, h)));
    if let Some((spec, hook)) = hook
        && !grace.is_zero()
    {
        let started = Instant::now();
        let target = Target {
            cri,
            container_id,
            pod_ip,
        };
        let run = probe::run_handler(
            Handler::of_hook(hook),
            spec,
            &target,
            // ExecSync's own limit, in whole seconds (0 would mean none).
            Some(grace.max(Duration::from_secs(1))),
            HttpCheck::Answered,
        );
        match tokio::time::timeout(grace, run).await {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                tracing::warn!(container = %spec.name, reason = FAILED_PRE_STOP, %message, "preStop hook failed");
            }
            Err(_) => {
                tracing::warn!(container = %spec.name, reason = FAILED_PRE_STOP, ?grace, "preStop hook did not finish within the grace period");
            }
        }
        let left = grace.saturating_sub(started.elapsed());
        // StopContainer counts whole seconds: round up rather than cut the container short.
        grace = Duration::from_secs(left.as_secs() + u64::from(left.subsec_nanos() > 0));
        grace = grace.max(MINIMUM_GRACE);
    }
    cri.stop_container(container_id, grace).await
}
