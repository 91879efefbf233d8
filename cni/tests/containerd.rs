//! containerd runs skiff-cni (root): the node set up as `skiff agent` sets it up (the pod
//! network's `NodeNetwork`, the plugin installed and the conflist written by `skiff-net`), a
//! real containerd (CRI) creating pod sandboxes through it. Each sandbox gets an address from
//! the node's podCIDR and an endpoint in the BPF maps; a pod reaches the other over TCP and is
//! seen there under its own address; removing the sandboxes releases both.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use skiff_cri::{Cri, image_spec, v1};
use skiff_ebpf::net::NetMaps;
use skiff_ebpf::{PinDir, PinGuard};
use skiff_net::Cidr;
use skiff_net::cni_config::{self, PluginConfig};
use skiff_net::network::{Mode, NodeNetwork, Setup};
use skiff_netlink::{NetnsFile, in_netns};
use skiff_testenv::wait::wait_for;
use skiff_testenv::{
    Checks, ContainerRuntime, Containerd, ContainerdConfig, images, sandbox_config,
};

const BIN: &str = env!("CARGO_BIN_EXE_skiff-cni");

/// The test's files under the target dir, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn container(name: &str, command: &[&str]) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(image_spec(images::BUSYBOX)),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(v1::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

async fn run_pod(
    cri: &Cri,
    containerd: &Containerd,
    logs: &Path,
    name: &str,
    command: &[&str],
) -> (String, String, Ipv4Addr) {
    let sandbox = sandbox_config(
        name,
        &format!("uid-{name}"),
        logs,
        containerd.cgroup_parent(),
    );
    let started = Instant::now();
    let pod = cri.run_pod_sandbox(&sandbox, "").await.unwrap();
    eprintln!("RunPodSandbox {name} on skiff-cni: {:?}", started.elapsed());
    let status = cri.pod_sandbox_status(&pod, false).await.unwrap();
    let ip = status.status.unwrap().network.unwrap().ip.parse().unwrap();
    let id = cri
        .create_container(&pod, &container(name, command), &sandbox)
        .await
        .unwrap();
    cri.start_container(&id).await.unwrap();
    (pod, id, ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_sandboxes_on_skiff_cni() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let pid = std::process::id();
    let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = Dir(target_tmp.join(format!("cni-containerd-{pid}")));
    let pod_cidr = Cidr::new(Ipv4Addr::new(10, 246, (pid % 250) as u8, 0), 24);
    let cluster_cidr = Cidr::new(Ipv4Addr::new(10, 246, 0, 0), 16);
    let pins = PinGuard(PinDir::new(format!("/sys/fs/bpf/skiff-test-cri-{pid}")));

    // The node, as the agent sets it up (in this namespace: containerd runs plugins here).
    let _network = NodeNetwork::setup(Setup {
        pod_cidr,
        cluster_cidr,
        mode: Mode::Native,
        uplinks: Vec::new(),
        pins: pins.0.clone(),
        masquerade: false,
        gso_max_size: None,
    })
    .unwrap();
    let bin_dir = dir.0.join("bin");
    cni_config::install_plugin(Path::new(BIN), &bin_dir).unwrap();
    std::os::unix::fs::symlink("/usr/lib/cni/loopback", bin_dir.join("loopback")).unwrap();
    let conf_dir = dir.0.join("net.d");
    cni_config::write(
        &conf_dir,
        &PluginConfig {
            pod_cidr,
            cluster_cidr,
            mtu: 1500,
            gso_max_size: None,
            bpf_pin_dir: pins.0.path().to_owned(),
            data_dir: dir.0.join("ipam"),
        },
    )
    .unwrap();

    let config = ContainerdConfig::new(&dir.0.join("containerd"), &bin_dir, &conf_dir);
    let runtime = ContainerRuntime::start(&config, &target_tmp.join("images"))
        .await
        .unwrap();
    let (cri, containerd) = (&runtime.cri, &runtime.containerd);

    let logs = dir.0.join("logs");
    let (server_pod, _, server_ip) = run_pod(
        cri,
        containerd,
        &logs.join("server"),
        "server",
        &["httpd", "-f", "-v", "-p", "8080", "-h", "/var/www"],
    )
    .await;
    let (client_pod, client, client_ip) = run_pod(
        cri,
        containerd,
        &logs.join("client"),
        "client",
        &["sleep", "3600"],
    )
    .await;
    let mut checks = Checks::new();
    let maps = NetMaps::open(&pins.0).unwrap();
    checks.run("addresses from the podCIDR", || {
        for ip in [server_ip, client_ip] {
            assert!(pod_cidr.contains(ip), "{ip} is outside {pod_cidr}");
        }
        assert_ne!(server_ip, client_ip);
    });
    checks.run("endpoints in the maps", || {
        for ip in [server_ip, client_ip] {
            assert!(maps.endpoint(ip).unwrap().is_some(), "no endpoint for {ip}");
        }
    });

    // From inside the client pod's network namespace (its container's), an HTTP request to
    // the server pod (a 404 is fine: it got there); the server's log names the client by the
    // address it saw, which must be the client pod's own.
    let info = cri.container_status(&client, true).await.unwrap().info;
    let pid = serde_json::from_str::<serde_json::Value>(&info["info"]).unwrap()["pid"]
        .as_u64()
        .expect("the container's pid");
    let netns = NetnsFile::open(format!("/proc/{pid}/ns/net")).unwrap();
    let log = logs.join("server").join("server.log");
    let seen = format!("{client_ip}]");
    let reply = wait_for(
        &format!("the server to log {client_ip}"),
        Duration::from_secs(15),
        async || {
            let reply = in_netns(&netns, || {
                Ok(skiff_testenv::http_get(SocketAddr::from((server_ip, 8080))))
            })
            .unwrap();
            let logged = std::fs::read_to_string(&log).unwrap_or_default();
            if logged.contains(&seen) {
                Ok(reply)
            } else {
                Err(format!("reply {reply:?}, log {logged:?}"))
            }
        },
    )
    .await;
    checks.run(
        "the client reaches the server under its own address",
        || {
            assert!(reply.unwrap().starts_with("HTTP/1."));
        },
    );

    for pod in [&server_pod, &client_pod] {
        cri.stop_pod_sandbox(pod).await.unwrap();
        cri.remove_pod_sandbox(pod).await.unwrap();
    }
    checks.run("endpoints removed with the sandboxes", || {
        for ip in [server_ip, client_ip] {
            assert!(
                maps.endpoint(ip).unwrap().is_none(),
                "{ip} left in the maps"
            );
        }
    });
    checks.run("addresses released with the sandboxes", || {
        let allocated =
            std::fs::read_dir(dir.0.join("ipam/networks").join(cni_config::NETWORK_NAME))
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<Ipv4Addr>().is_ok())
                .count();
        assert_eq!(allocated, 0, "addresses left allocated");
    });
    checks.finish();
}
