//! The CNI commands: ADD, DEL, CHECK, GC, STATUS, VERSION.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use serde_json::Value;
use skiff_ebpf::PinDir;
use skiff_ebpf::net::{Endpoint, NetMaps, PodNet};
use skiff_netlink::link::{Link, VethEnd};
use skiff_netlink::route::Route;
use skiff_netlink::{Netlink, NetnsFile, in_netns};

use crate::config::{self, Command, Env, NetConf, PodAttach};
use crate::ipam::Ipam;
use crate::spec::{self, CniError, CniResult, Interface, IpConfig, RouteConfig, code, mac_string};

/// The pods' next hop: link-local, never on the wire (its MAC is set by a PERMANENT
/// neighbour entry), the same on every node.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// The prefix of host-side veth names.
pub const HOST_VETH_PREFIX: &str = "skf";

/// FNV-1a: stable across Rust versions and platforms (names and identities are persisted in
/// the kernel and maps, so they must not change between plugin builds).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// The host-side veth of `(container_id, ifname)`: `skf` + 11 hex digits (14 characters, under
/// the kernel's 15), derived so DEL and CHECK find it without any state.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let hash = fnv1a(&[container_id.as_bytes(), b"\0", ifname.as_bytes()]);
    format!("{HOST_VETH_PREFIX}{:011x}", hash & ((1 << 44) - 1))
}

/// The endpoint identity of a sandbox (a hash of its container id).
pub fn identity(container_id: &str) -> u64 {
    fnv1a(&[container_id.as_bytes()])
}

/// Runs one plugin invocation: the command from the environment (`get`) and the
/// configuration on `stdin`. Returns the cniVersion to answer in and the reply (a JSON value
/// to print, or nothing).
pub fn run(
    get: &dyn Fn(&str) -> Option<String>,
    stdin: &[u8],
) -> (String, Result<Option<Value>, CniError>) {
    let version = config::version_of(stdin)
        .filter(|v| spec::supported(v))
        .unwrap_or_else(|| spec::LATEST.to_owned());
    let result = (|| {
        let command = config::command(get)?;
        if command == Command::Version {
            return Ok(Some(spec::version_json(&version)));
        }
        let env = Env::read(command, get)?;
        let conf = NetConf::parse(stdin)?;
        match command {
            Command::Add => {
                add(&conf, &env).map(|r| Some(merge_prev(&conf, r.to_json(&conf.cni_version))))
            }
            Command::Del => del(&conf, &env).map(|()| None),
            Command::Check => {
                if !spec::at_least(&conf.cni_version, 0, 4) {
                    return Err(CniError::new(
                        code::INCOMPATIBLE_VERSION,
                        format!("CHECK is not defined for cniVersion {}", conf.cni_version),
                    ));
                }
                check(&conf, &env).map(|()| None)
            }
            Command::Gc => gc(&conf).map(|()| None),
            Command::Status => status(&conf).map(|()| None),
            Command::Version => unreachable!(),
        }
    })();
    (version, result)
}

/// Chaining: a previous plugin's result comes first; our interface indices follow its own.
fn merge_prev(conf: &NetConf, mut ours: Value) -> Value {
    let Some(Value::Object(prev)) = &conf.prev_result else {
        return ours;
    };
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut interfaces = list(prev.get("interfaces"));
    let offset = interfaces.len() as u64;
    interfaces.extend(list(ours.get("interfaces")));
    let mut ips = list(prev.get("ips"));
    for mut ip in list(ours.get("ips")) {
        if let Some(i) = ip.get("interface").and_then(Value::as_u64) {
            ip["interface"] = Value::from(i + offset);
        }
        ips.push(ip);
    }
    let mut routes = list(prev.get("routes"));
    routes.extend(list(ours.get("routes")));
    ours["interfaces"] = Value::Array(interfaces);
    ours["ips"] = Value::Array(ips);
    ours["routes"] = Value::Array(routes);
    if let Some(dns) = prev.get("dns") {
        ours["dns"] = dns.clone();
    }
    ours
}

fn ipam(conf: &NetConf) -> Ipam {
    Ipam::new(&conf.data_dir, &conf.name, conf.pod_cidr)
}

fn pins(conf: &NetConf) -> Option<PinDir> {
    conf.bpf_pin_dir.as_ref().map(PinDir::new)
}

fn open_netns(env: &Env) -> Result<NetnsFile, CniError> {
    let path = env.netns.as_deref().unwrap_or_default();
    NetnsFile::open(path).map_err(|err| {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("cannot open the sandbox netns {path}"),
        )
        .with_details(err)
    })
}

/// ADD: address, veth pair, pod-side and host-side configuration, endpoint registration. A
/// failure undoes all of it. A repeated ADD for the same container and ifname keeps the
/// address and rebuilds the interfaces.
pub fn add(conf: &NetConf, env: &Env) -> Result<CniResult, CniError> {
    let netns = open_netns(env)?;
    let ipam = ipam(conf);
    let (address, _fresh) = ipam.allocate(env.container_id(), env.ifname())?;
    match setup(conf, env, &netns, address) {
        Ok(result) => Ok(result),
        Err(err) => {
            // Best effort: the error being reported is the setup's.
            let _ = teardown(conf, env.container_id(), env.ifname(), Some(address));
            let _ = ipam.release(env.container_id(), env.ifname());
            Err(err)
        }
    }
}

fn setup(
    conf: &NetConf,
    env: &Env,
    netns: &NetnsFile,
    address: Ipv4Addr,
) -> Result<CniResult, CniError> {
    let ifname = env.ifname();
    let host_name = host_veth_name(env.container_id(), ifname);
    let mut nl = Netlink::open()?;
    if let Some(stale) = nl.link_by_name(&host_name)? {
        // A repeated ADD (or a leftover of a failed one): start from scratch.
        if let Some(pins) = pins(conf)
            && pins.path().exists()
        {
            PodNet::detach(&pins, stale.index)?;
        }
        nl.delete_link(stale.index)?;
    }
    nl.create_veth(
        VethEnd {
            name: &host_name,
            netns: None,
            mtu: Some(conf.mtu),
            gso_ipv4_max: conf.gso_max_size,
        },
        VethEnd {
            name: ifname,
            netns: Some(netns),
            mtu: Some(conf.mtu),
            gso_ipv4_max: conf.gso_max_size,
        },
    )
    .map_err(|err| {
        if err.is_exists() {
            CniError::new(
                code::INVALID_ENV,
                format!("an interface named {ifname} (or {host_name} on the host) already exists"),
            )
            .with_details(err)
        } else {
            err.into()
        }
    })?;
    let host = nl
        .link_by_name(&host_name)?
        .ok_or_else(|| CniError::new(code::IO, format!("{host_name} vanished after creation")))?;
    if let Some(pins) = pins(conf)
        && conf.pod_attach == PodAttach::Tc
    {
        // Before the link is up: adding clsact to an up link costs a device deactivation.
        PodNet::attach_pod_filter(&mut nl, &pins, host.index)?;
    }
    nl.set_up(host.index, true)?;

    let host_mac = host.mac;
    let pod = in_netns(netns, || {
        let mut nl = Netlink::open()?;
        if let Some(lo) = nl.link_by_name("lo")?
            && !lo.up
        {
            nl.set_up(lo.index, true)?;
        }
        let pod = nl
            .link_by_name(ifname)?
            .ok_or_else(|| skiff_netlink::Error {
                op: format!("finding {ifname} in the sandbox"),
                errno: libc::ENODEV,
                detail: None,
            })?;
        nl.add_address(pod.index, address, 32)?;
        nl.set_up(pod.index, true)?;
        nl.replace_route(&Route::link((GATEWAY, 32), pod.index))?;
        nl.replace_route(&Route::via(
            (Ipv4Addr::UNSPECIFIED, 0),
            GATEWAY,
            Some(pod.index),
        ))?;
        nl.add_permanent_neighbour(pod.index, GATEWAY, host_mac)?;
        Ok(pod)
    })
    .map_err(|err| CniError::from(err.context("sandbox")))?;

    nl.replace_route(&Route::link((address, 32), host.index))?;
    if let Some(pins) = pins(conf) {
        NetMaps::open(&pins)?.put_endpoint(&endpoint(env.container_id(), address, &host, &pod))?;
        if conf.pod_attach == PodAttach::Tcx {
            PodNet::attach_pod(&pins, host.index)?;
        }
    }

    Ok(CniResult {
        interfaces: vec![
            Interface {
                name: host_name,
                mac: mac_string(host.mac),
                sandbox: None,
            },
            Interface {
                name: ifname.to_owned(),
                mac: mac_string(pod.mac),
                sandbox: env.netns.clone(),
            },
        ],
        ips: vec![IpConfig {
            address: (address, 32),
            gateway: Some(GATEWAY),
            interface: 1,
        }],
        routes: vec![RouteConfig {
            dst: (Ipv4Addr::UNSPECIFIED, 0),
            gw: Some(GATEWAY),
        }],
    })
}

fn endpoint(container_id: &str, address: Ipv4Addr, host: &Link, pod: &Link) -> Endpoint {
    Endpoint {
        address,
        ifindex: host.index,
        pod_mac: pod.mac,
        host_mac: host.mac,
        identity: identity(container_id),
    }
}

/// Removes what ADD made on the host for `(container_id, ifname)`: the endpoint (when it is
/// still this sandbox's), the tcx link, the host route and the veth pair (its pod end goes
/// with it). Whatever is already gone is skipped.
fn teardown(
    conf: &NetConf,
    container_id: &str,
    ifname: &str,
    address: Option<Ipv4Addr>,
) -> Result<(), CniError> {
    let host_name = host_veth_name(container_id, ifname);
    let mut nl = Netlink::open()?;
    let host = nl.link_by_name(&host_name)?;
    // Without a pin directory there is nothing of ours pinned (and nothing to create now).
    if let Some(pins) = pins(conf)
        && pins.path().exists()
    {
        if let Some(address) = address {
            let maps = NetMaps::open(&pins)?;
            if maps
                .endpoint(address)?
                .is_some_and(|e| e.identity == identity(container_id))
            {
                maps.remove_endpoint(address)?;
            }
        }
        if let Some(host) = &host {
            PodNet::detach(&pins, host.index)?;
        }
    }
    if let Some(host) = &host {
        if let Some(address) = address {
            ignore_missing(nl.delete_route(&Route::link((address, 32), host.index)))?;
        }
        ignore_missing(nl.delete_link(host.index))?;
    }
    Ok(())
}

fn ignore_missing(result: skiff_netlink::Result<()>) -> Result<(), CniError> {
    match result {
        Err(err) if !err.is_not_found() => Err(err.into()),
        _ => Ok(()),
    }
}

/// DEL: idempotent; an unknown container or a missing netns is success.
pub fn del(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let ipam = ipam(conf);
    let address = ipam.lookup(env.container_id(), env.ifname())?;
    teardown(conf, env.container_id(), env.ifname(), address)?;
    ipam.release(env.container_id(), env.ifname())?;
    Ok(())
}

fn check_failed(msg: String) -> CniError {
    CniError::new(code::IO, msg)
}

/// CHECK: everything ADD made is there and as ADD made it.
pub fn check(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let (container_id, ifname) = (env.container_id(), env.ifname());
    let address = ipam(conf).lookup(container_id, ifname)?.ok_or_else(|| {
        CniError::new(
            code::UNKNOWN_CONTAINER,
            format!("no address allocated to {container_id}/{ifname}"),
        )
    })?;
    if let Some(Value::Object(prev)) = &conf.prev_result {
        let listed = prev
            .get("ips")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.get("address")?.as_str())
            .any(|a| a.split('/').next() == Some(&address.to_string()));
        if !listed {
            return Err(check_failed(format!("prevResult does not list {address}")));
        }
    }
    let netns = open_netns(env)?;
    let host_name = host_veth_name(container_id, ifname);
    let mut nl = Netlink::open()?;
    let host = nl
        .link_by_name(&host_name)?
        .ok_or_else(|| check_failed(format!("host veth {host_name} is missing")))?;
    if !host.up {
        return Err(check_failed(format!("host veth {host_name} is down")));
    }
    if !nl
        .routes()?
        .contains(&Route::link((address, 32), host.index))
    {
        return Err(check_failed(format!(
            "host route {address}/32 dev {host_name} is missing"
        )));
    }
    let host_mac = host.mac;
    let mtu = conf.mtu;
    let pod = in_netns(&netns, || {
        let mut nl = Netlink::open()?;
        {
            let Some(pod) = nl.link_by_name(ifname)? else {
                return Ok(Err(format!("{ifname} is missing in the sandbox")));
            };
            if !pod.up || pod.mtu != mtu {
                return Ok(Err(format!("{ifname} is down or its MTU is not {mtu}")));
            }
            if !nl.addresses(pod.index)?.contains(&(address, 32)) {
                return Ok(Err(format!("{ifname} lacks {address}/32")));
            }
            let routes = nl.routes()?;
            let wanted = [
                Route::link((GATEWAY, 32), pod.index),
                Route::via((Ipv4Addr::UNSPECIFIED, 0), GATEWAY, Some(pod.index)),
            ];
            if let Some(missing) = wanted.iter().find(|r| !routes.contains(r)) {
                return Ok(Err(format!("sandbox route {missing} is missing")));
            }
            let neighbour = nl.neighbours()?.into_iter().any(|n| {
                n.dev == pod.index && n.address == GATEWAY && n.permanent && n.mac == Some(host_mac)
            });
            if !neighbour {
                return Ok(Err(format!(
                    "the permanent neighbour {GATEWAY} on {ifname} is missing"
                )));
            }
            Ok(Ok(pod))
        }
    })
    .map_err(|err| CniError::from(err.context("sandbox")))?
    .map_err(check_failed)?;
    if let Some(pins) = pins(conf) {
        let found = NetMaps::open(&pins)?.endpoint(address)?;
        let wanted = endpoint(container_id, address, &host, &pod);
        if found.as_ref() != Some(&wanted) {
            return Err(check_failed(format!(
                "endpoint {address}: found {found:?}, wanted {wanted:?}"
            )));
        }
    }
    Ok(())
}

/// GC (1.1): releases every attachment not in `cni.dev/valid-attachments`: its address, its
/// endpoint, its host veth. Host veths of ours that no valid attachment names go too.
pub fn gc(conf: &NetConf) -> Result<(), CniError> {
    let valid = conf
        .valid_attachments
        .as_ref()
        .ok_or_else(|| CniError::new(code::INVALID_CONFIG, "GC needs cni.dev/valid-attachments"))?;
    let keep: HashSet<(String, String)> = valid
        .iter()
        .map(|a| (a.container_id.clone(), a.ifname.clone()))
        .collect();
    let ipam = ipam(conf);
    for allocation in ipam.allocations()? {
        let owner = (allocation.container_id.clone(), allocation.ifname.clone());
        if !keep.contains(&owner) {
            teardown(conf, &owner.0, &owner.1, Some(allocation.address))?;
        }
    }
    ipam.retain(&keep)?;

    let keep_names: HashSet<String> = keep.iter().map(|(c, i)| host_veth_name(c, i)).collect();
    let mut nl = Netlink::open()?;
    let pins = pins(conf).filter(|p| p.path().exists());
    for link in nl.links()? {
        let ours = link.name.len() == HOST_VETH_PREFIX.len() + 11
            && link.name.starts_with(HOST_VETH_PREFIX)
            && link.name[HOST_VETH_PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
        if ours && !keep_names.contains(&link.name) {
            if let Some(pins) = &pins {
                PodNet::detach(pins, link.index)?;
            }
            ignore_missing(nl.delete_link(link.index))?;
        }
    }
    if let Some(pins) = &pins {
        let maps = NetMaps::open(pins)?;
        let allocated: HashSet<Ipv4Addr> = ipam.allocations()?.iter().map(|a| a.address).collect();
        for endpoint in maps.endpoints()? {
            if conf.pod_cidr.contains(endpoint.address) && !allocated.contains(&endpoint.address) {
                maps.remove_endpoint(endpoint.address)?;
            }
        }
    }
    Ok(())
}

/// STATUS (1.1): ready when the data directory is writable and the podCIDR has a free
/// address.
pub fn status(conf: &NetConf) -> Result<(), CniError> {
    let ipam = ipam(conf);
    let probe = ipam.dir().join(format!(".status-{}", std::process::id()));
    let writable = std::fs::create_dir_all(ipam.dir())
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(err) = writable {
        return Err(CniError::new(
            code::NOT_AVAILABLE,
            format!("data directory {} is not writable", conf.data_dir.display()),
        )
        .with_details(err));
    }
    let free = ipam
        .free()
        .map_err(|err| CniError::new(code::NOT_AVAILABLE, err.msg).with_details(err.details))?;
    if free == 0 {
        return Err(CniError::new(
            code::NOT_AVAILABLE,
            format!("no free addresses in podCIDR {}", conf.pod_cidr),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_stable_and_short() {
        let a = host_veth_name("abc", "eth0");
        assert_eq!(a, host_veth_name("abc", "eth0"));
        assert_eq!(a.len(), 14);
        assert!(a.starts_with("skf"));
        assert_ne!(a, host_veth_name("abc", "eth1"));
        assert_ne!(a, host_veth_name("abd", "eth0"));
        // Pinned: a changed hash would orphan every existing pod's veth.
        assert_eq!(fnv1a(&[b"a"]), 0xaf63dc4c8601ec8c);
    }

    #[test]
    fn version_without_config_answers_latest() {
        let get = |k: &str| (k == "CNI_COMMAND").then(|| "VERSION".to_owned());
        let (version, reply) = run(&get, b"");
        assert_eq!(version, "1.1.0");
        let reply = reply.unwrap().unwrap();
        assert_eq!(reply["supportedVersions"][4], "1.1.0");
        let (version, reply) = run(&get, br#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(version, "0.4.0");
        assert_eq!(reply.unwrap().unwrap()["cniVersion"], "0.4.0");
    }

    #[test]
    fn chaining_offsets_interface_indices() {
        let mut conf = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"n","type":"t","podCIDR":"10.0.0.0/24",
            "prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"x"}],"ips":[],"dns":{"nameservers":["1.1.1.1"]}}}"#,
        )
        .unwrap();
        let ours = serde_json::json!({"interfaces":[{"name":"a"},{"name":"b"}],"ips":[{"address":"10.0.0.2/32","interface":1}],"routes":[],"dns":{}});
        let merged = merge_prev(&conf, ours.clone());
        assert_eq!(merged["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(merged["ips"][0]["interface"], 2);
        assert_eq!(merged["dns"]["nameservers"][0], "1.1.1.1");
        conf.prev_result = None;
        assert_eq!(merge_prev(&conf, ours.clone()), ours);
    }
}
