//! A test cgroup on the cgroup2 mount, for programs attached per cgroup (the socket-level load
//! balancer) and the processes that must be under them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::unique_name;

/// Where cgroup2 is mounted on the machines skiff's tests run on (a hybrid hierarchy).
pub const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// A cgroup this process created under [`CGROUP2`]. On drop, processes still in it are moved
/// back to the root cgroup (none is killed here: [`crate::Guarded`] owns processes) and the
/// directory is removed, which also detaches the BPF programs attached to it.
#[derive(Debug)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates `CGROUP2/sk<pid>-<n>-<role>`.
    pub fn create(role: &str) -> io::Result<Cgroup> {
        let path = Path::new(CGROUP2).join(unique_name(role));
        std::fs::create_dir(&path)
            .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
        Ok(Cgroup { path })
    }

    /// The cgroup's directory (what `SocketLb::attach` takes).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves process `pid` into the cgroup.
    pub fn add(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Makes `command`'s child join the cgroup before it execs, so none of its sockets is ever
    /// created outside it.
    pub fn enter_in(&self, command: &mut Command) -> io::Result<()> {
        let procs: File = OpenOptions::new()
            .write(true)
            .open(self.path.join("cgroup.procs"))?;
        // SAFETY: the closure only calls write(2) (async-signal-safe) on a descriptor opened
        // before the fork; "0" moves the writing process.
        unsafe {
            command.pre_exec(move || {
                if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }
}

/// This process's membership of a [`Cgroup`] it joined: on drop the process moves back to the
/// cgroup it was in before (declare it after the `Cgroup`, so it drops first).
#[derive(Debug)]
pub struct Membership {
    original: PathBuf,
}

impl Cgroup {
    /// Moves this whole process (every thread) into the cgroup until the returned guard drops:
    /// how a test puts its own sockets under programs attached to the cgroup.
    pub fn join(&self) -> io::Result<Membership> {
        let own = std::fs::read_to_string("/proc/self/cgroup")?;
        let relative = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or_else(|| io::Error::other("no cgroup2 entry in /proc/self/cgroup"))?
            .trim_start_matches('/');
        let original = Path::new(CGROUP2).join(relative);
        self.add(std::process::id())?;
        Ok(Membership { original })
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.original.join("cgroup.procs"),
            std::process::id().to_string(),
        );
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for attempt in 0..50 {
            for pid in self.pids() {
                if let Ok(mut root) = OpenOptions::new()
                    .write(true)
                    .open(Path::new(CGROUP2).join("cgroup.procs"))
                {
                    let _ = root.write_all(pid.to_string().as_bytes());
                }
            }
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return,
                // A process that just exited may still be counted for a moment.
                Err(_) if attempt < 49 => std::thread::sleep(Duration::from_millis(20)),
                Err(err) => eprintln!("netlab: removing {}: {err}", self.path.display()),
            }
        }
    }
}
