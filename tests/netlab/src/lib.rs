//! Network labs for skiff's dataplane tests and benchmarks (root only).
//!
//! Everything a lab creates lives in network namespaces it creates itself, is named after this
//! process (`sk<pid>-...`, see [`unique_name`]) and is removed by a guard's `Drop`, on panic
//! too: namespaces (with their links, addresses, iptables and nftables tables and conntrack
//! entries), cgroups, and the processes a lab started (by PID). Traffic only flows on loopback
//! and between namespaces of the lab.
//!
//! - [`netns`]: network namespaces, veth pairs, running threads and commands inside a namespace.
//! - [`cgroup`]: a test cgroup under the cgroup2 mount.
//! - [`process`]: child processes placed in a namespace, cgroup and CPU before they run, killed
//!   by PID on drop; timed commands with their peak memory.
//! - [`serve`]: TCP and UDP echo servers bound inside a namespace.
//! - [`reach`]: all-pairs TCP reachability, checking each side sees the other's real address.
//! - [`topology`]: a client, a node (router) and a namespace of pods, wired and addressed.
//! - [`kubeproxy`]: kube-proxy-shaped iptables and nftables rule sets for a list of services.

pub mod cgroup;
pub mod kubeproxy;
pub mod netns;
pub mod process;
pub mod reach;
pub mod serve;
pub mod topology;

use std::io;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub use cgroup::Cgroup;
pub use netns::NetNs;
pub use process::Guarded;
pub use topology::ServiceLab;

/// A name unique to this process and call: `sk<pid>-<n>-<role>`. Interface names live inside
/// the lab's namespaces, so only namespaces and cgroups carry these names on the host.
pub fn unique_name(role: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "sk{}-{}-{role}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `command` to completion; an unsuccessful exit is an error carrying its stderr.
pub fn run(command: &mut Command) -> io::Result<Output> {
    let output = command
        .output()
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", describe(command))))?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{} failed ({}): {}",
            describe(command),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output)
}

/// The command line, for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Pins the calling thread to one CPU (modulo the CPUs there are), so a load generator and its
/// servers do not share a core.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % cpu_count(), &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// How many CPUs are online (not only those this thread may use).
pub fn cpu_count() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}
