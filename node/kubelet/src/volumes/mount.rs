//! Host mounts under the pods' volume directories (Kubernetes' mount-utils): which paths are
//! mount points, tmpfs mounts (memory-backed emptyDirs, secret volumes), and detaching them.

use std::path::{Path, PathBuf};

/// The mount points `/proc/self/mountinfo` lists (its fifth field), octal escapes undone.
fn parse_mountinfo(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| {
            PathBuf::from(
                p.replace("\\040", " ")
                    .replace("\\011", "\t")
                    .replace("\\134", "\\"),
            )
        })
        .collect()
}

/// The mount points of this mount namespace.
pub fn mount_points() -> Vec<PathBuf> {
    parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default())
}

/// Whether something is mounted at `path`.
pub fn is_mount_point(path: &Path) -> bool {
    mount_points().iter().any(|p| p == path)
}

fn cstring(path: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

/// Mounts a tmpfs at `path` with root directory `mode`, at most `size` bytes when given.
pub fn mount_tmpfs(path: &Path, size: Option<i64>, mode: u32) -> std::io::Result<()> {
    let target = cstring(path)?;
    let mut options = format!("mode={mode:o}");
    if let Some(size) = size.filter(|s| *s > 0) {
        options.push_str(&format!(",size={size}"));
    }
    let options = std::ffi::CString::new(options).map_err(std::io::Error::other)?;
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            options.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches the mount at `path` (lazily: a container still using it keeps it until done).
pub fn unmount(path: &Path) -> std::io::Result<()> {
    let target = cstring(path)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        let info = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    98 22 0:50 / /var/lib/a\\040b\\134c rw - tmpfs tmpfs rw\n";
        assert_eq!(
            parse_mountinfo(info),
            [PathBuf::from("/proc"), PathBuf::from("/var/lib/a b\\c")]
        );
    }
}
