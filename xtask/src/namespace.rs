//! Commands run in a private mount namespace (root only): what the bootstrap check and the
//! fresh-machine run use to hide tools and to build a new root. Mounts made there vanish with
//! the namespace's last process, so nothing is left mounted on the machine whatever happens.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One step of the namespace's setup, in order.
pub enum Mount {
    /// Hides a file behind /dev/null (it exists, but is empty and cannot be run).
    Mask(PathBuf),
    /// Hides a directory behind an empty read-only tmpfs.
    MaskDir(PathBuf),
    /// `source` (with everything mounted below it) at `target`.
    RecursiveBind { source: PathBuf, target: PathBuf },
    /// `source` at `target`, read-only.
    ReadOnlyBind { source: PathBuf, target: PathBuf },
    /// A new filesystem of `fstype` ("proc", "tmpfs", "bpf", ...) at `target`.
    Fresh {
        fstype: &'static str,
        target: PathBuf,
    },
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))
}

/// A prepared mount(2) call: everything allocated before fork, as the child may not allocate.
struct Call {
    source: CString,
    target: CString,
    fstype: Option<CString>,
    flags: libc::c_ulong,
    /// A second call that remounts a bind read-only (bind mounts ignore MS_RDONLY at first).
    remount_read_only: bool,
}

fn sys(rc: libc::c_int) -> io::Result<()> {
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Call {
    fn new(mount: &Mount) -> io::Result<Call> {
        let bind = |source: &Path, target: &Path, flags, read_only| -> io::Result<Call> {
            Ok(Call {
                source: c_path(source)?,
                target: c_path(target)?,
                fstype: None,
                flags: libc::MS_BIND | flags,
                remount_read_only: read_only,
            })
        };
        match mount {
            Mount::Mask(path) => bind(Path::new("/dev/null"), path, 0, false),
            Mount::MaskDir(path) => Ok(Call {
                source: c"tmpfs".to_owned(),
                target: c_path(path)?,
                fstype: Some(c"tmpfs".to_owned()),
                flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
                remount_read_only: false,
            }),
            Mount::RecursiveBind { source, target } => bind(source, target, libc::MS_REC, false),
            Mount::ReadOnlyBind { source, target } => bind(source, target, 0, true),
            Mount::Fresh { fstype, target } => {
                let fstype = CString::new(*fstype).expect("no NUL");
                Ok(Call {
                    source: fstype.clone(),
                    target: c_path(target)?,
                    fstype: Some(fstype),
                    flags: 0,
                    remount_read_only: false,
                })
            }
        }
    }

    /// Runs in the child between fork and exec: only system calls.
    fn apply(&self) -> io::Result<()> {
        let fstype = self
            .fstype
            .as_ref()
            .map_or(std::ptr::null(), |f| f.as_ptr());
        // SAFETY: valid C strings prepared before fork; no data argument.
        sys(unsafe {
            libc::mount(
                self.source.as_ptr(),
                self.target.as_ptr(),
                fstype,
                self.flags,
                std::ptr::null(),
            )
        })?;
        if self.remount_read_only {
            // SAFETY: as above.
            sys(unsafe {
                libc::mount(
                    std::ptr::null(),
                    self.target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                    std::ptr::null(),
                )
            })?;
        }
        Ok(())
    }
}

/// Makes `command` start in a new mount namespace, private from the machine's, with `mounts`
/// applied in order and then, if given, `root` (which must be a mount point) as the
/// namespace's root, the machine's root detached; `cwd` is the working directory (inside
/// `root`).
pub fn isolate(
    command: &mut Command,
    mounts: &[Mount],
    root: Option<&Path>,
    cwd: &Path,
) -> io::Result<()> {
    let calls = mounts
        .iter()
        .map(Call::new)
        .collect::<io::Result<Vec<_>>>()?;
    let root = root.map(c_path).transpose()?;
    let cwd = c_path(cwd)?;
    // SAFETY: the closure makes only async-signal-safe system calls on memory prepared above.
    unsafe {
        command.pre_exec(move || {
            sys(libc::unshare(libc::CLONE_NEWNS))?;
            // Nothing mounted here propagates back to the machine.
            sys(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for call in &calls {
                call.apply()?;
            }
            if let Some(root) = &root {
                // pivot_root, not chroot: the new root must be the namespace's own root, or a
                // process that later joins the namespace (runc exec entering a container
                // made from here) lands in the machine's root instead. The old root is
                // stacked under the new one by pivot_root(".", ".") and detached.
                sys(libc::chdir(root.as_ptr()))?;
                sys(
                    libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr())
                        as libc::c_int,
                )?;
                sys(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
            }
            sys(libc::chdir(cwd.as_ptr()))
        });
    }
    Ok(())
}
