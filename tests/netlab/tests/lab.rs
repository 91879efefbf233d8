//! The lab itself (root): a service lab routes between its namespaces, the echo servers answer
//! inside them, a guarded child lands in its namespace and cgroup, kube-proxy-shaped rules load
//! and DNAT, and everything is gone after the guards drop.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use skiff_netlab::kubeproxy::{self, IptablesSync, ServicePort};
use skiff_netlab::serve::{TcpServer, UdpServer};
use skiff_netlab::topology::CLUSTER_CIDR;
use skiff_netlab::{Cgroup, Guarded, ServiceLab};

fn ask_tcp(to: SocketAddr) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf)?;
    Ok(buf.to_vec())
}

#[test]
fn lab_routes_serves_loads_rules_and_cleans_up() {
    let (names, cgroup_path) = {
        let lab = ServiceLab::create(2).unwrap();
        let pod = lab.backends[1];
        let _tcp = TcpServer::start(
            &lab.pods,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080)),
            2,
            None,
        )
        .unwrap();
        let _udp = UdpServer::start(&lab.pods, SocketAddr::from((pod, 5353))).unwrap();

        // Client pod -> node -> pod, over TCP and UDP.
        let answer = lab
            .client
            .within(move || ask_tcp(SocketAddr::from((pod, 8080))))
            .unwrap()
            .unwrap();
        assert_eq!(answer, b"ping");
        let echoed = lab
            .client
            .within(move || {
                let socket = UdpSocket::bind("0.0.0.0:0")?;
                socket.set_read_timeout(Some(Duration::from_secs(2)))?;
                socket.send_to(b"dns?", (pod, 5353))?;
                let mut buf = [0u8; 16];
                let (n, _) = socket.recv_from(&mut buf)?;
                std::io::Result::Ok(buf[..n].to_vec())
            })
            .unwrap()
            .unwrap();
        assert_eq!(echoed, b"dns?");

        // A ClusterIP through kube-proxy-shaped rules in the node, each mode in turn.
        let service = ServicePort {
            namespace: "t".into(),
            name: "web".into(),
            port_name: "http".into(),
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 80,
            endpoints: vec![std::net::SocketAddrV4::new(pod, 8080)],
        };
        let to = SocketAddr::from((service.cluster_ip, 80));
        let text = kubeproxy::iptables_restore(
            std::slice::from_ref(&service),
            CLUSTER_CIDR,
            IptablesSync::Full,
        );
        let mut restore = lab.node.command("iptables-restore").unwrap();
        skiff_netlab::process::timed(&mut restore, text.as_bytes()).unwrap();
        assert_eq!(
            lab.client.within(move || ask_tcp(to)).unwrap().unwrap(),
            b"ping"
        );
        let mut flush = lab.node.command("iptables-restore").unwrap();
        skiff_netlab::process::timed(&mut flush, b"*filter\nCOMMIT\n*nat\nCOMMIT\n").unwrap();

        let text =
            kubeproxy::nft_ruleset(std::slice::from_ref(&service), CLUSTER_CIDR, "10.96.0.0/12");
        let mut nft = lab.node.command("nft").unwrap();
        nft.args(["-f", "-"]);
        skiff_netlab::process::timed(&mut nft, text.as_bytes()).unwrap();
        assert_eq!(
            lab.client.within(move || ask_tcp(to)).unwrap().unwrap(),
            b"ping"
        );

        // A guarded child in the client namespace and a cgroup of its own.
        let cgroup = Cgroup::create("test").unwrap();
        let mut command = Command::new("sleep");
        command.arg("60");
        lab.client.enter_in(&mut command).unwrap();
        cgroup.enter_in(&mut command).unwrap();
        let child = Guarded::spawn(&mut command).unwrap();
        assert_eq!(cgroup.pids(), vec![child.pid()]);
        let own = std::fs::read_link(format!("/proc/{}/ns/net", child.pid())).unwrap();
        let expected = std::fs::metadata(lab.client.path()).unwrap();
        let child_ns = std::fs::metadata(format!("/proc/{}/ns/net", child.pid())).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(child_ns.ino(), expected.ino(), "{own:?}");
        drop(child);

        let names: Vec<String> = [&lab.client, &lab.node, &lab.pods]
            .iter()
            .map(|ns| ns.name().to_owned())
            .collect();
        (names, cgroup.path().to_owned())
    };
    for name in names {
        assert!(
            !Path::new("/var/run/netns").join(&name).exists(),
            "{name} left behind"
        );
    }
    assert!(
        !cgroup_path.exists(),
        "{} left behind",
        cgroup_path.display()
    );
}
