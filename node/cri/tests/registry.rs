//! Images pulled for real through CRI (root): the locally built images are served by Debian's
//! docker-registry on loopback, which containerd uses as its docker.io mirror, so a pod
//! manifest's `image: nginx:latest` pulls unmodified. Pull errors and registry credentials
//! (imagePullSecrets) against the same registry. Run through `cargo xtask test node`.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Running, container_state, first_answer, lab_with, require_root, run_pod};
use skiff_cri::{image_spec, v1};
use skiff_testenv::{Checks, Registry, images, sandbox_config};

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
    let cri = lab.cri();
    let mut checks = Checks::new();
    let before = cri.image_status("nginx:latest").await.unwrap();
    checks.run("nginx absent before the pull", || assert!(before.is_none()));

    // The short name, as a pod manifest has it; containerd normalizes it to docker.io.
    let started = Instant::now();
    let image_ref = cri.pull_image("nginx:latest", None, None).await.unwrap();
    eprintln!("PullImage nginx:latest took {:?}", started.elapsed());
    let image = cri
        .image_status("nginx:latest")
        .await
        .unwrap()
        .expect("nginx:latest after the pull");
    let normalized = cri.image_status(images::NGINX).await.unwrap();
    checks.run("the pulled image under its normalized name", || {
        assert_eq!(image.id, image_ref);
        assert!(
            image.repo_tags.iter().any(|t| t == images::NGINX),
            "{image:?}"
        );
        assert!(normalized.is_some());
    });
    for name in ["alpine:latest", "busybox"] {
        cri.pull_image(name, None, None).await.unwrap();
    }

    let logs = lab.dir.0.join("logs");
    let uid = format!("uid-nginx-{}", std::process::id());
    let sandbox = sandbox_config("nginx", &uid, &logs, lab.runtime.containerd.cgroup_parent());
    let Running {
        ip, container: id, ..
    } = run_pod(cri, &sandbox, &nginx_container()).await;
    checks.run("nginx serves its welcome page", || {
        let reply = first_answer(SocketAddr::from((ip, 80)));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("Welcome to nginx!"), "{reply}");
        assert!(reply.contains("Server: nginx"), "{reply}");
    });
    // Workers drop to www-data (from the image's /etc/passwd); busybox gives the image a shell.
    let ps = cri
        .exec_sync(&id, &["ps", "-o", "user,args"], Duration::from_secs(10))
        .await
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    checks.run("nginx's master and www-data workers", || {
        assert!(ps.contains("nginx: master process"), "{ps}");
        assert!(
            ps.lines()
                .any(|l| l.contains("www-data") && l.contains("nginx: worker process")),
            "{ps}"
        );
    });
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
    checks.run("the access log in the CRI log", || {
        assert!(log.contains("\"GET / HTTP/1.0\" 200"), "{log}");
    });

    // The image's StopSignal (SIGQUIT) is nginx's graceful stop: well within the grace period.
    let started = Instant::now();
    cri.stop_container(&id, Duration::from_secs(20))
        .await
        .unwrap();
    let stopped = started.elapsed();
    let state = container_state(cri, &id).await;
    eprintln!(
        "nginx stopped in {stopped:?} (exit code {})",
        state.exit_code
    );
    checks.run("a graceful stop by the image's StopSignal", || {
        assert_eq!(state.state(), v1::ContainerState::ContainerExited);
        assert!(stopped < Duration::from_secs(10), "stop took {stopped:?}");
    });

    // A missing image: what the agent turns into ErrImagePull.
    let err = cri
        .pull_image("absent:latest", None, None)
        .await
        .unwrap_err();
    let message = err.to_string();
    eprintln!("missing image: {message}");
    checks.run("a missing image is NotFound", || {
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
    });
    let err = cri
        .pull_image("nginx:no-such-tag", None, None)
        .await
        .unwrap_err();
    checks.run("a missing tag is not found", || {
        assert!(err.to_string().contains("not found"), "{err}");
    });
    checks.finish();
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
    let cri = lab.cri();
    let mut checks = Checks::new();
    let started = Instant::now();
    let anonymous = cri.pull_image("busybox:latest", None, None).await;
    eprintln!("anonymous PullImage refused in {:?}", started.elapsed());
    checks.run("an anonymous pull is refused", || {
        let message = anonymous.unwrap_err().to_string();
        eprintln!("without credentials: {message}");
        assert!(
            message.contains("401") || message.to_lowercase().contains("unauthorized"),
            "{message}"
        );
    });
    let wrong = v1::AuthConfig {
        username: "puller".into(),
        password: "wrong".into(),
        ..Default::default()
    };
    let wrong = cri.pull_image("busybox:latest", Some(wrong), None).await;
    let status = cri.image_status("busybox:latest").await.unwrap();
    checks.run("a wrong password is refused", || {
        assert!(wrong.is_err());
        assert!(status.is_none());
    });

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
            .await;
        checks.run(
            &format!("credentials scoped to {server} are not sent"),
            || {
                let refused = refused.unwrap_err();
                assert!(refused.to_string().contains("401"), "{server}: {refused}");
            },
        );
    }
    let mirror = format!("http://{}", registry.address());
    let pulled = cri
        .pull_image("busybox:latest", Some(scoped(&mirror)), None)
        .await;
    if checks
        .run("credentials scoped to the mirror pull", || pulled.unwrap())
        .is_some()
    {
        cri.remove_image("busybox:latest").await.unwrap();
    }
    let status = cri.image_status("busybox:latest").await.unwrap();
    checks.run("the image removed before the unscoped pull", || {
        assert!(status.is_none());
    });

    let started = Instant::now();
    let pulled = cri.pull_image("busybox:latest", Some(auth), None).await;
    eprintln!("authenticated PullImage took {:?}", started.elapsed());
    let status = cri.image_status(images::BUSYBOX).await.unwrap();
    checks.run("unscoped credentials pull", || {
        pulled.unwrap();
        assert!(status.is_some());
    });
    checks.finish();
}
