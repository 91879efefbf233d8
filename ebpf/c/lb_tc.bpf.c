/* SPDX-License-Identifier: Apache-2.0 */
/* Per-packet service load balancing on tc (tcx links): packets to a service frontend that no
 * local socket sent (NodePorts, ExternalIPs, LoadBalancer IPs, ClusterIPs reached by packets)
 * are DNATed to a backend on ingress; replies get their source restored on egress (or on the
 * ingress of a pod's host-side veth). The socket programs (lb_sock.bpf.c) handle local
 * sockets before any packet exists; these handle everything else.
 *
 * Flows to a backend on another node (BACKEND_REMOTE) of a service without traffic policy
 * Local are also SNATed on ingress (lb_packet.h): their source becomes a node address and a
 * SNAT port, so that the backend answers this node; that reply, arriving on the uplink's
 * ingress for node address:SNAT port, is found in lb4_snat and translated back (frontend ->
 * client). Both carry a local address (the node's) on one side after translation, which the
 * stack's forwarding would drop as a martian source (unless accept_local): they are sent on
 * by lb4_tc_route instead, to the egress of the interface the FIB names (bpf_redirect with
 * the neighbour's MAC, or bpf_redirect_neigh when the neighbour is not resolved yet), TTL
 * decremented; when the FIB has no answer (no route, fragmentation needed, TTL running out)
 * they go to the stack.
 *
 * Verdicts: LB_TC_NEXT for everything passed on, translated or not (tcx runs the next program
 * of the chain, then the stack); TC_ACT_SHOT for denied or dropped packets; TC_ACT_REDIRECT
 * for the reject answers (back out of the interface the packet came in on) and for SNATed
 * packets sent on by lb4_tc_route. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "fib4.h"
#include "lb_packet.h"

char LICENSE[] SEC("license") = "GPL";

/* Parses the skb, pulling headers into the linear data once when they are not there. */
static __always_inline int lb4_parse_skb(struct __sk_buff *skb, struct lb4_pkt *p)
{
	int rc = lb4_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);

	if (rc != LB_PARSE_SHORT)
		return rc;
	if (bpf_skb_pull_data(skb, skb->len < LB_PULL_LEN ? skb->len : LB_PULL_LEN))
		return LB_PARSE_MALFORMED;
	rc = lb4_parse((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len, p);
	return rc == LB_PARSE_SHORT ? LB_PARSE_MALFORMED : rc;
}

/* Parses and, for a later fragment, finds its ports. 0 when the packet is not for us. */
static __always_inline int lb4_tc_packet(struct __sk_buff *skb, struct lb4_pkt *p)
{
	int rc = lb4_parse_skb(skb, p);

	if (rc == LB_PARSE_MALFORMED)
		lb_count(LB_STAT_PKT_MALFORMED);
	if (rc != LB_PARSE_OK)
		return 0;
	if (p->frag == LB_FRAG_LATER && !lb4_frag_ports(p))
		return 0;
	return 1;
}

/* Turns the packet into its reject answer and sends it back where it came from. */
static __always_inline int lb4_tc_reject(struct __sk_buff *skb, const struct lb4_pkt *p)
{
	struct lb4_reject r = {};

	if (lb4_reject_prepare((void *)(long)skb->data, (void *)(long)skb->data_end, p, &r))
		return TC_ACT_SHOT;
	if (r.proto == IPPROTO_TCP) {
		if (bpf_skb_change_tail(skb, LB_RST_LEN, 0))
			return TC_ACT_SHOT;
	} else {
		/* Room in front for the new IP and ICMP headers: the old IP header then sits
		 * where the ICMP message quotes it. */
		if (bpf_skb_change_head(skb, LB_ICMP_GROW, 0))
			return TC_ACT_SHOT;
		if (bpf_skb_change_tail(skb, LB_ICMP_LEN, 0))
			return TC_ACT_SHOT;
	}
	if (bpf_skb_pull_data(skb, skb->len))
		return TC_ACT_SHOT;
	if (lb4_reject_write((void *)(long)skb->data, (void *)(long)skb->data_end, &r))
		return TC_ACT_SHOT;
	return bpf_redirect(skb->ifindex, 0);
}

/* A SNATed packet (either direction) on to where the FIB sends it, past the stack's source
 * checks: the egress of the FIB's interface, MACs set (or resolved by bpf_redirect_neigh),
 * TTL decremented. The stack when the FIB cannot say. */
static __always_inline int lb4_tc_route(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct bpf_fib_lookup fib = {};
	int rc;

	if ((void *)(ip + 1) > data_end)
		return LB_TC_NEXT;
	if (ip->ttl <= 1) /* the stack sends the time-exceeded error */
		return LB_TC_NEXT;
	fib4_params(&fib, ip, skb->ifindex, 0);
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH)
		return LB_TC_NEXT;
	ip4_ttl_dec(ip);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		return bpf_redirect_neigh(fib.ifindex, 0, 0, 0);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return bpf_redirect(fib.ifindex, 0);
}

/* A remote backend's reply to a SNATed flow: back to frontend -> client. */
static __always_inline int lb4_tc_snat_reply(struct __sk_buff *skb, const struct lb4_pkt *p)
{
	__u8 flags = lb4_tcp_flags((void *)(long)skb->data, (void *)(long)skb->data_end, p);
	struct lb4_snat_entry *e = lb4_snat_reply_lookup(p, flags);
	__be32 client, frontend;
	__be16 client_port, frontend_port;

	if (!e)
		return LB_TC_NEXT;
	client = e->client;
	client_port = e->client_port;
	frontend = e->frontend;
	frontend_port = e->frontend_port;
	if (lb4_skb_rewrite(skb, p, 1, client, client_port) ||
	    lb4_skb_rewrite(skb, p, 0, frontend, frontend_port))
		return TC_ACT_SHOT;
	lb4_frag_remember(p);
	lb_count(LB_STAT_PKT_REVERSED);
	return lb4_tc_route(skb);
}

SEC("tcx/ingress")
int lb4_tc_ingress(struct __sk_buff *skb)
{
	struct lb4_snat_to snat = {};
	struct lb4_service *svc;
	struct lb4_nat nat = {};
	struct lb4_key key;
	struct lb4_pkt p;
	__u8 flags;
	int verdict;

	if (!lb4_tc_packet(skb, &p))
		return LB_TC_NEXT;
	svc = lb4_lookup_service(&key, p.daddr, p.dport, p.proto);
	if (!svc)
		return lb4_tc_snat_reply(skb, &p);
	flags = lb4_tcp_flags((void *)(long)skb->data, (void *)(long)skb->data_end, &p);
	verdict = lb4_forward_snat(&key, svc, &p, &nat, &snat, 1, flags);
	switch (verdict) {
	case LB4_DNAT:
	case LB4_SNAT:
		break;
	case LB4_DENY:
		lb_count(LB_STAT_PKT_SOURCE_DENIED);
		return TC_ACT_SHOT;
	case LB4_REJECT:
		lb_count(LB_STAT_PKT_NO_BACKEND);
		return lb4_tc_reject(skb, &p);
	case LB4_DROP:
		lb_count(LB_STAT_PKT_NO_BACKEND);
		return TC_ACT_SHOT;
	case LB4_EXHAUSTED:
		lb_count(LB_STAT_SNAT_EXHAUSTED);
		return TC_ACT_SHOT;
	default:
		return LB_TC_NEXT;
	}
	if (lb4_skb_rewrite(skb, &p, 1, nat.address, nat.port))
		return TC_ACT_SHOT;
	if (verdict == LB4_SNAT && lb4_skb_rewrite(skb, &p, 0, snat.address, snat.port))
		return TC_ACT_SHOT;
	lb4_frag_remember(&p);
	lb4_account(&nat, skb->len);
	return verdict == LB4_SNAT ? lb4_tc_route(skb) : LB_TC_NEXT;
}

/* Reverse NAT: a backend's reply leaves with the frontend as its source. `done` is the
 * verdict for a translated packet. */
static __always_inline int lb4_tc_reverse(struct __sk_buff *skb, int done)
{
	struct lb4_ct_entry *ct;
	struct lb4_pkt p;
	__be32 address;
	__be16 port;

	if (!lb4_tc_packet(skb, &p))
		return LB_TC_NEXT;
	ct = lb4_reverse_lookup(&p);
	if (!ct)
		return LB_TC_NEXT;
	address = ct->nat_address;
	port = ct->nat_port;
	if (lb4_skb_rewrite(skb, &p, 0, address, port))
		return TC_ACT_SHOT;
	lb4_frag_remember(&p);
	lb_count(LB_STAT_PKT_REVERSED);
	return done;
}

/* On a node interface's egress: replies of backends leaving the node. */
SEC("tcx/egress")
int lb4_tc_egress(struct __sk_buff *skb)
{
	return lb4_tc_reverse(skb, LB_TC_NEXT);
}

/* On a pod's host-side veth ingress: replies of a local backend entering the host. A
 * translated reply goes to the host stack at once (TC_ACT_OK ends the tcx chain): its source
 * is the frontend now, which the pod network's source check after us would drop. */
SEC("tcx/ingress")
int lb4_tc_reply(struct __sk_buff *skb)
{
	return lb4_tc_reverse(skb, TC_ACT_OK);
}
