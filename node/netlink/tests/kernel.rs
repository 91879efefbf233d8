//! skiff-netlink against the kernel (root), inside namespaces this test creates.

use std::net::Ipv4Addr;

use skiff_netlab::NetNs;
use skiff_netlink::link::VethEnd;
use skiff_netlink::route::{Route, Scope};
use skiff_netlink::{Netlink, NetnsFile, in_netns, sysctl_set};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

#[test]
fn veth_addresses_routes_neighbours_vxlan_sysctl() {
    if !is_root() {
        return;
    }
    let a = NetNs::create("nla").unwrap();
    let b = NetNs::create("nlb").unwrap();
    let a_file = NetnsFile::open(a.path()).unwrap();
    let b_file = NetnsFile::open(b.path()).unwrap();

    let host = in_netns(&a_file, || {
        let mut nl = Netlink::open()?;
        nl.create_veth(
            VethEnd {
                name: "h0",
                netns: None,
                mtu: Some(1400),
                gso_ipv4_max: Some(128 * 1024),
            },
            VethEnd {
                name: "p0",
                netns: Some(&b_file),
                mtu: Some(1400),
                gso_ipv4_max: Some(96 * 1024),
            },
        )?;
        let err = nl
            .create_veth(
                VethEnd {
                    name: "h0",
                    netns: None,
                    mtu: None,
                    gso_ipv4_max: None,
                },
                VethEnd {
                    name: "p1",
                    netns: None,
                    mtu: None,
                    gso_ipv4_max: None,
                },
            )
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        assert!(
            nl.link_by_name("p0")?.is_none(),
            "the peer is in the other namespace"
        );
        let host = nl.link_by_name("h0")?.expect("h0");
        assert_eq!(host.mtu, 1400);
        assert_eq!(
            host.gso_ipv4_max,
            128 * 1024,
            "BIG TCP size set at creation"
        );
        assert!(
            host.tso_max > 128 * 1024,
            "veth takes up to {}",
            host.tso_max
        );
        assert!(!host.up);
        nl.set_up(host.index, true)?;
        nl.set_mtu(host.index, 1300)?;
        nl.set_gso_ipv4_max(host.index, 192 * 1024)?;
        let host = nl.link_by_name("h0")?.unwrap();
        assert!(host.up && host.mtu == 1300);
        assert_eq!(host.gso_ipv4_max, 192 * 1024);
        assert!(
            nl.set_gso_ipv4_max(host.index, host.tso_max + 1).is_err(),
            "beyond what the device takes"
        );
        let pod = Ipv4Addr::new(10, 9, 0, 2);
        nl.add_route(&Route::link((pod, 32), host.index))?;
        assert!(
            nl.add_route(&Route::link((pod, 32), host.index))
                .unwrap_err()
                .is_exists()
        );
        nl.replace_route(&Route::link((pod, 32), host.index))?;
        assert!(nl.routes()?.contains(&Route::link((pod, 32), host.index)));
        let onlink = Route {
            dst: (Ipv4Addr::new(10, 10, 0, 0), 16),
            via: Some(Ipv4Addr::new(192, 0, 2, 1)),
            dev: Some(host.index),
            scope: Scope::Universe,
            onlink: true,
        };
        nl.add_route(&onlink)?;
        assert!(nl.routes()?.contains(&onlink));
        nl.delete_route(&onlink)?;
        assert!(nl.delete_route(&onlink).unwrap_err().is_not_found());
        nl.create_vxlan_external("vx0", 4789, Some(1450))?;
        let vx = nl.link_by_name("vx0")?.expect("vx0");
        assert_eq!(vx.mtu, 1450);
        nl.delete_link(vx.index)?;
        assert!(nl.link_by_name("vx0")?.is_none());
        sysctl_set("net.ipv4.ip_forward", "1")?;
        assert_eq!(
            std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .unwrap()
                .trim(),
            "1"
        );
        Ok(host)
    })
    .unwrap();

    in_netns(&b_file, || {
        let mut nl = Netlink::open()?;
        let pod = nl.link_by_name("p0")?.expect("p0 created in b");
        assert_eq!(pod.mtu, 1400);
        assert_eq!(pod.gso_ipv4_max, 96 * 1024, "the peer's own size");
        nl.add_address(pod.index, Ipv4Addr::new(10, 9, 0, 2), 32)?;
        assert!(
            nl.add_address(pod.index, Ipv4Addr::new(10, 9, 0, 2), 32)
                .unwrap_err()
                .is_exists()
        );
        assert_eq!(
            nl.addresses(pod.index)?,
            vec![(Ipv4Addr::new(10, 9, 0, 2), 32)]
        );
        nl.set_up(pod.index, true)?;
        let gw = Ipv4Addr::new(169, 254, 1, 1);
        nl.add_route(&Route::link((gw, 32), pod.index))?;
        nl.add_route(&Route::via((Ipv4Addr::UNSPECIFIED, 0), gw, Some(pod.index)))?;
        nl.add_permanent_neighbour(pod.index, gw, host.mac)?;
        let neighbours = nl.neighbours()?;
        assert!(
            neighbours
                .iter()
                .any(|n| n.address == gw && n.permanent && n.mac == Some(host.mac))
        );
        nl.delete_neighbour(pod.index, gw)?;
        nl.delete_address(pod.index, Ipv4Addr::new(10, 9, 0, 2), 32)?;
        assert!(nl.addresses(pod.index)?.is_empty());
        Ok(())
    })
    .unwrap();

    // Deleting one end removes the pair.
    in_netns(&a_file, || {
        let mut nl = Netlink::open()?;
        nl.delete_link(host.index)?;
        assert!(nl.delete_link(host.index).unwrap_err().is_not_found());
        Ok(())
    })
    .unwrap();
    in_netns(&b_file, || {
        let mut nl = Netlink::open()?;
        assert!(nl.link_by_name("p0")?.is_none());
        Ok(())
    })
    .unwrap();
    assert!(
        NetnsFile::open("/var/run/netns/does-not-exist")
            .unwrap_err()
            .is_not_found()
    );
}
