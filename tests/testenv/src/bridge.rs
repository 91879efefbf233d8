//! A pod network from Debian's reference CNI plugins (`bridge` + `host-local`) for tests that
//! need pods with addresses but are not about skiff's own network: its conflist, and a guard
//! that deletes the bridge the plugin creates.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

/// The Linux bridge named `.0` (created by the plugin at the first pod), deleted on drop.
pub struct Bridge(pub String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

/// Writes `10-bridge.conflist` into `conf_dir`: pods on bridge `bridge` with addresses from
/// `subnet`/24. `isGateway` puts .1 on the bridge, which is how the host reaches pods; no
/// masquerade, so nothing goes into iptables; host-local keeps its leases under `ipam_dir`.
pub fn write_conflist(
    conf_dir: &Path,
    ipam_dir: &Path,
    bridge: &str,
    subnet: Ipv4Addr,
) -> std::io::Result<()> {
    std::fs::create_dir_all(conf_dir)?;
    let conflist = format!(
        r#"{{
  "cniVersion": "0.4.0",
  "name": "{bridge}",
  "plugins": [{{
    "type": "bridge",
    "bridge": "{bridge}",
    "isGateway": true,
    "ipMasq": false,
    "ipam": {{
      "type": "host-local",
      "ranges": [[{{"subnet": "{subnet}/24"}}]],
      "dataDir": "{ipam}"
    }}
  }}]
}}"#,
        ipam = ipam_dir.display()
    );
    std::fs::write(conf_dir.join("10-bridge.conflist"), conflist)
}
