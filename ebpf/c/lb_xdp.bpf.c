/* SPDX-License-Identifier: Apache-2.0 */
/* Per-packet service load balancing in XDP, before the stack: the same lookup, conntrack and
 * DNAT as lb4_tc_ingress (lb_tc.bpf.c), sharing its maps. A translated packet whose backend is
 * reached back out of the interface it came in on (bpf_fib_lookup says so, with the neighbour
 * resolved) leaves at once (XDP_TX, MACs set, TTL decremented); every other one goes to the
 * stack (XDP_PASS), which forwards it. Replies are reverse-NATed on the tc path.
 *
 * Flows that need SNAT (a remote backend of a service without traffic policy Local) are not
 * translated here: lb4_forward leaves them untouched, with no state written, and XDP_PASS
 * hands them to lb4_tc_ingress, which chooses again (Maglev and affinity give the same
 * backend), SNATs and routes them. Their replies (to a SNAT port) are not services: they pass
 * here too.
 *
 * XDP_TX sends the flow straight to a backend on the same segment: its replies must come back
 * through this node (it is the client's gateway, or the backend's node routes them here) for
 * lb4_tc_egress to restore the frontend. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "fib4.h"
#include "lb_packet.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline int lb4_xdp_reject(struct xdp_md *ctx, const struct lb4_pkt *p)
{
	struct lb4_reject r = {};
	int len;

	if (lb4_reject_prepare((void *)(long)ctx->data, (void *)(long)ctx->data_end, p, &r))
		return XDP_DROP;
	if (r.proto != IPPROTO_TCP && bpf_xdp_adjust_head(ctx, -(int)LB_ICMP_GROW))
		return XDP_DROP;
	len = (long)ctx->data_end - (long)ctx->data;
	len = (r.proto == IPPROTO_TCP ? LB_RST_LEN : LB_ICMP_LEN) - len;
	if (len && bpf_xdp_adjust_tail(ctx, len))
		return XDP_DROP;
	if (lb4_reject_write((void *)(long)ctx->data, (void *)(long)ctx->data_end, &r))
		return XDP_DROP;
	return XDP_TX;
}

/* After DNAT: out of the same interface when the FIB says the backend is there, else the
 * stack. */
static __always_inline int lb4_xdp_forward(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct bpf_fib_lookup fib = {};

	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->ttl <= 1) /* the stack sends the time-exceeded error */
		return XDP_PASS;
	fib4_params(&fib, ip, ctx->ingress_ifindex, bpf_ntohs(ip->tot_len));
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return XDP_PASS;
	if (fib.ifindex != ctx->ingress_ifindex)
		return XDP_PASS;
	ip4_ttl_dec(ip);
	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	return XDP_TX;
}

SEC("xdp")
int lb4_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lb4_service *svc;
	struct lb4_nat nat = {};
	struct lb4_key key;
	struct lb4_pkt p;
	int rc;

	rc = lb4_parse(data, data_end, data_end - data, &p);
	if (rc != LB_PARSE_OK) {
		/* The whole packet is linear here: a short header is a truncated one. */
		if (rc != LB_PARSE_OTHER)
			lb_count(LB_STAT_PKT_MALFORMED);
		return XDP_PASS;
	}
	if (p.frag == LB_FRAG_LATER && !lb4_frag_ports(&p))
		return XDP_PASS;
	svc = lb4_lookup_service(&key, p.daddr, p.dport, p.proto);
	if (!svc)
		return XDP_PASS;
	switch (lb4_forward(&key, svc, &p, &nat)) {
	case LB4_DNAT:
		break;
	case LB4_DENY:
		lb_count(LB_STAT_PKT_SOURCE_DENIED);
		return XDP_DROP;
	case LB4_REJECT:
		lb_count(LB_STAT_PKT_NO_BACKEND);
		return lb4_xdp_reject(ctx, &p);
	case LB4_DROP:
		lb_count(LB_STAT_PKT_NO_BACKEND);
		return XDP_DROP;
	default:
		return XDP_PASS;
	}
	if (lb4_xdp_rewrite(ctx, &p, 1, nat.address, nat.port))
		return XDP_DROP;
	lb4_frag_remember(&p);
	lb4_account(&nat, (long)ctx->data_end - (long)ctx->data);
	return lb4_xdp_forward(ctx);
}
