//! Netlink without an async runtime: links, veths, addresses, routes, neighbours, network
//! namespaces, sysctls, BPF programs as tc filters.
//!
//! Why raw rtnetlink over `libc` rather than `netlink-packet-route` + `netlink-sys`: the CNI
//! plugin needs a dozen request shapes, each a header, one fixed struct and a few attributes.
//! Building them by hand ([`message`]) is a few hundred lines, has no dependency to keep in step
//! with rustc, and keeps the plugin's start-up and per-request cost at one socket and one
//! `sendto`/`recv` per request. Everything is synchronous: a [`Netlink`] socket belongs to the
//! network namespace of the thread that opened it, so [`in_netns`] runs a closure on a
//! dedicated thread moved into another namespace with `setns(2)`.
//!
//! Errors ([`Error`]) carry the operation and the kernel's errno (and its extended-ack message
//! when there is one), so callers can tell "already exists" ([`Error::is_exists`]) and
//! "not there" ([`Error::is_not_found`]) from real failures.

mod message;
mod netns;
mod socket;

pub mod addr;
pub mod cidr;
pub mod link;
pub mod neigh;
pub mod route;
pub mod tc;

use std::fmt;

pub use cidr::Cidr;
pub use netns::{NetnsFile, in_netns, sysctl_set};
pub use socket::Netlink;

/// A failed netlink (or namespace, or sysctl) operation.
#[derive(Debug)]
pub struct Error {
    /// What was being done (`"creating veth skf0123 / eth0"`).
    pub op: String,
    /// The errno the kernel (or libc) reported.
    pub errno: i32,
    /// The kernel's extended-ack message, when it sent one.
    pub detail: Option<String>,
}

impl Error {
    pub(crate) fn new(op: impl Into<String>, errno: i32) -> Error {
        Error {
            op: op.into(),
            errno,
            detail: None,
        }
    }

    pub(crate) fn last_os(op: impl Into<String>) -> Error {
        Error::new(
            op,
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        )
    }

    pub(crate) fn io(op: impl Into<String>, err: &std::io::Error) -> Error {
        Error::new(op, err.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno == libc::EEXIST
    }

    /// The object (link, route, address, neighbour, namespace) is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno,
            libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL
        )
    }

    /// The operation with more context in front (`"pod side: " + op`).
    pub fn context(mut self, what: impl fmt::Display) -> Error {
        self.op = format!("{what}: {}", self.op);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{}: {os}", self.op)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
