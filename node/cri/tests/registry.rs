//! Images pulled for real through CRI (root): the locally built images are served by Debian's
//! docker-registry on loopback, which containerd uses as its docker.io mirror, so a pod
//! manifest's `image: nginx:latest` pulls unmodified. Pull errors and registry credentials
//! (imagePullSecrets) against the same registry. Run through `cargo xtask test node`.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{http_get, lab_with, require_root};
use skiff_cri::{image_spec, v1};
use skiff_testenv::{Registry, images, sandbox_config};

fn registry_dir(test: u32) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("registry-{}-{test}", std::process::id()))
}

fn image_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("images")
}

/// The container as the seed's Deployment has it: the image's own command.
fn nginx_container() -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "nginx".into(),
            attempt: 0,
        }),
        image: Some(image_spec("nginx:latest")),
        log_path: "nginx.log".into(),
        linux: Some(v1::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_latest_pulls_from_the_loopback_mirror_and_serves_http() {
    require_root();
    let cache = image_cache();
    let started = Instant::now();
    images::nginx_archive(&cache).unwrap();
    images::alpine_archive(&cache).unwrap();
    images::busybox_archive(&cache).unwrap();
    eprintln!("images built (or cached) in {:?}", started.elapsed());
    // Declared before the lab, so it outlives containerd.
    let registry = Registry::start(&registry_dir(3)).unwrap();
    let started = Instant::now();
    registry.push_test_images(&cache).unwrap();
    eprintln!("images pushed in {:?}", started.elapsed());

    // The alpine stand-in says what it is, in the config the registry serves.
    let config = Command::new("skopeo")
        .args(["inspect", "--config", "--tls-verify=false"])
        .arg(format!(
            "docker://{}/library/alpine:latest",
            registry.address()
        ))
        .output()
        .unwrap();
    assert!(config.status.success(), "{config:?}");
    let config = String::from_utf8_lossy(&config.stdout);
    assert!(config.contains(images::STAND_IN_LABEL), "{config}");

    let lab = lab_with(3, Some(registry.address())).await;
    let cri = &lab.cri;
    assert!(cri.image_status("nginx:latest").await.unwrap().is_none());

    // The short name, as a pod manifest has it; containerd normalizes it to docker.io.
    let started = Instant::now();
    let image_ref = cri.pull_image("nginx:latest", None, None).await.unwrap();
    eprintln!("PullImage nginx:latest took {:?}", started.elapsed());
    let image = cri
        .image_status("nginx:latest")
        .await
        .unwrap()
        .expect("nginx:latest after the pull");
    assert_eq!(image.id, image_ref);
    assert!(
        image.repo_tags.iter().any(|t| t == images::NGINX),
        "{image:?}"
    );
    assert!(cri.image_status(images::NGINX).await.unwrap().is_some());
    for name in ["alpine:latest", "busybox"] {
        cri.pull_image(name, None, None).await.unwrap();
    }

    let logs = lab.dir.0.join("logs");
    let uid = format!("uid-nginx-{}", std::process::id());
    let sandbox = sandbox_config("nginx", &uid, &logs, lab.containerd.cgroup_parent());
    let pod = cri.run_pod_sandbox(&sandbox, "").await.unwrap();
    let status = cri
        .pod_sandbox_status(&pod, false)
        .await
        .unwrap()
        .status
        .unwrap();
    let ip: Ipv4Addr = status.network.as_ref().unwrap().ip.parse().unwrap();
    let started = Instant::now();
    let id = cri
        .create_container(&pod, &nginx_container(), &sandbox)
        .await
        .unwrap();
    cri.start_container(&id).await.unwrap();
    let reply = http_get(
        SocketAddr::from((ip, 80)),
        Instant::now() + Duration::from_secs(10),
    );
    eprintln!(
        "nginx create + start + first HTTP answer in {:?}",
        started.elapsed()
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("Welcome to nginx!"), "{reply}");
    assert!(reply.contains("Server: nginx"), "{reply}");
    // Workers drop to www-data (from the image's /etc/passwd); busybox gives the image a shell.
    let ps = cri
        .exec_sync(&id, &["ps", "-o", "user,args"], Duration::from_secs(10))
        .await
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(ps.contains("nginx: master process"), "{ps}");
    assert!(
        ps.lines()
            .any(|l| l.contains("www-data") && l.contains("nginx: worker process")),
        "{ps}"
    );
    // The access log goes to stdout, i.e. the container's CRI log (the shim copies it there
    // asynchronously).
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = std::fs::read_to_string(logs.join("nginx.log")).unwrap_or_default();
        if log.contains("GET /") || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(log.contains("\"GET / HTTP/1.0\" 200"), "{log}");

    // The image's StopSignal (SIGQUIT) is nginx's graceful stop: well within the grace period.
    let started = Instant::now();
    cri.stop_container(&id, Duration::from_secs(20))
        .await
        .unwrap();
    let stopped = started.elapsed();
    let state = cri
        .container_status(&id, false)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(state.state(), v1::ContainerState::ContainerExited);
    assert!(stopped < Duration::from_secs(10), "stop took {stopped:?}");
    eprintln!(
        "nginx stopped in {stopped:?} (exit code {})",
        state.exit_code
    );

    // A missing image: what the agent turns into ErrImagePull.
    let err = cri
        .pull_image("absent:latest", None, None)
        .await
        .unwrap_err();
    let message = err.to_string();
    eprintln!("missing image: {message}");
    assert_eq!(
        err.status().map(tonic::Status::code),
        Some(tonic::Code::NotFound),
        "{message}"
    );
    assert!(message.contains("PullImage"), "{message}");
    assert!(
        message.contains("docker.io/library/absent:latest") && message.contains("not found"),
        "{message}"
    );
    let err = cri
        .pull_image("nginx:no-such-tag", None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
}

/// imagePullSecrets: a registry that wants credentials refuses an anonymous pull and serves one
/// with the username and password the CRI AuthConfig carries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_auth_needs_the_pull_credentials() {
    require_root();
    let cache = image_cache();
    let busybox = images::busybox_archive(&cache).unwrap();
    let started = Instant::now();
    let registry = Registry::start_with_auth(&registry_dir(4), "puller", "s3cret pass").unwrap();
    eprintln!("registry with auth up in {:?}", started.elapsed());
    let started = Instant::now();
    registry.push(&busybox, "library/busybox:latest").unwrap();
    eprintln!("busybox pushed in {:?}", started.elapsed());

    let lab = lab_with(4, Some(registry.address())).await;
    let cri = &lab.cri;
    let started = Instant::now();
    let err = cri
        .pull_image("busybox:latest", None, None)
        .await
        .unwrap_err();
    eprintln!("anonymous PullImage refused in {:?}", started.elapsed());
    let message = err.to_string();
    eprintln!("without credentials: {message}");
    assert!(
        message.contains("401") || message.to_lowercase().contains("unauthorized"),
        "{message}"
    );
    let wrong = v1::AuthConfig {
        username: "puller".into(),
        password: "wrong".into(),
        ..Default::default()
    };
    assert!(
        cri.pull_image("busybox:latest", Some(wrong), None)
            .await
            .is_err()
    );
    assert!(cri.image_status("busybox:latest").await.unwrap().is_none());

    let auth = v1::AuthConfig {
        username: "puller".into(),
        password: "s3cret pass".into(),
        ..Default::default()
    };
    // containerd hands credentials only to a host matching `server_address`, and the host
    // it talks to is the mirror: a secret keyed by docker.io (what the kubelet passes along
    // from a dockerconfigjson) does not reach it; keyed by the mirror's address, or not keyed
    // at all, it does.
    let scoped = |server: &str| v1::AuthConfig {
        server_address: server.into(),
        ..auth.clone()
    };
    for server in ["https://index.docker.io/v1/", "docker.io"] {
        let refused = cri
            .pull_image("busybox:latest", Some(scoped(server)), None)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("401"), "{server}: {refused}");
    }
    let mirror = format!("http://{}", registry.address());
    cri.pull_image("busybox:latest", Some(scoped(&mirror)), None)
        .await
        .unwrap();
    cri.remove_image("busybox:latest").await.unwrap();
    assert!(cri.image_status("busybox:latest").await.unwrap().is_none());

    let started = Instant::now();
    cri.pull_image("busybox:latest", Some(auth), None)
        .await
        .unwrap();
    eprintln!("authenticated PullImage took {:?}", started.elapsed());
    assert!(cri.image_status(images::BUSYBOX).await.unwrap().is_some());
}
