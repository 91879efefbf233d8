//! Images for a pod's containers (Kubernetes' pkg/kubelet/images): present or pulled per
//! imagePullPolicy, with the pod's pull secrets, the Pulling/Pulled/Failed/BackOff events,
//! and a back-off per container after a failed pull (ImagePullBackOff).

use std::time::Instant;

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_cri::{Cri, v1};

use crate::Config;
use crate::backoff::Backoff;
use crate::events::Recorder;
use crate::pull_secrets;

/// One pod worker's image manager.
pub struct Manager {
    cri: Cri,
    client: kube::Client,
    events: Recorder,
    /// Per container name: pulls that failed wait this out before the next try.
    backoff: Backoff,
}

/// The pull policy when the container names none: Always for `:latest` or no tag, else
/// IfNotPresent.
fn default_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or_default();
    let tag = last.split_once(':').map(|(_, t)| t);
    if image.contains('@') || tag.is_some_and(|t| t != "latest") {
        "IfNotPresent"
    } else {
        "Always"
    }
}

impl Manager {
    /// No pull tried yet; back-offs as the kubelet's `config` has them.
    pub fn new(cri: Cri, client: kube::Client, config: &Config) -> Manager {
        Manager {
            cri,
            client,
            events: config.events.clone(),
            backoff: Backoff::new(config.backoff_initial, config.backoff_max),
        }
    }

    /// The image id to run `container` of `pod` (in `namespace`, in the sandbox made from
    /// `sandbox_config`) with. `Err` is the container's waiting reason and message.
    pub async fn ensure_image(
        &mut self,
        pod: &Pod,
        namespace: &str,
        container: &Container,
        sandbox_config: &v1::PodSandboxConfig,
    ) -> Result<String, (String, String)> {
        let image = container.image.clone().unwrap_or_default();
        let policy = (container.image_pull_policy.as_deref()).unwrap_or(default_policy(&image));
        let err = |reason: &str, e: skiff_cri::Error| (reason.to_owned(), e.to_string());
        let events = self.events.container(pod, &container.name);
        if policy != "Always" {
            let present = self
                .cri
                .image_status(&image)
                .await
                .map_err(|e| err("ErrImageInspect", e))?;
            match (present, policy) {
                (Some(found), _) => {
                    events.present(&image);
                    return Ok(found.id);
                }
                (None, "Never") => {
                    return Err((
                        "ErrImageNeverPull".into(),
                        format!("image {image} is not present with pull policy of Never"),
                    ));
                }
                (None, _) => {}
            }
        }
        let key = &container.name;
        if self.backoff.since_update(key) {
            events.pull_backoff(&image);
            return Err((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image {image:?}"),
            ));
        }
        events.pulling(&image);
        let pull_started = Instant::now();
        match self.pull(pod, namespace, &image, sandbox_config).await {
            Ok(reference) => {
                events.pulled(&image, pull_started.elapsed());
                self.backoff.reset(key);
                Ok(reference)
            }
            Err(e) => {
                events.pull_failed(&image, &e.to_string());
                self.backoff.next(key);
                Err(err("ErrImagePull", e))
            }
        }
    }

    /// PullImage with the pod's pull secrets that match the image, each in turn until one
    /// works (the last error if none does); anonymously when none match.
    async fn pull(
        &self,
        pod: &Pod,
        namespace: &str,
        image: &str,
        sandbox_config: &v1::PodSandboxConfig,
    ) -> Result<String, skiff_cri::Error> {
        let credentials = pull_secrets::credentials(&self.client, pod, namespace, image).await;
        let mut tries = credentials.into_iter();
        // The first credential, or none at all.
        let mut result = self
            .cri
            .pull_image(image, tries.next(), Some(sandbox_config))
            .await;
        for auth in tries {
            if result.is_ok() {
                break;
            }
            result = self
                .cri
                .pull_image(image, Some(auth), Some(sandbox_config))
                .await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pull_policies() {
        for (image, policy) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("localhost:5000/nginx", "Always"),
            ("localhost:5000/nginx:1", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
        ] {
            assert_eq!(default_policy(image), policy, "{image}");
        }
    }
}
