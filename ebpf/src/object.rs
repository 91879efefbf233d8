//! Loading program objects against pinned maps, and attaching programs through pinned links.
//!
//! A restarted (or upgraded) agent loads its objects again: maps already pinned are reused as
//! they are, with their contents, and a program whose link is already pinned replaces the old
//! program in that link atomically, so traffic never meets a moment without a program.

use std::path::{Path, PathBuf};

use libbpf_rs::{Link, MapCore, MapHandle, Object, ObjectBuilder, ProgramMut};

use crate::{Context, Result};

/// The magic number of bpffs in `statfs`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// A bpffs directory holding skiff's pins: maps as `<dir>/<map>`, links as `<dir>/links/<name>`.
#[derive(Clone, Debug)]
pub struct PinDir(PathBuf);

impl Default for PinDir {
    fn default() -> Self {
        PinDir::new("/sys/fs/bpf/skiff")
    }
}

impl PinDir {
    /// A pin directory at `path` (under a bpffs mount).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PinDir(path.into())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Where map `name` is pinned.
    pub fn map(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Where link `name` is pinned.
    pub fn link(&self, name: &str) -> PathBuf {
        self.0.join("links").join(name)
    }

    /// Mounts bpffs on the directory's mount point if nothing is mounted there yet, and
    /// creates the directory.
    pub fn ensure(&self) -> Result<()> {
        let root = Path::new("/sys/fs/bpf");
        if self.0.starts_with(root) && !is_bpffs(root) {
            mount_bpffs(root)?;
        }
        std::fs::create_dir_all(self.0.join("links"))
            .context(|| format!("creating {}", self.0.display()))
    }

    /// Removes every pin under the directory and the directory itself: programs whose links
    /// were pinned here are detached, maps are freed once nothing else holds them.
    pub fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.0) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(err).context(|| format!("removing {}", self.0.display()))
            }
            _ => Ok(()),
        }
    }
}

/// A pin directory removed (programs detached, maps freed) when dropped: what tests and
/// benchmarks hold so nothing stays pinned after them, failures included.
#[derive(Debug)]
pub struct PinGuard(pub PinDir);

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Err(err) = self.0.remove() {
            eprintln!("removing {}: {err}", self.0.path().display());
        }
    }
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a zeroed statfs to fill.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut stat) };
    rc == 0 && stat.f_type as i64 == BPF_FS_MAGIC
}

fn mount_bpffs(path: &Path) -> Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
    // SAFETY: valid C strings; bpffs takes no data.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c_path.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| format!("mounting bpffs on {}", path.display()));
    }
    Ok(())
}

/// Loads the object in `bytes`, its maps pinned by name under `pins`. A map that is already
/// pinned is reused with its contents and its size; a new one gets `size(name)` entries when
/// that says so, else the size the C source declares.
pub fn load(bytes: &[u8], pins: &PinDir, size: &dyn Fn(&str) -> Option<u32>) -> Result<Object> {
    open(bytes, pins, size)?
        .load()
        .context(|| "loading a BPF object".into())
}

/// As [`load`], but loads no program: only creates (and pins) the maps that are missing. Cheap,
/// as nothing goes through the verifier.
pub fn load_maps(bytes: &[u8], pins: &PinDir) -> Result<()> {
    let mut open = open(bytes, pins, &|_| None)?;
    for mut prog in open.progs_mut() {
        prog.set_autoload(false);
    }
    open.load().context(|| "creating maps".into())?;
    Ok(())
}

fn open(
    bytes: &[u8],
    pins: &PinDir,
    size: &dyn Fn(&str) -> Option<u32>,
) -> Result<libbpf_rs::OpenObject> {
    pins.ensure()?;
    let mut builder = ObjectBuilder::default();
    builder
        .pin_root_path(pins.path())
        .context(|| "setting the pin root".into())?;
    let mut open = builder
        .open_memory(bytes)
        .context(|| "opening a BPF object".into())?;
    for mut map in open.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let pinned = pins.map(&name);
        let entries = if pinned.exists() {
            let handle = MapHandle::from_pinned_path(&pinned)
                .context(|| format!("opening pinned map {}", pinned.display()))?;
            Some(handle.max_entries())
        } else {
            size(&name)
        };
        if let Some(entries) = entries {
            map.set_max_entries(entries)
                .context(|| format!("sizing map {name}"))?;
        }
    }
    Ok(open)
}

/// The program named `name` in `object`.
pub fn program<'o>(object: &'o Object, name: &str) -> Option<ProgramMut<'o>> {
    object.progs_mut().find(|p| p.name() == name)
}

/// The name a link of `program` on interface `ifindex` is pinned as.
pub fn interface_link(program: &str, ifindex: u32) -> String {
    format!("{program}-if{ifindex}")
}

/// Removes the pinned links of `programs` on interface `ifindex` (a link still attached is
/// detached with its last reference); missing ones are fine.
pub fn unpin_interface_links(pins: &PinDir, ifindex: u32, programs: &[&str]) -> Result<()> {
    for program in programs {
        let path = pins.link(&interface_link(program, ifindex));
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Attaches `prog` through the link pinned as `name`: when one is pinned already, the link is
/// switched to `prog` in place (atomically); otherwise `attach` creates it and it is pinned.
pub fn attach_pinned(
    pins: &PinDir,
    name: &str,
    prog: &ProgramMut<'_>,
    attach: impl FnOnce(&ProgramMut<'_>) -> libbpf_rs::Result<Link>,
) -> Result<Link> {
    let path = pins.link(name);
    if path.exists() {
        let mut link = Link::open(&path).context(|| format!("opening {}", path.display()))?;
        if link.update_prog(prog).is_ok() {
            return Ok(link);
        }
        // A link that cannot take the program (detached, or of another kind): start over.
        drop(link);
        std::fs::remove_file(&path).context(|| format!("removing {}", path.display()))?;
    }
    let mut link = attach(prog).context(|| format!("attaching {name}"))?;
    link.pin(&path)
        .context(|| format!("pinning {}", path.display()))?;
    Ok(link)
}

/// What one `BPF_PROG_TEST_RUN` gave.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The program's return value (see [`crate::verdict`]).
    pub verdict: i32,
    /// The packet as the program left it (after the last repetition).
    pub packet: Vec<u8>,
    /// The kernel's mean time per repetition, in whole nanoseconds: the program plus the test
    /// loop around it (an empty program's figure is that loop's share).
    pub per_packet: std::time::Duration,
}

/// Runs `program` of `object` on `packet` `repeat` times (at least once) in the kernel, without
/// any interface, with `context` as its context when given (tc: the leading fields of
/// `struct __sk_buff`). The kernel reuses one buffer (XDP) or skb (tc) across repetitions,
/// unreset: a rewriting program sees its own output from the second on.
pub fn test_run(
    object: &Object,
    program: &str,
    packet: &[u8],
    repeat: u32,
    context: Option<&mut [u8]>,
) -> Result<RunOutput> {
    let prog = self::program(object, program).ok_or_else(|| crate::Error::Io {
        what: format!("program {program}"),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    // Room for the largest answer a program builds from a packet (ICMP adds 28 bytes).
    let mut out = vec![0u8; packet.len() + 256];
    let input = libbpf_rs::ProgramInput {
        data_in: Some(packet),
        data_out: Some(&mut out),
        context_in: context,
        repeat,
        ..Default::default()
    };
    let output = prog
        .test_run(input)
        .context(|| format!("test run of {program}"))?;
    let len = output.data.as_ref().map_or(0, |d| d.len());
    let (verdict, per_packet) = (output.return_value as i32, output.duration);
    out.truncate(len);
    Ok(RunOutput {
        verdict,
        packet: out,
        per_packet,
    })
}
