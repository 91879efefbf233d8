/* SPDX-License-Identifier: Apache-2.0 */
/* Pod networking on tcx: routing between pods without the host stack.
 *
 * net4_from_pod (ingress of a pod's host-side veth, i.e. what the pod sends): a packet for a
 * pod on this node goes straight out of that pod's host veth into it (bridge, routing and
 * netfilter skipped); one for a pod on another node leaves through the FIB's interface
 * (native) or the overlay device with a tunnel key (overlay); everything else (node
 * addresses, the outside world, ARP, IPv6) goes to the host stack, which routes and
 * masquerades. A pod sending with a source address not its own is dropped.
 *
 * net4_to_pod (ingress of the uplink and of the overlay device): a packet for a local pod
 * goes into it; anything else continues (NET_TCX_NEXT).
 *
 * net4_to_tunnel (egress of the overlay device): packets the host stack routes into the
 * overlay (node -> remote pod) get their tunnel key here, since a collect-metadata device
 * drops packets without one. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "fib4.h"
#include "net_maps.h"

char LICENSE[] SEC("license") = "GPL";

struct net4_pkt {
	struct ethhdr *eth;
	struct iphdr *ip;
};

static __always_inline void net_count(__u32 stat)
{
	__u64 *counter = bpf_map_lookup_elem(&net_stats, &stat);

	if (counter)
		*counter += 1;
}

/* Ethernet + IPv4 header in the linear data, pulled in when the packet has them but the
 * linear part does not. 0: not a (well-formed) IPv4 packet. */
static __always_inline int net4_parse(struct __sk_buff *skb, struct net4_pkt *p)
{
	const __u32 need = sizeof(struct ethhdr) + sizeof(struct iphdr);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + sizeof(struct ethhdr) > end)
		return 0;
	if (((struct ethhdr *)data)->h_proto != ETH_P_IP_BE)
		return 0;
	if (data + need > end) {
		if (skb->len < need || bpf_skb_pull_data(skb, need))
			return 0;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		if (data + need > end)
			return 0;
	}
	p->eth = data;
	p->ip = data + sizeof(struct ethhdr);
	if (p->ip->version != 4 || p->ip->ihl < 5)
		return 0;
	return 1;
}

static __always_inline int net4_in(__be32 addr, __be32 net, __u8 prefix)
{
	__u32 mask;

	if (prefix == 0)
		return 1;
	if (prefix > 32)
		return 0;
	mask = bpf_htonl(~0U << (32 - prefix));
	return (addr & mask) == (net & mask);
}

static __always_inline struct net4_config *net4_config_get(void)
{
	__u32 zero = 0;
	struct net4_config *cfg = bpf_map_lookup_elem(&net4_config, &zero);

	return cfg && cfg->mode != NET_MODE_UNSET ? cfg : 0;
}

/* Into the local pod behind `ep`, straight into its namespace (bpf_redirect_peer: the
 * packet enters the pod's eth0 without another pass through the host veth and the backlog
 * queue); it sees its gateway (the host veth) as the sender. With BIG TCP, bulk TCP measured
 * the same as a plain redirect out of the host veth (84.7 against 81.2 Gbit/s, cubic) and
 * request/response rates the same (`cargo xtask bench podnet`); before BIG TCP the peer
 * redirect's shorter path tipped more single streams into their slow mode on this 2-core VM.
 * Called from tc ingress only (of a pod's host veth, the uplink or the overlay device), as
 * the peer redirect requires. */
static __always_inline long net4_to_endpoint(struct net4_pkt *p, struct net4_endpoint *ep)
{
	__builtin_memcpy(p->eth->h_dest, ep->pod_mac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, ep->host_mac, ETH_ALEN);
	net_count(NET_STAT_REDIRECT_LOCAL);
	return bpf_redirect_peer(ep->ifindex, 0);
}

static __always_inline int net4_pass(void)
{
	net_count(NET_STAT_PASS);
	return TC_ACT_OK;
}

static __always_inline long net4_native(struct __sk_buff *skb, struct net4_pkt *p)
{
	struct bpf_fib_lookup fib = {};
	long rc;

	/* tot_len 0: a GSO packet's length would fail the MTU check (see fib4_params). */
	fib4_params(&fib, p->ip, skb->ingress_ifindex, 0);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* No route, fragmentation needed, ...: the stack answers with the right ICMP. */
		net_count(NET_STAT_FIB_FAIL);
		return TC_ACT_OK;
	}
	ip4_ttl_dec(p->ip);
	net_count(NET_STAT_REDIRECT_NATIVE);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* The neighbour subsystem resolves the next hop and queues the packet meanwhile. */
		struct bpf_redir_neigh nh = {
			.nh_family = AF_INET,
			.ipv4_nh = fib.ipv4_dst,
		};

		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	__builtin_memcpy(p->eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

/* Sets the tunnel key for `daddr`'s node. 0 when no node owns it. */
static __always_inline int net4_tunnel_key(struct __sk_buff *skb, struct net4_config *cfg,
					   __be32 daddr)
{
	struct net4_tunnel_key key = { .prefixlen = 32, .addr = daddr };
	struct bpf_tunnel_key tkey = {};
	struct net4_tunnel *node = bpf_map_lookup_elem(&net4_tunnels, &key);

	if (!node)
		return 0;
	tkey.remote_ipv4 = bpf_ntohl(node->node); /* host order, unlike everything else */
	tkey.tunnel_id = cfg->vni;
	tkey.tunnel_ttl = NET_TUNNEL_TTL;
	return bpf_skb_set_tunnel_key(skb, &tkey, sizeof(tkey), 0) == 0;
}

static __always_inline long net4_overlay(struct __sk_buff *skb, struct net4_pkt *p,
					 struct net4_config *cfg)
{
	if (!net4_tunnel_key(skb, cfg, p->ip->daddr)) {
		net_count(NET_STAT_NO_TUNNEL);
		return TC_ACT_OK;
	}
	ip4_ttl_dec(p->ip);
	net_count(NET_STAT_REDIRECT_TUNNEL);
	return bpf_redirect(cfg->overlay_ifindex, 0);
}

SEC("tcx/ingress")
int net4_from_pod(struct __sk_buff *skb)
{
	struct net4_pkt p;
	struct net4_endpoint *ep;
	struct net4_config *cfg;
	__be32 saddr, daddr;

	if (!net4_parse(skb, &p))
		return net4_pass();
	saddr = p.ip->saddr;
	daddr = p.ip->daddr;
	/* Anti-spoofing: the source must be this veth's pod (0.0.0.0: DHCP-like, let through). */
	if (saddr != 0) {
		ep = bpf_map_lookup_elem(&net4_endpoints, &saddr);
		if (!ep || ep->ifindex != skb->ingress_ifindex) {
			net_count(NET_STAT_DROP_SPOOF);
			return TC_ACT_SHOT;
		}
	}
	ep = bpf_map_lookup_elem(&net4_endpoints, &daddr);
	if (ep)
		return net4_to_endpoint(&p, ep);
	cfg = net4_config_get();
	if (!cfg || !net4_in(daddr, cfg->cluster_addr, cfg->cluster_prefix) ||
	    net4_in(daddr, cfg->pod_addr, cfg->pod_prefix))
		return net4_pass();
	if (p.ip->ttl <= 1) /* the stack sends the time-exceeded error */
		return net4_pass();
	if (cfg->mode == NET_MODE_OVERLAY)
		return net4_overlay(skb, &p, cfg);
	return net4_native(skb, &p);
}

SEC("tcx/ingress")
int net4_to_pod(struct __sk_buff *skb)
{
	struct net4_pkt p;
	struct net4_endpoint *ep;
	__be32 daddr;

	if (!net4_parse(skb, &p))
		return NET_TCX_NEXT;
	daddr = p.ip->daddr;
	ep = bpf_map_lookup_elem(&net4_endpoints, &daddr);
	if (!ep)
		return NET_TCX_NEXT;
	return net4_to_endpoint(&p, ep);
}

SEC("tcx/egress")
int net4_to_tunnel(struct __sk_buff *skb)
{
	struct net4_pkt p;
	struct net4_config *cfg;

	if (!net4_parse(skb, &p))
		return NET_TCX_NEXT;
	cfg = net4_config_get();
	if (!cfg || cfg->mode != NET_MODE_OVERLAY)
		return NET_TCX_NEXT;
	/* A packet redirected by net4_from_pod carries its key already; setting it again is
	 * harmless. Without a node the device would drop it anyway. */
	if (!net4_tunnel_key(skb, cfg, p.ip->daddr)) {
		net_count(NET_STAT_NO_TUNNEL);
		return TC_ACT_SHOT;
	}
	return NET_TCX_NEXT;
}
