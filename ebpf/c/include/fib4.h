/* SPDX-License-Identifier: Apache-2.0 */
/* Forwarding an IPv4 packet like a router, shared by the LB's tc and XDP programs and the pod
 * network's: the FIB lookup's input and the TTL decrement. */
#pragma once

#include <linux/bpf.h>
#include <linux/ip.h>

#include "kernel_consts.h"

/* The FIB lookup's input for `ip` arriving on `ifindex`. `tot_len` 0 (what tc passes) makes the
 * helper check the skb itself against the route's MTU, GSO aware: with the header's length it
 * would compare a GSO packet's (up to 64 KiB, or 0 for BIG TCP) with the MTU and answer
 * FRAG_NEEDED for nearly every packet of a bulk transfer. XDP frames are never GSO and pass the
 * header's length. */
static __always_inline void fib4_params(struct bpf_fib_lookup *fib, const struct iphdr *ip,
					__u32 ifindex, __u16 tot_len)
{
	fib->family = AF_INET;
	fib->tos = ip->tos;
	fib->l4_protocol = ip->protocol;
	fib->tot_len = tot_len;
	fib->ipv4_src = ip->saddr;
	fib->ipv4_dst = ip->daddr;
	fib->ifindex = ifindex;
}

/* Decrements the TTL, fixing the header checksum incrementally (RFC 1624:
 * HC' = ~(~HC + ~m + m') over the 16-bit word holding TTL and protocol). */
static __always_inline void ip4_ttl_dec(struct iphdr *ip)
{
	__u16 old = *(__u16 *)&ip->ttl;
	__u32 sum;

	ip->ttl--;
	sum = (__u16)~ip->check;
	sum += (__u16)~old;
	sum += *(__u16 *)&ip->ttl;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = (__u16)~sum;
}
