//! The network configuration (JSON on stdin) and the `CNI_*` environment.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use crate::spec::{self, CniError, code};

pub use skiff_netlink::Cidr;

/// The fields of the network configuration, as they come (validated by [`NetConf::parse`]).
#[derive(Deserialize)]
struct RawConf {
    #[serde(rename = "cniVersion")]
    cni_version: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "podCIDR")]
    pod_cidr: Option<String>,
    #[serde(rename = "clusterCIDR")]
    cluster_cidr: Option<String>,
    mtu: Option<u32>,
    #[serde(rename = "gsoMaxSize")]
    gso_max_size: Option<u32>,
    #[serde(rename = "bpfPinDir")]
    bpf_pin_dir: Option<String>,
    #[serde(rename = "dataDir")]
    data_dir: Option<String>,
    #[serde(rename = "podAttach")]
    pod_attach: Option<String>,
    #[serde(rename = "prevResult")]
    prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<Attachment>>,
}

/// One entry of GC's `cni.dev/valid-attachments`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct Attachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The kernel's GSO size without BIG TCP, and its ceiling with it (`GSO_MAX_SIZE`).
const GSO_LEGACY_MAX: u32 = 65536;
const GSO_MAX: u32 = 512 * 1024 - 8;

/// How the routing program is attached to a pod's host-side veth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodAttach {
    /// A direct-action cls_bpf filter on clsact ingress (`"tc"`, the default): a few hundred
    /// microseconds.
    Tc,
    /// A pinned tcx link (`"tcx"`, `PodNet::attach_pod`): the kernel waits for an RCU grace
    /// period per attach, 6-14 ms here, more than the rest of ADD together.
    Tcx,
}

/// Our network configuration.
#[derive(Clone, Debug)]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    pub pod_cidr: Cidr,
    pub cluster_cidr: Option<Cidr>,
    pub mtu: u32,
    /// The largest IPv4 GSO/GRO packet on the pod's veth pair (`gsoMaxSize`); above 65536 it
    /// is BIG TCP: fewer, larger packets through the stack and the programs. `None`: the
    /// kernel's 64 KiB. The node agent sets it when its uplinks take packets that large.
    pub gso_max_size: Option<u32>,
    /// Where the pod-network maps and links are pinned; `None` (configured as `""`) runs
    /// without the eBPF dataplane (tests of the plumbing alone).
    pub bpf_pin_dir: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub pod_attach: PodAttach,
    pub prev_result: Option<Value>,
    pub valid_attachments: Option<Vec<Attachment>>,
}

/// The version named in a config, if it can be read at all (used to shape error replies).
pub fn version_of(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_owned)
}

impl NetConf {
    /// Parses and validates the configuration.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let raw: RawConf = serde_json::from_slice(stdin).map_err(|err| {
            CniError::new(code::DECODE, "cannot decode the network configuration").with_details(err)
        })?;
        let invalid = |msg: String| CniError::new(code::INVALID_CONFIG, msg);
        let cni_version = raw
            .cni_version
            .ok_or_else(|| invalid("cniVersion is required".into()))?;
        if !spec::supported(&cni_version) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {cni_version:?} is not supported"),
            )
            .with_details(format!(
                "supported: {}",
                spec::SUPPORTED_VERSIONS.join(", ")
            )));
        }
        let name = raw
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| invalid("name is required".into()))?;
        // The name becomes a directory under dataDir.
        if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
            return Err(invalid(format!(
                "name {name:?} is not a valid network name"
            )));
        }
        if raw.kind.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("type must not be empty".into()));
        }
        let pod_cidr = raw
            .pod_cidr
            .ok_or_else(|| invalid("podCIDR is required".into()))?;
        let pod_cidr = Cidr::parse(&pod_cidr).map_err(|e| invalid(format!("podCIDR: {e}")))?;
        let cluster_cidr = raw
            .cluster_cidr
            .map(|c| Cidr::parse(&c).map_err(|e| invalid(format!("clusterCIDR: {e}"))))
            .transpose()?;
        if let Some(cluster) = cluster_cidr
            && (cluster.prefix > pod_cidr.prefix || !cluster.contains(pod_cidr.network))
        {
            return Err(invalid(format!(
                "podCIDR {pod_cidr} is not inside clusterCIDR {cluster}"
            )));
        }
        let mtu = raw.mtu.unwrap_or(1500);
        if !(68..=65535).contains(&mtu) {
            return Err(invalid(format!("mtu {mtu} is out of range 68..=65535")));
        }
        // Below 64 KiB would only shrink packets; the kernel caps GSO at GSO_MAX_SIZE.
        let gso_max_size = raw.gso_max_size;
        if let Some(size) = gso_max_size
            && !(GSO_LEGACY_MAX..=GSO_MAX).contains(&size)
        {
            return Err(invalid(format!(
                "gsoMaxSize {size} is out of range {GSO_LEGACY_MAX}..={GSO_MAX}"
            )));
        }
        let bpf_pin_dir = match raw.bpf_pin_dir {
            None => Some(PathBuf::from("/sys/fs/bpf/skiff")),
            Some(dir) if dir.is_empty() => None,
            Some(dir) => Some(PathBuf::from(dir)),
        };
        let data_dir = PathBuf::from(
            raw.data_dir
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/var/lib/skiff/cni".into()),
        );
        let pod_attach = match raw.pod_attach.as_deref() {
            None | Some("tc") => PodAttach::Tc,
            Some("tcx") => PodAttach::Tcx,
            Some(other) => {
                return Err(invalid(format!(
                    "podAttach {other:?}: want \"tc\" or \"tcx\""
                )));
            }
        };
        Ok(NetConf {
            cni_version,
            name,
            pod_cidr,
            cluster_cidr,
            mtu,
            gso_max_size,
            bpf_pin_dir,
            data_dir,
            pod_attach,
            prev_result: raw.prev_result,
            valid_attachments: raw.valid_attachments,
        })
    }
}

/// A CNI command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

/// The `CNI_*` environment.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub container_id: Option<String>,
    pub netns: Option<String>,
    pub ifname: Option<String>,
    /// `CNI_ARGS` as key/value pairs (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, ...).
    pub args: HashMap<String, String>,
}

/// Reads `CNI_COMMAND`.
pub fn command(get: &dyn Fn(&str) -> Option<String>) -> Result<Command, CniError> {
    let value = get("CNI_COMMAND")
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set"))?;
    Ok(match value.as_str() {
        "ADD" => Command::Add,
        "DEL" => Command::Del,
        "CHECK" => Command::Check,
        "STATUS" => Command::Status,
        "GC" => Command::Gc,
        "VERSION" => Command::Version,
        other => {
            return Err(CniError::new(
                code::INVALID_ENV,
                format!("unknown CNI_COMMAND {other:?}"),
            ));
        }
    })
}

impl Env {
    /// Reads the variables `command` needs (through `get`, so tests need no process env) and
    /// validates them.
    pub fn read(command: Command, get: &dyn Fn(&str) -> Option<String>) -> Result<Env, CniError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let missing = |k: &str| CniError::new(code::INVALID_ENV, format!("{k} is not set"));
        let mut env = Env {
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: HashMap::new(),
        };
        let (need_id, need_netns, need_ifname) = match command {
            Command::Add | Command::Check => (true, true, true),
            // DEL may come after the sandbox's namespace is gone.
            Command::Del => (true, false, true),
            Command::Status | Command::Gc | Command::Version => (false, false, false),
        };
        if need_id && env.container_id.is_none() {
            return Err(missing("CNI_CONTAINERID"));
        }
        if need_netns && env.netns.is_none() {
            return Err(missing("CNI_NETNS"));
        }
        if need_ifname && env.ifname.is_none() {
            return Err(missing("CNI_IFNAME"));
        }
        if let Some(id) = &env.container_id {
            validate_container_id(id)?;
        }
        if let Some(ifname) = &env.ifname {
            validate_ifname(ifname)?;
        }
        if let Some(args) = get("CNI_ARGS") {
            for pair in args.split(';').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    CniError::new(
                        code::INVALID_ENV,
                        format!("CNI_ARGS: {pair:?} is not KEY=VALUE"),
                    )
                })?;
                env.args.insert(k.to_owned(), v.to_owned());
            }
        }
        Ok(env)
    }

    pub fn container_id(&self) -> &str {
        self.container_id.as_deref().unwrap_or_default()
    }

    pub fn ifname(&self) -> &str {
        self.ifname.as_deref().unwrap_or_default()
    }
}

/// The spec: alphanumerics plus `_ . -`, starting with an alphanumeric.
fn validate_container_id(id: &str) -> Result<(), CniError> {
    let ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_CONTAINERID {id:?} is not a valid container id"),
        ))
    }
}

/// The kernel's rules for interface names.
fn validate_ifname(name: &str) -> Result<(), CniError> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0');
    if ok {
        Ok(())
    } else {
        Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_IFNAME {name:?} is not a valid interface name"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn conf(json: &str) -> Result<NetConf, CniError> {
        NetConf::parse(json.as_bytes())
    }

    #[test]
    fn parses_defaults() {
        let c = conf(r#"{"cniVersion":"1.0.0","name":"k8s","type":"skiff-cni","podCIDR":"10.244.1.0/24","runtimeConfig":{"portMappings":[]}}"#).unwrap();
        assert_eq!(c.pod_cidr, Cidr::parse("10.244.1.0/24").unwrap());
        assert_eq!(c.mtu, 1500);
        assert_eq!(
            c.bpf_pin_dir.as_deref(),
            Some(std::path::Path::new("/sys/fs/bpf/skiff"))
        );
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/skiff/cni"));
        assert!(c.prev_result.is_none());
        assert_eq!(c.pod_attach, PodAttach::Tc);
        assert_eq!(c.gso_max_size, None);
    }

    #[test]
    fn parses_ours_and_gc_attachments() {
        let c = conf(
            r#"{"cniVersion":"1.1.0","name":"k8s","type":"skiff-cni","podCIDR":"10.244.1.0/24",
            "clusterCIDR":"10.244.0.0/16","mtu":1450,"bpfPinDir":"","dataDir":"/tmp/x","podAttach":"tcx","gsoMaxSize":196608,
            "cni.dev/valid-attachments":[{"containerID":"abc","ifname":"eth0"}]}"#,
        )
        .unwrap();
        assert_eq!(c.mtu, 1450);
        assert_eq!(c.gso_max_size, Some(196608));
        assert!(c.bpf_pin_dir.is_none());
        assert_eq!(c.pod_attach, PodAttach::Tcx);
        assert_eq!(c.valid_attachments.unwrap()[0].container_id, "abc");
    }

    #[test]
    fn rejects_bad_configs() {
        let code_of = |j: &str| conf(j).unwrap_err().code;
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"n","type":"t"}"#),
            7
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"n","type":"t","podCIDR":"10.0.0.1/24"}"#),
            7
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"n","type":"t","podCIDR":"10.0.0.0/33"}"#),
            7
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"n","type":"t","podCIDR":"nope"}"#),
            7
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"9.9.9","name":"n","type":"t","podCIDR":"10.0.0.0/24"}"#),
            1
        );
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"../x","type":"t","podCIDR":"10.0.0.0/24"}"#),
            7
        );
        assert_eq!(
            code_of(
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","podCIDR":"10.0.0.0/24","clusterCIDR":"10.1.0.0/16"}"#
            ),
            7
        );
        assert_eq!(code_of("{not json"), 6);
        assert_eq!(
            code_of(r#"{"cniVersion":"1.0.0","name":"n","podCIDR":"10.0.0.0/24","mtu":10}"#),
            7
        );
        assert_eq!(
            code_of(
                r#"{"cniVersion":"1.0.0","name":"n","podCIDR":"10.0.0.0/24","gsoMaxSize":1500}"#
            ),
            7
        );
        assert_eq!(
            code_of(
                r#"{"cniVersion":"1.0.0","name":"n","podCIDR":"10.0.0.0/24","gsoMaxSize":600000}"#
            ),
            7
        );
    }

    #[test]
    fn cidr_ranges() {
        let c = Cidr::parse("10.0.0.0/30").unwrap();
        assert_eq!(
            c.usable(),
            (
                u32::from(Ipv4Addr::new(10, 0, 0, 1)),
                u32::from(Ipv4Addr::new(10, 0, 0, 2))
            )
        );
        let c = Cidr::parse("10.0.0.4/31").unwrap();
        assert_eq!(c.usable().1 - c.usable().0, 1);
        assert!(
            Cidr::parse("10.0.0.0/8")
                .unwrap()
                .contains(Ipv4Addr::new(10, 9, 9, 9))
        );
    }

    #[test]
    fn env_validation() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| map.get(k).cloned()
        };
        let get = env(&[]);
        assert_eq!(command(&get).unwrap_err().code, 4);
        let get = env(&[("CNI_COMMAND", "NOPE")]);
        assert_eq!(command(&get).unwrap_err().code, 4);
        let get = env(&[("CNI_CONTAINERID", "abc"), ("CNI_IFNAME", "eth0")]);
        assert_eq!(Env::read(Command::Add, &get).unwrap_err().code, 4);
        assert!(Env::read(Command::Del, &get).is_ok());
        let get = env(&[
            ("CNI_CONTAINERID", "a/b"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/x"),
        ]);
        assert_eq!(Env::read(Command::Add, &get).unwrap_err().code, 4);
        let get = env(&[
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "a-very-long-ifname"),
            ("CNI_NETNS", "/x"),
        ]);
        assert_eq!(Env::read(Command::Add, &get).unwrap_err().code, 4);
        let get = env(&[
            ("CNI_CONTAINERID", "abc"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", "/x"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
            ),
        ]);
        let e = Env::read(Command::Add, &get).unwrap();
        assert_eq!(e.args["K8S_POD_NAME"], "web");
        assert!(Env::read(Command::Status, &env(&[])).is_ok());
    }
}
