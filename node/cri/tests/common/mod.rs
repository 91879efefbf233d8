//! What the containerd test files share: a containerd on a bridge network of its own (the
//! reference `bridge` + `host-local` CNI plugins) and an HTTP check from the host.
#![allow(dead_code)] // Each test binary uses its own part.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skiff_cri::Cri;
use skiff_testenv::{Containerd, ContainerdConfig, images, wait_ready};

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

/// One test's world; fields drop in order: client, containerd (removes its pods), bridge, files.
pub struct Lab {
    pub cri: Cri,
    pub containerd: Containerd,
    pub subnet: Ipv4Addr,
    pub _bridge: skiff_testenv::bridge::Bridge,
    pub dir: Dir,
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
    let bridge = skiff_testenv::bridge::Bridge(bridge_name.clone());
    let conf_dir = dir.0.join("cni");
    skiff_testenv::bridge::write_conflist(&conf_dir, &dir.0.join("ipam"), &bridge_name, subnet)
        .unwrap();

    let started = Instant::now();
    let mut config = ContainerdConfig::new(
        &dir.0.join("containerd"),
        Path::new("/usr/lib/cni"),
        &conf_dir,
    );
    config.docker_io_mirror = docker_io_mirror.map(str::to_owned);
    let containerd = Containerd::start(&config).unwrap();
    eprintln!("containerd up (CRI answers) in {:?}", started.elapsed());
    let started = Instant::now();
    let cache = tmp.join("images");
    if docker_io_mirror.is_some() {
        containerd
            .import(&images::pause_archive(&cache).unwrap())
            .unwrap();
    } else {
        containerd.import_test_images(&cache).unwrap();
    }
    eprintln!("images built/imported in {:?}", started.elapsed());

    let cri = Cri::connect(containerd.socket()).await.unwrap();
    wait_ready(&cri, Duration::from_secs(10)).await.unwrap();
    Lab {
        cri,
        containerd,
        subnet,
        _bridge: bridge,
        dir,
    }
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
