//! A NETLINK_ROUTE socket used synchronously: send one request, read until its ACK (or the
//! end of its dump).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::message::{
    Message, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_DUMP, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, attrs,
    messages, str_of,
};
use crate::{Error, Result};

const SOL_NETLINK: i32 = 270;
const NETLINK_CAP_ACK: i32 = 10;
const NETLINK_EXT_ACK: i32 = 11;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A rtnetlink socket in the network namespace of the thread that opened it.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        // SAFETY: plain socket(2); the descriptor is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(Error::last_os("opening a netlink socket"));
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Extended acks carry the kernel's reason for EINVAL and friends; capped acks keep
        // error replies short. Both are best effort (old kernels lack them).
        for opt in [NETLINK_EXT_ACK, NETLINK_CAP_ACK] {
            let one: libc::c_int = 1;
            // SAFETY: a valid descriptor and a c_int option value.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    SOL_NETLINK,
                    opt,
                    (&one as *const libc::c_int).cast(),
                    size_of::<libc::c_int>() as u32,
                );
            }
        }
        Ok(Netlink {
            fd,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, message: &mut Message, op: &dyn Fn() -> String) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = message.finish(seq);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: bytes and addr are valid for the given lengths.
        let sent = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if sent < 0 {
            return Err(Error::last_os(op()));
        }
        Ok(seq)
    }

    fn recv(&mut self, op: &dyn Fn() -> String) -> Result<usize> {
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let err = Error::last_os(op());
                if err.errno == libc::EINTR {
                    continue;
                }
                return Err(err);
            }
            return Ok(n as usize);
        }
    }

    /// Sends a request and waits for its ACK.
    pub(crate) fn execute(&mut self, mut message: Message, op: &dyn Fn() -> String) -> Result<()> {
        self.request(&mut message, NLM_F_ACK, op, &mut |_, _| {})
    }

    /// Sends a dump request and hands every reply message (type, payload) to `each`.
    pub(crate) fn dump(
        &mut self,
        mut message: Message,
        op: &dyn Fn() -> String,
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<()> {
        self.request(&mut message, NLM_F_DUMP, op, each)
    }

    /// Sends a GET for one object and hands the reply to `each`; a missing object is an error
    /// (ENODEV, ESRCH...).
    pub(crate) fn get(
        &mut self,
        mut message: Message,
        op: &dyn Fn() -> String,
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<()> {
        self.request(&mut message, NLM_F_ACK, op, each)
    }

    /// Sends `message` with `extra` flags and reads replies with the same sequence number until an ACK, an
    /// error or NLMSG_DONE.
    fn request(
        &mut self,
        message: &mut Message,
        extra: u16,
        op: &dyn Fn() -> String,
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<()> {
        message.add_flags(extra);
        let seq = self.send(message, op)?;
        loop {
            let n = self.recv(op)?;
            let buf = std::mem::take(&mut self.buf);
            let mut outcome = None;
            for reply in messages(&buf[..n]) {
                if reply.seq != seq {
                    continue; // a stale reply to an earlier request
                }
                match reply.kind {
                    NLMSG_ERROR => {
                        outcome = Some(error_of(reply.payload, reply.flags, op));
                        break;
                    }
                    NLMSG_DONE => {
                        outcome = Some(Ok(()));
                        break;
                    }
                    kind => each(kind, reply.payload),
                }
            }
            self.buf = buf;
            if let Some(outcome) = outcome {
                return outcome;
            }
        }
    }
}

/// Decodes an NLMSG_ERROR payload: `int error`, the request's header (capped ack), then, with
/// NLM_F_ACK_TLVS, attributes such as the kernel's message.
fn error_of(payload: &[u8], flags: u16, op: &dyn Fn() -> String) -> Result<()> {
    let Some(code) = payload.get(..4) else {
        return Err(Error::new(op(), libc::EPROTO));
    };
    let code = i32::from_ne_bytes(code.try_into().unwrap());
    if code == 0 {
        return Ok(());
    }
    let mut err = Error::new(op(), -code);
    if flags & NLM_F_ACK_TLVS != 0 && payload.len() >= 4 + NLMSG_HDRLEN {
        for (kind, value) in attrs(&payload[4 + NLMSG_HDRLEN..]) {
            if kind == NLMSGERR_ATTR_MSG {
                err.detail = Some(str_of(value));
            }
        }
    }
    Err(err)
}
