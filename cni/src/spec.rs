//! What the CNI specification fixes: supported versions, error codes, the JSON of results and
//! errors.

use std::fmt;
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::{Value, json};

/// The versions whose configuration and result formats we speak.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// The newest supported version (VERSION's answer when stdin names none).
pub const LATEST: &str = "1.1.0";

/// Whether `version` is one we support.
pub fn supported(version: &str) -> bool {
    SUPPORTED_VERSIONS.contains(&version)
}

/// Whether `version` is at least `major.minor`.
pub fn at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// The spec's well-known error codes (plus ours above 99 would go here).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO: u32 = 5;
    pub const DECODE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    pub const NOT_AVAILABLE_DEGRADED: u32 = 51;
}

/// A plugin error: printed as the spec's error JSON on stdout, with a non-zero exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl fmt::Display) -> CniError {
        self.details = details.to_string();
        self
    }

    /// The error JSON for `version` (the request's, or the latest when it was unreadable).
    pub fn to_json(&self, version: &str) -> Value {
        let mut error = json!({
            "cniVersion": version,
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            error["details"] = Value::String(self.details.clone());
        }
        error
    }
}

impl fmt::Display for CniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "code {}: {}", self.code, self.msg)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

impl std::error::Error for CniError {}

impl From<skiff_netlink::Error> for CniError {
    fn from(err: skiff_netlink::Error) -> CniError {
        CniError::new(code::IO, err.op.clone()).with_details(err)
    }
}

impl From<skiff_ebpf::Error> for CniError {
    fn from(err: skiff_ebpf::Error) -> CniError {
        let code = match err {
            skiff_ebpf::Error::MapFull { .. } => code::TRY_AGAIN_LATER,
            _ => code::IO,
        };
        CniError::new(code, "pod network dataplane").with_details(err)
    }
}

/// An interface in a result.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    /// The netns path for interfaces inside the sandbox; absent for host ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// An address in a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    pub address: (Ipv4Addr, u8),
    pub gateway: Option<Ipv4Addr>,
    /// Index into the result's interfaces.
    pub interface: usize,
}

/// A route in a result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteConfig {
    pub dst: (Ipv4Addr, u8),
    pub gw: Option<Ipv4Addr>,
}

/// An ADD result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<RouteConfig>,
}

impl CniResult {
    /// The result JSON in `version`'s shape: 0.3.x/0.4.0 tag each IP with `"version": "4"`;
    /// 1.x dropped that field.
    pub fn to_json(&self, version: &str) -> Value {
        let legacy = !at_least(version, 1, 0);
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = json!({
                    "address": format!("{}/{}", ip.address.0, ip.address.1),
                    "interface": ip.interface,
                });
                if let Some(gw) = ip.gateway {
                    v["gateway"] = Value::String(gw.to_string());
                }
                if legacy {
                    v["version"] = Value::String("4".into());
                }
                v
            })
            .collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                let mut v = json!({ "dst": format!("{}/{}", r.dst.0, r.dst.1) });
                if let Some(gw) = r.gw {
                    v["gw"] = Value::String(gw.to_string());
                }
                v
            })
            .collect();
        json!({
            "cniVersion": version,
            "interfaces": self.interfaces,
            "ips": ips,
            "routes": routes,
            "dns": {},
        })
    }
}

/// The VERSION answer.
pub fn version_json(version: &str) -> Value {
    json!({ "cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS })
}

/// A MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CniResult {
        CniResult {
            interfaces: vec![
                Interface {
                    name: "skf0123456789a".into(),
                    mac: mac_string([0xaa, 0, 0, 0, 0, 1]),
                    sandbox: None,
                },
                Interface {
                    name: "eth0".into(),
                    mac: mac_string([0xaa, 0, 0, 0, 0, 2]),
                    sandbox: Some("/var/run/netns/x".into()),
                },
            ],
            ips: vec![IpConfig {
                address: (Ipv4Addr::new(10, 244, 0, 2), 32),
                gateway: Some(Ipv4Addr::new(169, 254, 1, 1)),
                interface: 1,
            }],
            routes: vec![RouteConfig {
                dst: (Ipv4Addr::UNSPECIFIED, 0),
                gw: Some(Ipv4Addr::new(169, 254, 1, 1)),
            }],
        }
    }

    #[test]
    fn result_1x_shape() {
        let v = sample().to_json("1.1.0");
        assert_eq!(v["cniVersion"], "1.1.0");
        assert_eq!(v["interfaces"][0]["mac"], "aa:00:00:00:00:01");
        assert!(v["interfaces"][0].get("sandbox").is_none());
        assert_eq!(v["interfaces"][1]["sandbox"], "/var/run/netns/x");
        assert_eq!(v["ips"][0]["address"], "10.244.0.2/32");
        assert_eq!(v["ips"][0]["gateway"], "169.254.1.1");
        assert_eq!(v["ips"][0]["interface"], 1);
        assert!(v["ips"][0].get("version").is_none());
        assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(v["routes"][0]["gw"], "169.254.1.1");
        assert!(v["dns"].is_object());
    }

    #[test]
    fn result_legacy_shape_has_ip_version() {
        let v = sample().to_json("0.4.0");
        assert_eq!(v["cniVersion"], "0.4.0");
        assert_eq!(v["ips"][0]["version"], "4");
    }

    #[test]
    fn error_json() {
        let e = CniError::new(code::INVALID_CONFIG, "bad podCIDR").with_details("x/33");
        let v = e.to_json("1.0.0");
        assert_eq!(
            v,
            json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad podCIDR", "details": "x/33"})
        );
        let v = CniError::new(code::IO, "m").to_json("1.1.0");
        assert!(v.get("details").is_none());
    }

    #[test]
    fn versions() {
        assert!(supported("1.0.0") && supported("0.3.1") && !supported("0.2.0"));
        assert!(at_least("1.1.0", 1, 1) && !at_least("1.0.0", 1, 1) && at_least("0.4.0", 0, 4));
        let v = version_json("1.1.0");
        assert_eq!(v["supportedVersions"].as_array().unwrap().len(), 5);
    }
}
