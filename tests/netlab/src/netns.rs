//! Network namespaces (`ip netns`, so they are visible by name under `/var/run/netns`), veth
//! pairs between them, and running threads and commands inside one.
//!
//! Entering a namespace is done with `setns(2)` on a thread or in a child before it runs, never
//! with `ip netns exec`, which remounts `/sys` and would hide bpffs pins from the command.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::{run, unique_name};

/// A network namespace this process created; deleted on drop, with everything in it (links,
/// addresses, routes, netfilter tables, conntrack entries, sockets once their users exit).
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace named after this process and `role`, with its loopback up.
    pub fn create(role: &str) -> io::Result<NetNs> {
        let name = unique_name(role);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (for `ip -n`, `nsenter`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's file.
    pub fn path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.name)
    }

    /// Runs `ip -n <ns> args...`.
    pub fn ip(&self, args: &[&str]) -> io::Result<()> {
        run(Command::new("ip").arg("-n").arg(&self.name).args(args)).map(drop)
    }

    /// Sets a sysctl of this namespace (`net.ipv4.ip_forward`, ...).
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        let value = value.to_owned();
        // /proc/sys/net follows the network namespace of the thread that opens it.
        self.within(move || std::fs::write(&path, value))?
    }

    /// `program` as a command that runs inside this namespace (entered in the child just
    /// before exec). Other places (cgroup, CPU) can be added with their own `pre_exec`.
    pub fn command(&self, program: &str) -> io::Result<Command> {
        let mut command = Command::new(program);
        self.enter_in(&mut command)?;
        Ok(command)
    }

    /// Makes `command` enter this namespace before it execs.
    pub fn enter_in(&self, command: &mut Command) -> io::Result<()> {
        let file = self.open()?;
        // SAFETY: the closure only calls setns(2), which is async-signal-safe, on a descriptor
        // opened before the fork and kept open by the closure.
        unsafe {
            command.pre_exec(move || {
                if libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }

    /// Runs `program args...` inside this namespace to completion.
    pub fn run(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        let mut command = self.command(program)?;
        command.args(args);
        run(&mut command)
    }

    /// Moves the calling thread into this namespace. New sockets of the thread, and threads it
    /// starts, belong to the namespace.
    pub fn enter(&self) -> io::Result<()> {
        let file = self.open()?;
        // SAFETY: a valid namespace descriptor; only this thread changes namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a thread inside this namespace and returns its result (sockets it creates
    /// stay in the namespace wherever they are used afterwards).
    pub fn within<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        self.spawn(f)?
            .join()
            .map_err(|_| io::Error::other(format!("a thread in netns {} panicked", self.name)))
    }

    /// Starts a thread inside this namespace running `f`.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<std::thread::JoinHandle<T>> {
        let file = self.open()?;
        std::thread::Builder::new()
            .name(format!("netns-{}", self.name))
            .spawn(move || {
                // SAFETY: a valid namespace descriptor; only this new thread changes namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
                f()
            })
    }

    fn open(&self) -> io::Result<File> {
        File::open(self.path())
            .map_err(|err| io::Error::new(err.kind(), format!("netns {}: {err}", self.name)))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(err) = run(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("netlab: {err}");
        }
    }
}

/// One end of a veth pair: its namespace's name, the interface name and its address (CIDR).
#[derive(Clone, Copy, Debug)]
pub struct End<'a> {
    /// Where the interface lives.
    pub ns: &'a NetNs,
    /// The interface's name inside the namespace.
    pub name: &'a str,
    /// Addresses to assign (`10.244.0.1/24`).
    pub addresses: &'a [&'a str],
}

/// Creates a veth pair between two namespaces, assigns the addresses and brings both ends up.
/// The pair disappears with either namespace.
pub fn veth(a: End<'_>, b: End<'_>) -> io::Result<()> {
    a.ns.ip(&[
        "link", "add", a.name, "type", "veth", "peer", "name", b.name, "netns", &b.ns.name,
    ])?;
    for end in [a, b] {
        for address in end.addresses {
            end.ns.ip(&["addr", "add", address, "dev", end.name])?;
        }
        end.ns.ip(&["link", "set", end.name, "up"])?;
    }
    Ok(())
}
