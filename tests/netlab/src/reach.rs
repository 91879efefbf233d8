//! Who reaches whom, and as whom: TCP servers that answer each connection with the address
//! they see the client as (the accepted socket's peer), and an all-pairs check that every
//! client is seen under its own address — the Kubernetes network model's "no NAT" rule.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::NetNs;

/// Serves `address:port` inside `ns` on a background thread for the rest of the process:
/// each connection gets the client's address as the server sees it, then is closed.
pub fn serve_peer_address(ns: &NetNs, address: Ipv4Addr, port: u16) -> io::Result<()> {
    let listener = ns.within(move || TcpListener::bind((address, port)))??;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Ok(peer) = stream.peer_addr() {
                let _ = stream.write_all(peer.ip().to_string().as_bytes());
            }
        }
    });
    Ok(())
}

/// Connects from `ns` to `to:port` and returns the address the server saw the client as.
pub fn peer_seen(ns: &NetNs, to: Ipv4Addr, port: u16) -> io::Result<String> {
    ns.within(move || -> io::Result<String> {
        let target = SocketAddr::from((to, port));
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(3))
            .map_err(|err| io::Error::new(err.kind(), format!("connecting to {target}: {err}")))?;
        stream.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut seen = String::new();
        stream.read_to_string(&mut seen)?;
        Ok(seen)
    })?
}

/// Serves on every host, then connects from every host to every other one for which `check`
/// says so; returns the failures (a connection that failed, or a client seen under another
/// address than its own).
pub fn all_pairs(
    hosts: &[(&NetNs, Ipv4Addr)],
    port: u16,
    check: impl Fn(Ipv4Addr, Ipv4Addr) -> bool,
) -> io::Result<Vec<String>> {
    for (ns, address) in hosts {
        serve_peer_address(ns, *address, port)?;
    }
    let mut failures = Vec::new();
    for (from_ns, from) in hosts {
        for (_, to) in hosts {
            if from == to || !check(*from, *to) {
                continue;
            }
            match peer_seen(from_ns, *to, port) {
                Ok(seen) if seen == from.to_string() => {}
                Ok(seen) => failures.push(format!("{from} -> {to}: the server saw {seen}")),
                Err(err) => failures.push(format!("{from} -> {to}: {err}")),
            }
        }
    }
    Ok(failures)
}
