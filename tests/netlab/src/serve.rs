//! Echo servers bound inside a namespace: what a lab's "pods" run. Each TCP connection gets
//! back whatever it sends until it closes (one small request and its response, or more); each
//! UDP datagram is sent back to its sender.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::NetNs;

/// A TCP echo server; stopped (its threads joined) on drop.
pub struct TcpServer {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TcpServer {
    /// Binds `address` inside `ns` and serves it with `threads` threads, each pinned to `cpu`
    /// when given (so the load generator can have the other cores).
    pub fn start(
        ns: &NetNs,
        address: SocketAddr,
        threads: usize,
        cpu: Option<usize>,
    ) -> io::Result<TcpServer> {
        let listener = Arc::new(ns.within(move || bind_tcp(address))??);
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads.max(1))
            .map(|_| {
                let listener = listener.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    if let Some(cpu) = cpu {
                        let _ = crate::pin_current_thread(cpu);
                    }
                    while !stop.load(Ordering::Relaxed) {
                        match listener.accept() {
                            Ok((stream, _)) => echo(stream),
                            Err(_) if stop.load(Ordering::Relaxed) => return,
                            Err(_) => continue,
                        }
                    }
                })
            })
            .collect();
        Ok(TcpServer {
            listener,
            stop,
            threads,
        })
    }

    /// The bound address.
    pub fn address(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(address)?;
    // A deep backlog: the benchmark opens connections as fast as it can.
    // SAFETY: listen(2) on a socket we own.
    unsafe { libc::listen(listener.as_raw_fd(), 4096) };
    Ok(listener)
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // shutdown(2) on a listening socket wakes every thread blocked in accept().
        // SAFETY: the listener is alive (we hold an Arc).
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP echo server; stopped on drop.
pub struct UdpServer {
    socket: Arc<UdpSocket>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UdpServer {
    /// Binds `address` inside `ns` and echoes every datagram.
    pub fn start(ns: &NetNs, address: SocketAddr) -> io::Result<UdpServer> {
        let socket = Arc::new(ns.within(move || UdpSocket::bind(address))??);
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let socket = socket.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(&buf[..n], from);
                    }
                }
            })
        };
        Ok(UdpServer {
            socket,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn address(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
