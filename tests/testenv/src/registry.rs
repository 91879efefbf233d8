//! An image registry on loopback: Debian's `docker-registry` (distribution 2.8) with a private
//! config and storage, optionally behind htpasswd auth; images are pushed with `skopeo`.
//! containerd uses it as its docker.io mirror ([`crate::ContainerdConfig::docker_io_mirror`]),
//! so `image: nginx:latest` pulls for real.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::images::{self, run};
use crate::{die_with_parent, free_port};

/// A running registry on `127.0.0.1:<port>`; stopped by PID (and its storage deleted) on drop.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    address: String,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// Starts an open registry with its config and storage in `dir` (emptied first) and waits
    /// until it answers `GET /v2/`.
    ///
    /// The registry dies with the thread that calls this (`PR_SET_PDEATHSIG`).
    pub fn start(dir: &Path) -> io::Result<Registry> {
        Registry::launch(dir, None)
    }

    /// Starts a registry that requires HTTP basic auth as `user`/`password` (htpasswd, bcrypt)
    /// for every request, pulls included.
    pub fn start_with_auth(dir: &Path, user: &str, password: &str) -> io::Result<Registry> {
        Registry::launch(dir, Some((user.to_owned(), password.to_owned())))
    }

    fn launch(dir: &Path, credentials: Option<(String, String)>) -> io::Result<Registry> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}
",
            storage = dir.join("storage").display(),
        );
        if let Some((user, password)) = &credentials {
            let htpasswd = dir.join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(password)?))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: skiff-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.join("registry.log"))?;
        let mut command = Command::new("docker-registry");
        command
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut command);
        let child = command.spawn().map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("cannot start docker-registry ({err}); `cargo xtask setup` installs it"),
            )
        })?;
        let mut registry = Registry {
            child,
            dir: dir.to_owned(),
            address,
            credentials,
        };
        registry.wait_ready(Instant::now() + Duration::from_secs(30))?;
        Ok(registry)
    }

    /// `127.0.0.1:<port>` (plain HTTP).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The registry's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("registry.log")
    }

    /// Pushes a docker-archive (as the [`images`] builders make) as `repository:tag`, e.g.
    /// `library/nginx:latest` (what `docker.io/library/nginx:latest` resolves to here).
    pub fn push(&self, archive: &Path, reference: &str) -> io::Result<()> {
        let mut command = Command::new("skopeo");
        command
            .args([
                "copy",
                "--quiet",
                "--insecure-policy",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("docker://{}/{reference}", self.address));
        if let Some((user, password)) = &self.credentials {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        run(&mut command).map_err(|err| {
            io::Error::new(
                err.kind(),
                format!("{err} (`cargo xtask setup` installs skopeo)"),
            )
        })
    }

    /// Builds (or reuses from `cache_dir`) and pushes `nginx`, `alpine` (the stand-in) and
    /// `busybox` as `library/<name>:latest`, i.e. docker.io's official images' names.
    pub fn push_test_images(&self, cache_dir: &Path) -> io::Result<()> {
        self.push(&images::nginx_archive(cache_dir)?, "library/nginx:latest")?;
        self.push(&images::alpine_archive(cache_dir)?, "library/alpine:latest")?;
        self.push(
            &images::busybox_archive(cache_dir)?,
            "library/busybox:latest",
        )
    }

    fn wait_ready(&mut self, deadline: Instant) -> io::Result<()> {
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!(
                    "docker-registry exited with {status}; see {}",
                    self.log().display()
                )));
            }
            // 200 when open, 401 with auth: either way the API is up.
            match get_v2(&self.address) {
                Ok(reply)
                    if reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 401") =>
                {
                    return Ok(());
                }
                Ok(reply) => last = reply.lines().next().unwrap_or_default().to_owned(),
                Err(err) => last = err.to_string(),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other(format!(
            "docker-registry did not answer GET /v2/ in 30 s ({last}); see {}",
            self.log().display()
        )))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Child::kill signals this child's own PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn get_v2(address: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(
        format!("GET /v2/ HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// A bcrypt hash of `password` for an htpasswd file (distribution accepts only bcrypt), made by
/// the system's libcrypt (libxcrypt) through Python's `crypt` module. Cost 4, the least bcrypt
/// allows: the registry checks the password on every request, and at the usual cost 12 that
/// is ~0.25 s each (a push took 4 s).
fn bcrypt(password: &str) -> io::Result<String> {
    let output = Command::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
        ])
        .arg(password)
        .output()?;
    let hash = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || !hash.starts_with("$2") {
        return Err(io::Error::other(format!(
            "bcrypt via python3 failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(hash)
}
