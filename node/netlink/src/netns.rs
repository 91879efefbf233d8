//! Network namespaces: run a closure on a thread moved into one; sysctls.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use crate::{Error, Result};

/// An open network namespace file (`/var/run/netns/NAME`, `/proc/PID/ns/net`).
#[derive(Debug)]
pub struct NetnsFile {
    file: File,
}

impl NetnsFile {
    /// Opens the namespace at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<NetnsFile> {
        let path = path.as_ref();
        let file = File::open(path)
            .map_err(|err| Error::io(format!("opening netns {}", path.display()), &err))?;
        Ok(NetnsFile { file })
    }

    /// The descriptor (for IFLA_NET_NS_FD).
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.file.as_fd()
    }

    /// Moves the calling thread into this namespace.
    fn enter(&self) -> Result<()> {
        // SAFETY: a valid namespace descriptor; only the calling thread changes namespace.
        if unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(Error::last_os("setns"));
        }
        Ok(())
    }
}

/// Runs `f` on a new thread inside `netns` and returns its result. The thread exists only for
/// `f`, so the caller's namespace never changes; sockets (netlink included) that `f` opens
/// belong to `netns`.
pub fn in_netns<T: Send>(netns: &NetnsFile, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                netns.enter()?;
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Writes a sysctl (`net.ipv4.ip_forward` or `net/ipv4/conf/eth0/rp_filter`) in the calling
/// thread's network namespace (`/proc/sys/net` follows the opener's namespace).
pub fn sysctl_set(key: &str, value: &str) -> Result<()> {
    let relative = if key.contains('/') {
        key.to_owned()
    } else {
        key.replace('.', "/")
    };
    let path = Path::new("/proc/sys").join(relative);
    std::fs::write(&path, value)
        .map_err(|err| Error::io(format!("writing sysctl {key}={value}"), &err))
}
