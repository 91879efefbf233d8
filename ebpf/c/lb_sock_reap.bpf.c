/* SPDX-License-Identifier: Apache-2.0 */
/* The socket reaper: closes the UDP sockets of this node that are connected to a backend that
 * was just removed (listed in lb4_reap), so their next send fails and the application
 * reconnects through the socket-level LB to a live backend. Packet-level load balancers solve
 * the same problem by deleting conntrack entries; a connected socket keeps its translated
 * address in the socket itself, so it is the socket that has to go.
 *
 * Runs as a UDP socket iterator (the only place bpf_sock_destroy may be called); the agent
 * runs it once after each sync that removed backends. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_maps.h"

char LICENSE[] SEC("license") = "GPL";

/* Only the fields read here; libbpf relocates them against the kernel's BTF (CO-RE). */
struct sock_common {
	__be32 skc_daddr;
	__be16 skc_dport;
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
} __attribute__((preserve_access_index));

struct udp_sock {
	struct inet_sock inet;
} __attribute__((preserve_access_index));

struct bpf_iter_meta;

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
} __attribute__((preserve_access_index));

extern int bpf_sock_destroy(struct sock_common *sk) __ksym;

SEC("iter/udp")
int lb4_reap_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	struct sock_common *common;
	struct lb4_reap_key key = {};

	if (!udp)
		return 0;
	common = &udp->inet.sk.__sk_common;
	if (common->skc_family != AF_INET)
		return 0;
	key.address = common->skc_daddr;
	key.port = common->skc_dport;
	if (bpf_map_lookup_elem(&lb4_reap, &key))
		bpf_sock_destroy(common);
	return 0;
}
