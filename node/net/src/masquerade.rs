//! Masquerade for pod traffic leaving the cluster: one nftables table with one rule, whatever
//! the number of pods or nodes. Pod → pod and pod ↔ node traffic keeps its addresses (the
//! Kubernetes network model); only destinations outside the cluster CIDR and the nodes' own
//! addresses see the node's address instead of the pod's.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::Cidr;

/// The table skiff owns (replaced as a whole, so a restart converges).
pub const TABLE: &str = "skiff_nat";

/// The rule set: `@nodes` holds every node's address, kept current by [`apply`].
fn ruleset(pod_cidr: Cidr, cluster_cidr: Cidr, nodes: &[Ipv4Addr]) -> String {
    let elements = if nodes.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = nodes.iter().map(|a| a.to_string()).collect();
        format!("        elements = {{ {} }}\n", list.join(", "))
    };
    format!(
        "table ip {TABLE}\n\
         delete table ip {TABLE}\n\
         table ip {TABLE} {{\n\
         \x20   set nodes {{\n\
         \x20       type ipv4_addr\n\
         {elements}\
         \x20   }}\n\
         \x20   chain postrouting {{\n\
         \x20       type nat hook postrouting priority srcnat; policy accept;\n\
         \x20       ip saddr {pod_cidr} ip daddr != {cluster_cidr} ip daddr != @nodes masquerade\n\
         \x20   }}\n\
         }}\n"
    )
}

/// Installs (or replaces, atomically: one `nft -f` transaction) the masquerade table.
pub fn apply(pod_cidr: Cidr, cluster_cidr: Cidr, nodes: &[Ipv4Addr]) -> anyhow::Result<()> {
    nft(&ruleset(pod_cidr, cluster_cidr, nodes))
}

/// Removes the table (nothing to do when it is absent).
pub fn remove() -> anyhow::Result<()> {
    nft(&format!("table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

fn nft(script: &str) -> anyhow::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "nft -f failed: {}\n{script}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_excludes_the_cluster_and_the_nodes() {
        let text = ruleset(
            "10.244.1.0/24".parse().unwrap(),
            "10.244.0.0/16".parse().unwrap(),
            &[Ipv4Addr::new(192, 168, 0, 1), Ipv4Addr::new(192, 168, 0, 2)],
        );
        assert!(text.contains("elements = { 192.168.0.1, 192.168.0.2 }"));
        assert!(text.contains(
            "ip saddr 10.244.1.0/24 ip daddr != 10.244.0.0/16 ip daddr != @nodes masquerade"
        ));
        assert_eq!(text.matches("masquerade").count(), 1);
        let empty = ruleset(
            "10.244.1.0/24".parse().unwrap(),
            "10.244.0.0/16".parse().unwrap(),
            &[],
        );
        assert!(!empty.contains("elements"));
    }
}
