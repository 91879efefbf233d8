//! skiff-cri against a real containerd (root): a pod on the reference `bridge` + `host-local`
//! CNI plugins, a busybox HTTP server in it that the host reaches, exec, and teardown.
//! Run through `cargo xtask test node`.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Lab, Running, container_state, first_answer, lab, run_pod};
use skiff_cri::{image_spec, v1};
use skiff_testenv::{Checks, ContainerRuntime, images, sandbox_config};

fn httpd_config() -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "httpd".into(),
            attempt: 0,
        }),
        image: Some(image_spec(images::BUSYBOX)),
        command: vec!["httpd".into()],
        args: vec![
            "-f".into(),
            "-p".into(),
            "8080".into(),
            "-h".into(),
            "/var/www".into(),
        ],
        envs: vec![v1::KeyValue {
            key: "GREETING".into(),
            value: "hi".into(),
        }],
        log_path: "httpd.log".into(),
        linux: Some(v1::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

/// One containerd and one pod serve every step; each step's checks run and are reported
/// together (the CRI calls that later steps need stay hard failures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lifecycle_on_bridge_cni() {
    let lab = lab(0).await;
    let cri = lab.cri();
    let subnet = lab.subnet;
    let mut checks = Checks::new();
    let version = cri.version().await.unwrap();
    checks.run("Version", || {
        assert_eq!(version.runtime_name, "containerd");
        assert_eq!(version.runtime_api_version, "v1");
    });

    // Local images: ImageStatus finds them (a PullImage would go to the unreachable registry).
    let busybox_id = cri.ensure_image(images::BUSYBOX).await.unwrap();
    let pause = cri.image_status(images::PAUSE).await.unwrap();
    let absent = cri
        .image_status("docker.io/library/absent:1")
        .await
        .unwrap();
    let listed = cri.list_images(None).await.unwrap();
    checks.run("local images", || {
        assert!(busybox_id.starts_with("sha256:"), "{busybox_id}");
        assert!(pause.is_some());
        assert!(absent.is_none());
        assert!(
            listed
                .iter()
                .any(|i| i.repo_tags.iter().any(|t| t == images::BUSYBOX))
        );
    });

    let logs = lab.dir.0.join("logs");
    let uid = format!("uid-{}", std::process::id());
    let sandbox = sandbox_config("web", &uid, &logs, lab.runtime.containerd.cgroup_parent());
    let Running {
        pod,
        sandbox: status,
        ip,
        container: id,
    } = run_pod(cri, &sandbox, &httpd_config()).await;
    checks.run("the sandbox's state and address", || {
        assert_eq!(status.state(), v1::PodSandboxState::SandboxReady);
        assert_eq!(
            ip.octets()[..3],
            subnet.octets()[..3],
            "pod IP {ip} outside {subnet}/24"
        );
    });
    checks.run("HTTP from the host to the pod", || {
        let reply = first_answer(SocketAddr::from((ip, 8080)));
        assert!(reply.starts_with("HTTP/1."), "{reply}");
    });

    let state = container_state(cri, &id).await;
    let running = cri
        .list_containers(Some(v1::ContainerFilter {
            pod_sandbox_id: pod.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    checks.run("the running container's status and listing", || {
        assert_eq!(state.state(), v1::ContainerState::ContainerRunning);
        assert_eq!(running.len(), 1);
    });

    let exec = cri
        .exec_sync(
            &id,
            &["sh", "-c", "echo $GREETING"],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let failed = cri
        .exec_sync(&id, &["sh", "-c", "exit 3"], Duration::from_secs(10))
        .await
        .unwrap();
    checks.run("ExecSync: output and exit codes", || {
        assert_eq!(exec.exit_code, 0, "{exec:?}");
        assert_eq!(String::from_utf8_lossy(&exec.stdout), "hi\n");
        assert_eq!(failed.exit_code, 3);
    });

    // busybox httpd as PID 1 ignores SIGTERM: no grace period.
    cri.stop_container(&id, Duration::ZERO).await.unwrap();
    let state = container_state(cri, &id).await;
    checks.run("the stopped container's state", || {
        assert_eq!(state.state(), v1::ContainerState::ContainerExited);
    });
    cri.remove_container(&id).await.unwrap();
    cri.stop_pod_sandbox(&pod).await.unwrap();
    cri.remove_pod_sandbox(&pod).await.unwrap();
    let sandboxes = cri.list_pod_sandbox(None).await.unwrap();
    let containers = cri.list_containers(None).await.unwrap();
    checks.run("nothing listed after removal", || {
        assert!(sandboxes.is_empty());
        assert!(containers.is_empty());
    });
    // Idempotent, as the kubelet relies on (containerd itself answers NotFound).
    cri.stop_pod_sandbox(&pod).await.unwrap();
    cri.remove_pod_sandbox(&pod).await.unwrap();
    cri.remove_container(&id).await.unwrap();
    checks.finish();
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(format!(
                    "{}: {cmdline}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
    }
    found
}

/// A test that fails midway leaves running pods behind: dropping the containerd guard must
/// still leave no process, mount, cgroup or file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_containerd_with_running_pods_leaves_nothing() {
    abandon_pod(1, false).await;
}

/// The same when containerd itself died first (no CRI to clean up through): the guard kills
/// the shims and their containers by PID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_crashed_containerd_leaves_nothing() {
    abandon_pod(2, true).await;
}

async fn abandon_pod(test: u32, crash: bool) {
    let lab = lab(test).await;
    let logs = lab.dir.0.join("logs");
    let cgroup_parent = lab.runtime.containerd.cgroup_parent().to_owned();
    let sandbox = sandbox_config("left", "uid-left", &logs, &cgroup_parent);
    let Running {
        pod, container: id, ..
    } = run_pod(lab.cri(), &sandbox, &httpd_config()).await;
    let containerd_dir = lab.dir.0.join("containerd");
    let socket = lab.runtime.containerd.socket().display().to_string();
    assert!(
        !processes_mentioning(&socket).is_empty(),
        "no shim for {socket}?"
    );

    let Lab {
        runtime: ContainerRuntime { cri, containerd },
        _bridge,
        dir,
        ..
    } = lab;
    drop(cri);
    if crash {
        // SAFETY: kill(2) on the PID of containerd, our own unreaped child.
        unsafe { libc::kill(containerd.pid() as libc::pid_t, libc::SIGKILL) };
    }
    let started = Instant::now();
    drop(containerd);
    eprintln!(
        "containerd teardown with one pod took {:?}",
        started.elapsed()
    );

    assert_eq!(processes_mentioning(&socket), Vec::<String>::new());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = containerd_dir.display().to_string();
    let left: Vec<_> = mounts.lines().filter(|l| l.contains(&prefix)).collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    assert!(!containerd_dir.exists());
    let cgroup = Path::new("/sys/fs/cgroup/memory").join(cgroup_parent.trim_start_matches('/'));
    assert!(!cgroup.exists(), "{} left", cgroup.display());
    // State kept outside our dir, named by the pod's id.
    for dir in [
        "/run/containerd/runc/k8s.io",
        "/var/lib/cni/results",
        "/run/containerd/s",
    ] {
        let names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let left: Vec<_> = names
            .iter()
            .filter(|n| n.contains(&pod) || n.contains(&id))
            .collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    drop((_bridge, dir));
}
