//! The CNI network configuration list containerd reads (`/etc/cni/net.d/10-skiff.conflist`),
//! written once the node has its podCIDR, atomically (temporary file + rename: containerd
//! watches the directory and must never load half a file), and the plugin binary put where
//! containerd looks for plugins.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::json;

use crate::Cidr;

/// The network's name (CNI `name`; IPAM keeps its allocations under it).
pub const NETWORK_NAME: &str = "skiff";
/// The file written into the CNI config directory.
pub const FILE_NAME: &str = "10-skiff.conflist";
/// The plugin binary's name (CNI `type`).
pub const PLUGIN: &str = "skiff-cni";

/// What the plugin needs to know about this node.
#[derive(Clone, Debug)]
pub struct PluginConfig {
    pub pod_cidr: Cidr,
    pub cluster_cidr: Cidr,
    pub mtu: u32,
    /// BIG TCP: the pods' IPv4 GSO size (`NodeNetwork::pod_gso_max_size`).
    pub gso_max_size: Option<u32>,
    pub bpf_pin_dir: PathBuf,
    pub data_dir: PathBuf,
}

/// The conflist's JSON.
pub fn conflist(config: &PluginConfig) -> serde_json::Value {
    let mut list = json!({
        // 1.0.0: the newest version containerd 1.6's libcni takes (1.1 adds only STATUS/GC).
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [{
            "type": PLUGIN,
            "podCIDR": config.pod_cidr.to_string(),
            "clusterCIDR": config.cluster_cidr.to_string(),
            "mtu": config.mtu,
            "bpfPinDir": config.bpf_pin_dir,
            "dataDir": config.data_dir,
        }],
    });
    if let Some(size) = config.gso_max_size {
        list["plugins"][0]["gsoMaxSize"] = json!(size);
    }
    list
}

/// Writes the conflist into `dir` (created when missing) unless it already says the same.
/// Returns the file's path.
pub fn write(dir: &Path, config: &PluginConfig) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(FILE_NAME);
    let text = serde_json::to_string_pretty(&conflist(config))? + "\n";
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(path);
    }
    let temporary = dir.join(format!(".{FILE_NAME}.tmp"));
    std::fs::write(&temporary, &text)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(path)
}

/// Copies the plugin binary `source` into `bin_dir` (atomically, so a running ADD never sees a
/// half-written binary), unless an identical one is there.
pub fn install_plugin(source: &Path, bin_dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    let target = bin_dir.join(PLUGIN);
    let new = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    if std::fs::read(&target).ok().as_deref() == Some(new.as_slice()) {
        return Ok(target);
    }
    let temporary = bin_dir.join(format!(".{PLUGIN}.tmp"));
    std::fs::write(&temporary, &new).with_context(|| format!("writing {}", temporary.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&temporary, &target)
        .with_context(|| format!("renaming into {}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PluginConfig {
        PluginConfig {
            pod_cidr: "10.244.3.0/24".parse().unwrap(),
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
            mtu: 1450,
            gso_max_size: None,
            bpf_pin_dir: "/sys/fs/bpf/skiff".into(),
            data_dir: "/var/lib/skiff/cni".into(),
        }
    }

    #[test]
    fn written_once_and_rewritten_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &config()).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(first["plugins"][0]["podCIDR"], "10.244.3.0/24");
        assert_eq!(first["plugins"][0]["mtu"], 1450);
        assert!(first["plugins"][0].get("gsoMaxSize").is_none());
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
        write(dir.path(), &config()).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified
        );
        let mut changed = config();
        changed.mtu = 1500;
        changed.gso_max_size = Some(196608);
        write(dir.path(), &changed).unwrap();
        let second: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(second["plugins"][0]["mtu"], 1500);
        assert_eq!(second["plugins"][0]["gsoMaxSize"], 196608);
        // Only the conflist is left: no temporary file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
