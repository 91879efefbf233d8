//! What the containerd test files share: a containerd on a bridge network of its own (the
//! reference `bridge` + `host-local` CNI plugins) and an HTTP check from the host.
#![allow(dead_code)] // Each test binary uses its own part.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skiff_cri::{Cri, v1};
use skiff_testenv::images::Image;
use skiff_testenv::{ContainerRuntime, ContainerdConfig, Ready};

/// The test's files, under the target dir (CARGO_TARGET_TMPDIR) and removed on drop.
pub struct Dir(pub PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A /24 and bridge name unique to this process and test, so parallel runs do not collide.
pub fn network(pid: u32, test: u32) -> (String, Ipv4Addr) {
    let third = ((pid / 50 * 4 + test) % 256) as u8;
    let subnet = Ipv4Addr::new(10, 200 + (pid % 50) as u8, third, 0);
    (format!("skcri{test}-{pid}"), subnet)
}

/// One test's world; fields drop in order: client and containerd (removes its pods), bridge,
/// files.
pub struct Lab {
    pub runtime: ContainerRuntime,
    pub subnet: Ipv4Addr,
    pub _bridge: skiff_testenv::bridge::Bridge,
    pub dir: Dir,
}

impl Lab {
    pub fn cri(&self) -> &Cri {
        &self.runtime.cri
    }
}

/// Panics unless the test runs as root.
pub fn require_root() {
    assert!(
        // SAFETY: geteuid(2) has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "the containerd tests need root (run them through `cargo xtask test node`)"
    );
}

/// Starts a containerd on a bridge network of its own, with the pause and busybox images
/// imported, and waits until CRI reports the runtime and the network ready.
pub async fn lab(test: u32) -> Lab {
    lab_with(test, None).await
}

/// [`lab`], with `docker_io_mirror` (a registry's address) as containerd's docker.io: then
/// only the pause image is imported and everything else is pulled.
pub async fn lab_with(test: u32, docker_io_mirror: Option<&str>) -> Lab {
    require_root();
    let pid = std::process::id();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = Dir(tmp.join(format!("cri-{pid}-{test}")));
    let (bridge_name, subnet) = network(pid, test);
    let (mut config, bridge) = ContainerdConfig::on_bridge(&dir.0, &bridge_name, subnet).unwrap();
    config.docker_io_mirror = docker_io_mirror.map(str::to_owned);
    let images: &[Image] = match docker_io_mirror {
        Some(_) => &[Image::Pause],
        None => &[Image::Pause, Image::Busybox],
    };
    let runtime =
        ContainerRuntime::start_with(&config, &tmp.join("images"), images, Ready::Network)
            .await
            .unwrap();
    Lab {
        runtime,
        subnet,
        _bridge: bridge,
        dir,
    }
}

/// A pod [`run_pod`] started.
pub struct Running {
    pub pod: String,
    pub sandbox: v1::PodSandboxStatus,
    pub ip: Ipv4Addr,
    pub container: String,
}

/// RunPodSandbox, then CreateContainer + StartContainer of `container` in it.
pub async fn run_pod(
    cri: &Cri,
    sandbox: &v1::PodSandboxConfig,
    container: &v1::ContainerConfig,
) -> Running {
    let started = Instant::now();
    let pod = cri.run_pod_sandbox(sandbox, "").await.unwrap();
    eprintln!("RunPodSandbox took {:?}", started.elapsed());
    let status = cri
        .pod_sandbox_status(&pod, false)
        .await
        .unwrap()
        .status
        .unwrap();
    let ip = status.network.as_ref().unwrap().ip.parse().unwrap();
    let started = Instant::now();
    let id = cri
        .create_container(&pod, container, sandbox)
        .await
        .unwrap();
    cri.start_container(&id).await.unwrap();
    eprintln!(
        "CreateContainer + StartContainer took {:?}",
        started.elapsed()
    );
    Running {
        pod,
        sandbox: status,
        ip,
        container: id,
    }
}

/// The container's status.
pub async fn container_state(cri: &Cri, id: &str) -> v1::ContainerStatus {
    cri.container_status(id, false)
        .await
        .unwrap()
        .status
        .unwrap()
}

/// The answer of the pod's server at `addr` to an HTTP GET, within 10 s of now.
pub fn first_answer(addr: SocketAddr) -> String {
    let started = Instant::now();
    let reply = http_get(addr, started + Duration::from_secs(10));
    eprintln!(
        "first HTTP answer from {addr} after {:?}",
        started.elapsed()
    );
    reply
}

/// An HTTP GET to the pod, retried while the server comes up.
pub fn http_get(addr: SocketAddr, deadline: Instant) -> String {
    loop {
        match skiff_testenv::http_get(addr) {
            Ok(reply) if !reply.is_empty() => return reply,
            other if Instant::now() > deadline => panic!("no HTTP answer from {addr}: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
