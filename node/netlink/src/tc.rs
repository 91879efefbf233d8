//! BPF programs on a link's clsact hook as direct-action `cls_bpf` filters.
//!
//! Why not only tcx links: every tcx attach waits for an RCU grace period in the kernel
//! (`tcx_entry_sync`), 6-14 ms on this kind of VM, which would dominate a CNI ADD. Adding a
//! clsact qdisc and a cls_bpf filter costs a few hundred microseconds. The filter holds its own
//! reference to the program and goes away with the link.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::message::{Message, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use crate::{Netlink, Result};

const RTM_NEWQDISC: u16 = 36;
const RTM_NEWTFILTER: u16 = 44;
const RTM_DELTFILTER: u16 = 45;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TCA_BPF_FD: u16 = 6;
const TCA_BPF_NAME: u16 = 7;
const TCA_BPF_FLAGS: u16 = 8;
const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;
const TC_H_CLSACT: u32 = 0xffff_fff1;
const TC_H_MIN_INGRESS: u32 = 0xfff2;
const TC_H_MIN_EGRESS: u32 = 0xfff3;
const ETH_P_ALL: u16 = 0x0003;

/// Which clsact hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Ingress,
    Egress,
}

fn tcmsg(index: u32, handle: u32, parent: u32, info: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0] = libc::AF_UNSPEC as u8;
    b[4..8].copy_from_slice(&index.to_ne_bytes());
    b[8..12].copy_from_slice(&handle.to_ne_bytes());
    b[12..16].copy_from_slice(&parent.to_ne_bytes());
    b[16..20].copy_from_slice(&info.to_ne_bytes());
    b
}

fn filter_parent(hook: Hook) -> u32 {
    (TC_H_CLSACT & 0xffff_0000)
        | match hook {
            Hook::Ingress => TC_H_MIN_INGRESS,
            Hook::Egress => TC_H_MIN_EGRESS,
        }
}

/// The filter's priority (in the upper half) and protocol (network order, lower half).
fn filter_info(priority: u16) -> u32 {
    (u32::from(priority) << 16) | u32::from(ETH_P_ALL.to_be())
}

impl Netlink {
    /// Adds the clsact qdisc to link `index` (there already: fine). Cheapest before the link
    /// is up.
    pub fn add_clsact(&mut self, index: u32) -> Result<()> {
        let mut m = Message::new(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL);
        m.raw(&tcmsg(index, TC_H_CLSACT & 0xffff_0000, TC_H_CLSACT, 0));
        m.attr_str(TCA_KIND, "clsact");
        match self.execute(m, &|| format!("adding clsact to link {index}")) {
            Err(err) if err.is_exists() => Ok(()),
            other => other,
        }
    }

    /// Attaches (or replaces, same priority) the SCHED_CLS program `prog` as a direct-action
    /// filter on `hook` of link `index` (the clsact qdisc must be there).
    pub fn attach_bpf_filter(
        &mut self,
        index: u32,
        hook: Hook,
        priority: u16,
        prog: BorrowedFd<'_>,
        name: &str,
    ) -> Result<()> {
        let mut m = Message::new(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE);
        m.raw(&tcmsg(index, 1, filter_parent(hook), filter_info(priority)));
        m.attr_str(TCA_KIND, "bpf");
        let options = m.begin_nested(TCA_OPTIONS);
        m.attr_u32(TCA_BPF_FD, prog.as_raw_fd() as u32);
        m.attr_str(TCA_BPF_NAME, name);
        m.attr_u32(TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT);
        m.end_nested(options);
        self.execute(m, &|| {
            format!("attaching bpf filter {name} to link {index} {hook:?}")
        })
    }

    /// Removes the filters of `priority` from `hook` of link `index`.
    pub fn detach_bpf_filter(&mut self, index: u32, hook: Hook, priority: u16) -> Result<()> {
        let mut m = Message::new(RTM_DELTFILTER, 0);
        m.raw(&tcmsg(index, 0, filter_parent(hook), filter_info(priority)));
        self.execute(m, &|| {
            format!("removing bpf filters of link {index} {hook:?}")
        })
    }
}
