//! `cargo xtask fresh [AREA...]`: the test suite on a fresh machine (root only). A new
//! Debian 12 root is made with debootstrap from the Debian registry this machine's apt sources
//! name, with nothing in it but what a new machine of ours has before the README's commands
//! (the base system, CA certificates, and gcc + libc6-dev, which the Rust toolchain links with);
//! the toolchain is bind-mounted read-only, /proc, /sys (with its cgroup hierarchies), /dev, a
//! new bpffs and a tmpfs /run are mounted, a clean clone of this repository's HEAD is put
//! inside, and `cargo xtask test [AREA...]` runs there as root, in a mount namespace of its
//! own whose root it is (so nothing stays mounted afterwards). Crates come from the registry
//! again (an empty CARGO_HOME), packages from apt: every install step is exercised.
//!
//! The debootstrapped base is kept as a tarball under `target/fresh/` (it is the same pristine
//! system each time); each run unpacks it into a new root. `--rebuild-base` makes it again.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::namespace::{self, Mount};
use crate::setup;
use crate::util::{root, run_command, target_dir};

const SUITE: &str = "bookworm";
/// What a new machine of ours has beyond the base system (see the module doc).
const INCLUDE: &[&str] = &[
    "ca-certificates",
    "gcc",
    "libc6-dev",
    "debian-archive-keyring",
];
/// Where the clone lives inside the root.
const CHECKOUT: &str = "/root/skiff";

/// A Debian apt source of this machine: one URI, its suites and components.
#[derive(Debug, PartialEq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
}

/// Parses one-line (`deb URI SUITE COMPONENT...`) and deb822 (`Types: deb` stanzas) sources.
fn parse_sources(text: &str, deb822: bool) -> Vec<Source> {
    let mut sources = Vec::new();
    if !deb822 {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace().peekable();
            if words.next() != Some("deb") {
                continue;
            }
            // Options such as [arch=amd64 signed-by=...] come before the URI.
            if words.peek().is_some_and(|w| w.starts_with('[')) {
                for word in words.by_ref() {
                    if word.ends_with(']') {
                        break;
                    }
                }
            }
            let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
                continue;
            };
            sources.push(Source {
                uri: uri.to_owned(),
                suites: vec![suite.to_owned()],
                components: words.map(str::to_owned).collect(),
            });
        }
        return sources;
    }
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Vec<String> {
            stanza
                .lines()
                .filter(|l| !l.starts_with('#'))
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        if !field("Types").iter().any(|t| t == "deb") {
            continue;
        }
        for uri in field("URIs") {
            sources.push(Source {
                uri,
                suites: field("Suites"),
                components: field("Components"),
            });
        }
    }
    sources
}

/// This machine's Debian 12 sources (third-party repositories left out: their suites are not
/// Debian's `bookworm*`).
fn debian_sources() -> anyhow::Result<Vec<Source>> {
    let mut sources = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        sources.extend(parse_sources(&text, false));
    }
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            let path = entry.path();
            let deb822 = path.extension().is_some_and(|e| e == "sources");
            if deb822 || path.extension().is_some_and(|e| e == "list") {
                sources.extend(parse_sources(&std::fs::read_to_string(&path)?, deb822));
            }
        }
    }
    sources.retain(|s| s.suites.iter().any(|suite| suite.starts_with(SUITE)));
    if !sources
        .iter()
        .any(|s| s.suites.iter().any(|suite| suite == SUITE))
    {
        bail!("no Debian {SUITE} source in this machine's apt sources (/etc/apt/sources.list*)");
    }
    Ok(sources)
}

fn sources_list(sources: &[Source]) -> String {
    sources
        .iter()
        .map(|s| {
            format!(
                "deb {} {} {}\n",
                s.uri,
                s.suites.join(" "),
                s.components.join(" ")
            )
        })
        .collect()
}

/// The debootstrapped base system as a tarball, made when missing.
fn base(dir: &Path, mirror: &str, rebuild: bool) -> anyhow::Result<PathBuf> {
    let tarball = dir.join(format!("debian12-{}.tar", INCLUDE.join("+")));
    if tarball.exists() && !rebuild {
        eprintln!(
            "fresh: base system {} (--rebuild-base makes it again)",
            tarball.display()
        );
        return Ok(tarball);
    }
    setup::install_packages("the fresh-machine run", &["debootstrap"])?;
    let staging = dir.join("base");
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!("fresh: debootstrap {SUITE} from {mirror}");
    run_command(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", INCLUDE.join(",")))
            .arg(SUITE)
            .arg(&staging)
            .arg(mirror),
    )?;
    run_command(
        Command::new("tar")
            .arg("-C")
            .arg(&staging)
            .args(["--numeric-owner", "-cf"])
            .arg(&tarball)
            .arg("."),
    )?;
    std::fs::remove_dir_all(&staging)?;
    Ok(tarball)
}

/// The Rust toolchain of this machine: rustup's home and cargo's bin directory.
fn toolchain() -> anyhow::Result<(PathBuf, PathBuf)> {
    let home = PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?);
    let rustup = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".rustup"));
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cargo"))
        .join("bin");
    if !rustup.is_dir() || !cargo_bin.join("cargo").exists() {
        bail!(
            "no rustup toolchain found ({} and {}): the fresh run bind-mounts this machine's",
            rustup.display(),
            cargo_bin.display()
        );
    }
    Ok((rustup, cargo_bin))
}

const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The machine's extra certificate authorities (a registry proxy's, on the machines here)
/// trusted in the new root too: written where update-ca-certificates keeps local ones, so a
/// package install that rebuilds the bundle keeps them, and the bundle copied.
fn trust_machine_cas(new_root: &Path) -> anyhow::Result<()> {
    let blocks = |text: &str| -> Vec<String> {
        text.split_inclusive("-----END CERTIFICATE-----")
            .filter_map(|b| b.find("-----BEGIN").map(|i| b[i..].to_owned()))
            .collect()
    };
    let Ok(machine) = std::fs::read_to_string(Path::new("/").join(CA_BUNDLE)) else {
        return Ok(());
    };
    let fresh = std::fs::read_to_string(new_root.join(CA_BUNDLE)).unwrap_or_default();
    let known = blocks(&fresh);
    let local = new_root.join("usr/local/share/ca-certificates");
    std::fs::create_dir_all(&local)?;
    for (n, cert) in blocks(&machine)
        .into_iter()
        .filter(|c| !known.contains(c))
        .enumerate()
    {
        std::fs::write(local.join(format!("machine-{n}.crt")), format!("{cert}\n"))?;
    }
    std::fs::copy(Path::new("/").join(CA_BUNDLE), new_root.join(CA_BUNDLE))?;
    Ok(())
}

/// The machine's environment variables that name its CA bundle (the same path inside).
const CA_ENV: &[&str] = &[
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
];

/// `path` (absolute on the machine) as seen below `root`.
fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

pub fn run(areas: &[String], rebuild_base: bool, keep: bool) -> anyhow::Result<()> {
    if !setup::is_root() {
        bail!("`cargo xtask fresh` builds and enters a new root: run it as root");
    }
    let started = Instant::now();
    let dir = target_dir().join("fresh");
    std::fs::create_dir_all(&dir)?;
    let sources = debian_sources()?;
    let mirror = &sources
        .iter()
        .find(|s| s.suites.iter().any(|suite| suite == SUITE))
        .expect("checked by debian_sources")
        .uri;
    let tarball = base(&dir, mirror, rebuild_base)?;

    let new_root = dir.join("root");
    if new_root.exists() {
        // Only the machine's view is removed: what an earlier run mounted lived in its own
        // namespace, gone with it.
        std::fs::remove_dir_all(&new_root).context("removing the previous fresh root")?;
    }
    std::fs::create_dir_all(&new_root)?;
    run_command(
        Command::new("tar")
            .arg("-C")
            .arg(&new_root)
            .args(["--numeric-owner", "-xpf"])
            .arg(&tarball),
    )?;
    // The machines of this kind run no init: services are started by hand, so package
    // installs must not start them (as this machine's /usr/sbin/policy-rc.d says).
    let policy = new_root.join("usr/sbin/policy-rc.d");
    std::fs::write(
        &policy,
        "#!/bin/sh\n# No init here: packages do not start services.\nexit 101\n",
    )?;
    run_command(Command::new("chmod").arg("755").arg(&policy))?;
    std::fs::write(
        new_root.join("etc/apt/sources.list"),
        sources_list(&sources),
    )?;
    trust_machine_cas(&new_root)?;
    for file in ["etc/resolv.conf", "etc/hosts", "etc/pip.conf"] {
        if !Path::new("/").join(file).exists() {
            continue;
        }
        let _ = std::fs::remove_file(new_root.join(file));
        std::fs::copy(Path::new("/").join(file), new_root.join(file))
            .with_context(|| format!("copying /{file}"))?;
    }

    let checkout = inside(&new_root, Path::new(CHECKOUT));
    run_command(
        Command::new("git")
            .args(["clone", "--quiet", "--no-hardlinks"])
            .arg(root())
            .arg(&checkout),
    )?;
    let commit = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(&checkout)
            .args(["rev-parse", "--short", "HEAD"])
            .output()?
            .stdout,
    )?
    .trim()
    .to_owned();

    let (rustup, cargo_bin) = toolchain()?;
    let rustup_inside = Path::new("/root/.rustup");
    let cargo_home_inside = Path::new("/root/.cargo");
    for path in [rustup_inside.to_owned(), cargo_home_inside.join("bin")] {
        std::fs::create_dir_all(inside(&new_root, &path))?;
    }
    let mounts = vec![
        // The root a mount point of its own: pivot_root needs one (and so do the mount
        // namespaces made inside it, the bootstrap check's).
        Mount::RecursiveBind {
            source: new_root.clone(),
            target: new_root.clone(),
        },
        Mount::Fresh {
            fstype: "proc",
            target: new_root.join("proc"),
        },
        Mount::RecursiveBind {
            source: "/sys".into(),
            target: new_root.join("sys"),
        },
        // Pins of its own: the run sees none of the machine's.
        Mount::Fresh {
            fstype: "bpf",
            target: new_root.join("sys/fs/bpf"),
        },
        Mount::RecursiveBind {
            source: "/dev".into(),
            target: new_root.join("dev"),
        },
        Mount::Fresh {
            fstype: "tmpfs",
            target: new_root.join("run"),
        },
        Mount::ReadOnlyBind {
            source: rustup,
            target: inside(&new_root, rustup_inside),
        },
        Mount::ReadOnlyBind {
            source: cargo_bin,
            target: inside(&new_root, &cargo_home_inside.join("bin")),
        },
    ];
    let mut command = Command::new("/root/.cargo/bin/cargo");
    command
        .args(["xtask", "test"])
        .args(areas)
        .env_clear()
        .env(
            "PATH",
            "/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("RUSTUP_HOME", rustup_inside)
        .env("CARGO_HOME", cargo_home_inside)
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .envs(
            CA_ENV
                .iter()
                .filter_map(|v| Some((v, std::env::var_os(v)?))),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    namespace::isolate(&mut command, &mounts, Some(&new_root), Path::new(CHECKOUT))?;

    let log_path = dir.join(format!("run-{commit}.log"));
    let task: String = std::iter::once("cargo xtask test")
        .chain(areas.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "fresh: `{task}` on commit {commit} in {} (log: {})",
        new_root.display(),
        log_path.display()
    );
    let log = Arc::new(Mutex::new(std::fs::File::create(&log_path)?));
    let mut child = command
        .spawn()
        .context("entering the fresh root (mounts or chroot failed)")?;
    let copiers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let log = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
                let mut out = std::io::stderr().lock();
                let _ = out.write_all(&line);
                let _ = out.write_all(b"\n");
                let mut log = log.lock().unwrap();
                let _ = log.write_all(&line);
                let _ = log.write_all(b"\n");
            }
        })
    })
    .collect();
    let status = child.wait()?;
    for copier in copiers {
        let _ = copier.join();
    }
    let elapsed = started.elapsed().as_secs();
    let verdict = if status.success() { "passed" } else { "FAILED" };
    let summary = format!(
        "{} commit {commit}: `{task}` on a fresh Debian 12 root {verdict} in {} min {} s (from {mirror})",
        today(),
        elapsed / 60,
        elapsed % 60
    );
    std::fs::write(dir.join("last-result.txt"), format!("{summary}\n"))?;
    eprintln!("fresh: {summary}");
    if status.success() && !keep {
        std::fs::remove_dir_all(&new_root)?;
    } else {
        eprintln!(
            "fresh: the root stays in {} for a look (the next run removes it)",
            new_root.display()
        );
    }
    if !status.success() {
        bail!(
            "the suite failed on the fresh root ({status}); log: {}",
            log_path.display()
        );
    }
    Ok(())
}

/// Today's date (UTC) as YYYY-MM-DD, from `date` (xtask keeps its dependencies minimal).
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_source_formats() {
        let deb822 = "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\n\
                      Suites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb-src\nURIs: http://x\nSuites: bookworm\nComponents: main\n";
        assert_eq!(
            parse_sources(deb822, true),
            vec![Source {
                uri: "http://deb.debian.org/debian".into(),
                suites: vec!["bookworm".into(), "bookworm-updates".into()],
                components: vec!["main".into()],
            }]
        );
        let one_line = "deb [signed-by=/k.gpg arch=amd64] https://a/apt cloud-sdk-bookworm main\n\
                        # deb http://old bookworm main\ndeb-src http://s bookworm main\n";
        assert_eq!(
            parse_sources(one_line, false),
            vec![Source {
                uri: "https://a/apt".into(),
                suites: vec!["cloud-sdk-bookworm".into()],
                components: vec!["main".into()],
            }]
        );
    }
}
