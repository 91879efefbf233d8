//! File-backed IPv4 allocation from the node's podCIDR.
//!
//! Under `<dataDir>/networks/<network>/`:
//! - `<ip>`: one file per allocated address, holding the owner's container id and ifname;
//! - `attachments/<containerID>:<ifname>`: the owner's address (so DEL and a repeated ADD find
//!   it with one read; `:` occurs in neither part, so the name is unambiguous);
//! - `last_reserved_ip`: where the round-robin search resumes (a freed address is not handed
//!   out again right away, so a stale peer is less likely to reach a new pod);
//! - `lock`: held with `flock(LOCK_EX)` for a whole allocation or release, so plugin processes
//!   running at once never hand out one address twice.
//!
//! Files are not fsynced: allocations survive plugin and agent restarts (plain files), and a
//! node crash that loses a recent write also destroys the sandboxes that used it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::config::Cidr;
use crate::spec::{CniError, code};

const LAST: &str = "last_reserved_ip";
const ATTACHMENTS: &str = "attachments";

/// An allocated address and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub address: Ipv4Addr,
    pub container_id: String,
    pub ifname: String,
}

/// The allocator of one network.
#[derive(Clone, Debug)]
pub struct Ipam {
    dir: PathBuf,
    cidr: Cidr,
}

/// The exclusive lock on a network's allocations; released on drop (close).
struct Locked {
    _file: File,
}

fn io_error(what: String) -> impl FnOnce(io::Error) -> CniError {
    move |err| CniError::new(code::IO, what).with_details(err)
}

impl Ipam {
    pub fn new(data_dir: &Path, network: &str, cidr: Cidr) -> Ipam {
        Ipam {
            dir: data_dir.join("networks").join(network),
            cidr,
        }
    }

    /// The network's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<Locked, CniError> {
        fs::create_dir_all(self.dir.join(ATTACHMENTS))
            .map_err(io_error(format!("creating {}", self.dir.display())))?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(format!("opening {}", path.display())))?;
        loop {
            // SAFETY: flock on a descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Locked { _file: file });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(io_error(format!("locking {}", path.display()))(err));
            }
        }
    }

    fn attachment_path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir
            .join(ATTACHMENTS)
            .join(format!("{container_id}:{ifname}"))
    }

    fn read_attachment(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Ipv4Addr>, CniError> {
        let path = self.attachment_path(container_id, ifname);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_error(format!("reading {}", path.display()))(err)),
        }
    }

    fn owner_of(&self, address: Ipv4Addr) -> Option<(String, String)> {
        let text = fs::read_to_string(self.dir.join(address.to_string())).ok()?;
        let mut lines = text.lines();
        Some((lines.next()?.to_owned(), lines.next()?.to_owned()))
    }

    /// Allocates an address for `(container_id, ifname)`; when it already holds one, returns
    /// that one (so a repeated ADD never takes a second address). The flag tells whether the
    /// address is new.
    pub fn allocate(&self, container_id: &str, ifname: &str) -> Result<(Ipv4Addr, bool), CniError> {
        let _lock = self.lock()?;
        if let Some(address) = self.read_attachment(container_id, ifname)?
            && self
                .owner_of(address)
                .is_some_and(|(c, i)| c == container_id && i == ifname)
        {
            return Ok((address, false));
        }
        let (first, last) = self.cidr.usable();
        let count = u64::from(last - first) + 1;
        let resume = fs::read_to_string(self.dir.join(LAST))
            .ok()
            .and_then(|t| t.trim().parse::<Ipv4Addr>().ok())
            .map(u32::from)
            .filter(|ip| (first..=last).contains(ip));
        let start = match resume {
            Some(ip) if ip < last => ip + 1,
            _ => first,
        };
        for step in 0..count {
            let candidate = first + ((u64::from(start - first) + step) % count) as u32;
            let address = Ipv4Addr::from(candidate);
            let path = self.dir.join(address.to_string());
            let mut file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(io_error(format!("creating {}", path.display()))(err)),
            };
            let written = file
                .write_all(format!("{container_id}\n{ifname}\n").as_bytes())
                .and_then(|()| {
                    fs::write(
                        self.attachment_path(container_id, ifname),
                        address.to_string(),
                    )
                })
                .and_then(|()| fs::write(self.dir.join(LAST), address.to_string()));
            if let Err(err) = written {
                let _ = fs::remove_file(&path);
                let _ = fs::remove_file(self.attachment_path(container_id, ifname));
                return Err(io_error(format!("recording {address}"))(err));
            }
            return Ok((address, true));
        }
        Err(CniError::new(
            code::TRY_AGAIN_LATER,
            format!("no free addresses in podCIDR {}", self.cidr),
        ))
    }

    /// The address held by `(container_id, ifname)`.
    pub fn lookup(&self, container_id: &str, ifname: &str) -> Result<Option<Ipv4Addr>, CniError> {
        let address = self.read_attachment(container_id, ifname)?;
        Ok(address.filter(|a| {
            self.owner_of(*a)
                .is_some_and(|(c, i)| c == container_id && i == ifname)
        }))
    }

    /// Releases the address of `(container_id, ifname)`; `None` when it held none.
    pub fn release(&self, container_id: &str, ifname: &str) -> Result<Option<Ipv4Addr>, CniError> {
        let _lock = self.lock()?;
        self.release_locked(container_id, ifname)
    }

    fn release_locked(
        &self,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Ipv4Addr>, CniError> {
        let address = self.read_attachment(container_id, ifname)?;
        let mut released = None;
        if let Some(address) = address
            && self
                .owner_of(address)
                .is_some_and(|(c, i)| c == container_id && i == ifname)
        {
            remove(&self.dir.join(address.to_string()))?;
            released = Some(address);
        }
        remove(&self.attachment_path(container_id, ifname))?;
        Ok(released)
    }

    /// Every allocation (any address file, also outside the current podCIDR).
    pub fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_error(format!("listing {}", self.dir.display()))(err)),
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let Some(address) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((container_id, ifname)) = self.owner_of(address) {
                found.push(Allocation {
                    address,
                    container_id,
                    ifname,
                });
            }
        }
        found.sort_by_key(|a| a.address);
        Ok(found)
    }

    /// Releases every allocation whose owner is not in `keep`; returns the released ones.
    pub fn retain(&self, keep: &HashSet<(String, String)>) -> Result<Vec<Allocation>, CniError> {
        let _lock = self.lock()?;
        let mut released = Vec::new();
        for allocation in self.allocations()? {
            let owner = (allocation.container_id.clone(), allocation.ifname.clone());
            if keep.contains(&owner) {
                continue;
            }
            remove(&self.dir.join(allocation.address.to_string()))?;
            if self.read_attachment(&owner.0, &owner.1)? == Some(allocation.address) {
                remove(&self.attachment_path(&owner.0, &owner.1))?;
            }
            released.push(allocation);
        }
        Ok(released)
    }

    /// How many addresses of the podCIDR are free.
    pub fn free(&self) -> Result<u64, CniError> {
        let (first, last) = self.cidr.usable();
        let used = self
            .allocations()?
            .iter()
            .filter(|a| (first..=last).contains(&u32::from(a.address)))
            .count() as u64;
        Ok((u64::from(last - first) + 1).saturating_sub(used))
    }
}

fn remove(path: &Path) -> Result<(), CniError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(format!("removing {}", path.display()))(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam(dir: &Path, cidr: &str) -> Ipam {
        Ipam::new(dir, "net", Cidr::parse(cidr).unwrap())
    }

    #[test]
    fn allocates_round_robin_skipping_network_and_broadcast() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = ipam(tmp.path(), "10.1.0.0/29");
        let mut got = Vec::new();
        for i in 0..6 {
            let (ip, fresh) = ipam.allocate(&format!("c{i}"), "eth0").unwrap();
            assert!(fresh);
            got.push(ip.octets()[3]);
        }
        assert_eq!(got, [1, 2, 3, 4, 5, 6]);
        let err = ipam.allocate("c6", "eth0").unwrap_err();
        assert_eq!(err.code, code::TRY_AGAIN_LATER);
        assert_eq!(ipam.free().unwrap(), 0);
        // Release one in the middle: the search resumes after the last one and wraps to it.
        assert_eq!(
            ipam.release("c2", "eth0").unwrap(),
            Some(Ipv4Addr::new(10, 1, 0, 3))
        );
        assert_eq!(ipam.release("c2", "eth0").unwrap(), None);
        assert_eq!(ipam.free().unwrap(), 1);
        assert_eq!(
            ipam.allocate("c7", "eth0").unwrap().0,
            Ipv4Addr::new(10, 1, 0, 3)
        );
    }

    #[test]
    fn repeated_allocation_returns_the_same_address() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = ipam(tmp.path(), "10.1.0.0/24");
        let (a, fresh) = ipam.allocate("c", "eth0").unwrap();
        assert!(fresh);
        assert_eq!(ipam.allocate("c", "eth0").unwrap(), (a, false));
        let (b, _) = ipam.allocate("c", "eth1").unwrap();
        assert_ne!(a, b);
        assert_eq!(ipam.lookup("c", "eth0").unwrap(), Some(a));
        assert_eq!(ipam.lookup("d", "eth0").unwrap(), None);
    }

    #[test]
    fn survives_restart_and_resumes_after_last() {
        let tmp = tempfile::tempdir().unwrap();
        let a = ipam(tmp.path(), "10.1.0.0/24")
            .allocate("c1", "eth0")
            .unwrap()
            .0;
        let b = ipam(tmp.path(), "10.1.0.0/24")
            .allocate("c2", "eth0")
            .unwrap()
            .0;
        ipam(tmp.path(), "10.1.0.0/24")
            .release("c1", "eth0")
            .unwrap();
        // A new allocator (a new process) sees c2's address and the marker.
        let fresh = ipam(tmp.path(), "10.1.0.0/24");
        assert_eq!(fresh.lookup("c2", "eth0").unwrap(), Some(b));
        let c = fresh.allocate("c3", "eth0").unwrap().0;
        assert_ne!(
            c, a,
            "round robin: a just-freed address is not reused first"
        );
        assert_ne!(c, b);
        assert_eq!(fresh.allocations().unwrap().len(), 2);
    }

    #[test]
    fn retain_releases_everything_else() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = ipam(tmp.path(), "10.1.0.0/24");
        for c in ["a", "b", "c"] {
            ipam.allocate(c, "eth0").unwrap();
        }
        let keep: HashSet<_> = [("b".to_owned(), "eth0".to_owned())].into();
        let released = ipam.retain(&keep).unwrap();
        assert_eq!(released.len(), 2);
        let left = ipam.allocations().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].container_id, "b");
        assert_eq!(ipam.lookup("a", "eth0").unwrap(), None);
    }

    #[test]
    fn concurrent_threads_get_distinct_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let ipam = ipam(tmp.path(), "10.1.0.0/24");
        let addresses: Vec<Ipv4Addr> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|t| {
                    let ipam = ipam.clone();
                    s.spawn(move || {
                        (0..10)
                            .map(|i| ipam.allocate(&format!("t{t}-{i}"), "eth0").unwrap().0)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let unique: HashSet<_> = addresses.iter().collect();
        assert_eq!(unique.len(), 160);
        assert_eq!(ipam.allocations().unwrap().len(), 160);
    }

    const CHILD_DIR: &str = "SKIFF_IPAM_TEST_CHILD_DIR";

    /// The body of one allocating process of `concurrent_processes_get_distinct_addresses`
    /// (a no-op when run as an ordinary test).
    #[test]
    fn child_process_allocates() {
        let Ok(dir) = std::env::var(CHILD_DIR) else {
            return;
        };
        let me = std::process::id();
        let ipam = ipam(Path::new(&dir), "10.1.0.0/24");
        for i in 0..10 {
            let (ip, _) = ipam.allocate(&format!("p{me}-{i}"), "eth0").unwrap();
            println!("ALLOCATED {ip}");
        }
    }

    #[test]
    fn concurrent_processes_get_distinct_addresses() {
        let tmp = tempfile::tempdir().unwrap();
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..8)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "ipam::tests::child_process_allocates",
                        "--nocapture",
                    ])
                    .env(CHILD_DIR, tmp.path())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut addresses = Vec::new();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let text = String::from_utf8(output.stdout).unwrap();
            addresses.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix("ALLOCATED "))
                    .map(|a| a.parse::<Ipv4Addr>().unwrap()),
            );
        }
        assert_eq!(addresses.len(), 80);
        let unique: HashSet<_> = addresses.iter().collect();
        assert_eq!(unique.len(), 80);
        assert_eq!(
            ipam(tmp.path(), "10.1.0.0/24").allocations().unwrap().len(),
            80
        );
    }
}
