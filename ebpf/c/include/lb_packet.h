/* SPDX-License-Identifier: Apache-2.0 */
/* Per-packet service load balancing, shared by the tc and XDP programs: parsing, conntrack,
 * backend choice (Maglev, affinity, random), SNAT port allocation for remote backends,
 * checksum-correct rewriting, and the packets that reject a flow when a service has no
 * backend.
 *
 * Choices for odd packets (every one of them leaves the packet untouched or drops it; none is
 * rewritten half-way):
 * - not IPv4, or IPv4 that is not TCP/UDP/SCTP: untouched, not counted (not ours).
 * - truncated Ethernet/IP/L4 headers, IP version != 4, IHL < 5, total length shorter than the
 *   header or longer than the packet, TCP data offset < 5: untouched, counted as malformed.
 *   The stack drops them itself.
 * - IP options: parsed (the L4 header is found after them) and translated like any packet.
 * - fragments: a first fragment (MF, offset 0) carries the ports and is translated; its ports
 *   are remembered in lb4_frags under (saddr, daddr, IP id, proto), so that later fragments of
 *   the same datagram get the same treatment (address only: their L4 checksum is in the first
 *   fragment, which covers the whole datagram). A later fragment that arrives before its first
 *   one is not known and passes untouched.
 * - SCTP: its CRC32c covers the ports but not the addresses, so an SCTP flow is translated only
 *   when the backend port equals the frontend port; otherwise it passes untouched. SNAT changes
 *   the source port, so an SCTP flow to a remote backend that would need it passes untouched.
 * - SNAT (flows to remote backends, tc only): see lb4_forward_snat and lb4_snat_claim.
 */
#pragma once

#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <stddef.h>

#include "lb_helpers.h"

/* tcx: hand the packet to the next program of the chain (a policy program, another agent's),
 * and to the stack when there is none. Also "use the default action" on a legacy clsact hook. */
#define LB_TC_NEXT TC_ACT_UNSPEC

#define LB_IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define LB_IP_SADDR_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define LB_IP_DADDR_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define LB_MAX_L4_OFF (ETH_HLEN + 60)
/* Enough linear data for every header the programs read (Ethernet, IP with options, TCP). */
#define LB_PULL_LEN 128

/* linux/icmp.h drags in libc headers: the few ICMP bits needed here. */
#define LB_ICMP_DEST_UNREACH 3
#define LB_ICMP_PORT_UNREACH 3

struct lb_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__u32 unused;
};

#define LB_TCP_FIN 0x01
#define LB_TCP_SYN 0x02
#define LB_TCP_RST 0x04
#define LB_TCP_ACK 0x10

/* Later fragments of a datagram whose first fragment was translated: its ports. */
struct lb4_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct lb4_frag_ports {
	__be16 sport;
	__be16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_frag_key);
	__type(value, struct lb4_frag_ports);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_frags SEC(".maps");

enum lb4_frag {
	LB_FRAG_NONE = 0, /* a whole datagram */
	LB_FRAG_FIRST,    /* MF set, offset 0: has the L4 header */
	LB_FRAG_LATER,    /* offset > 0: no L4 header */
};

/* A parsed IPv4 packet. Offsets count from the start of the frame. */
struct lb4_pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__be16 id;
	__u16 l4_off;
	__u16 tot_len;
	__u8 proto;
	__u8 ihl;    /* IP header length in bytes */
	__u8 frag;   /* enum lb4_frag */
	__u8 has_l4; /* the L4 header (ports, checksum) is in this packet */
};

enum lb4_parse {
	LB_PARSE_OK = 0,
	LB_PARSE_OTHER,     /* not IPv4 TCP/UDP/SCTP: not ours */
	LB_PARSE_MALFORMED, /* truncated or inconsistent headers */
	LB_PARSE_SHORT,     /* the headers exist but are not in the linear data (tc: pull) */
};

static __always_inline int lb4_short_or_bad(__u32 needed, __u32 pkt_len)
{
	return needed <= pkt_len ? LB_PARSE_SHORT : LB_PARSE_MALFORMED;
}

/* Parses the frame in [data, data_end); pkt_len is the whole packet's length (tc: skb->len,
 * which may exceed the linear data). */
static __always_inline int lb4_parse(void *data, void *data_end, __u32 pkt_len, struct lb4_pkt *p)
{
	struct ethhdr *eth = data;
	struct iphdr *ip;
	__u32 ihl, tot_len, frag_off, l4_len;
	void *l4;

	if ((void *)(eth + 1) > data_end)
		return lb4_short_or_bad(ETH_HLEN, pkt_len);
	if (eth->h_proto != ETH_P_IP_BE)
		return LB_PARSE_OTHER;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return lb4_short_or_bad(ETH_HLEN + sizeof(*ip), pkt_len);
	if (ip->version != 4 || ip->ihl < 5)
		return LB_PARSE_MALFORMED;
	ihl = ip->ihl * 4;
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ihl || tot_len > pkt_len - ETH_HLEN)
		return LB_PARSE_MALFORMED;
	if (!lb_is_l4(ip->protocol))
		return LB_PARSE_OTHER;

	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->id = ip->id;
	p->proto = ip->protocol;
	p->ihl = ihl;
	p->tot_len = tot_len;
	p->l4_off = ETH_HLEN + ihl;
	p->sport = 0;
	p->dport = 0;
	frag_off = bpf_ntohs(ip->frag_off);
	if (frag_off & IP_OFFSET) {
		p->frag = LB_FRAG_LATER;
		p->has_l4 = 0;
		return LB_PARSE_OK;
	}
	p->frag = (frag_off & IP_MF) ? LB_FRAG_FIRST : LB_FRAG_NONE;
	p->has_l4 = 1;

	/* TCP's header, else 8 bytes: UDP's header, SCTP's ports and verification tag. */
	l4_len = p->proto == IPPROTO_TCP ? sizeof(struct tcphdr) : sizeof(struct udphdr);
	if (tot_len < ihl + l4_len)
		return LB_PARSE_MALFORMED;
	/* The datagram holds the L4 header (checked above), so a miss here is non-linear data. */
	l4 = (void *)ip + ihl;
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return LB_PARSE_SHORT;
		if (th->doff < 5)
			return LB_PARSE_MALFORMED;
	} else if (l4 + sizeof(struct udphdr) > data_end) {
		return LB_PARSE_SHORT;
	}
	p->sport = *(__be16 *)l4;
	p->dport = *(__be16 *)(l4 + 2);
	return LB_PARSE_OK;
}

/* A later fragment: the ports its first fragment had, when that one was translated. */
static __always_inline int lb4_frag_ports(struct lb4_pkt *p)
{
	struct lb4_frag_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .id = p->id, .proto = p->proto,
	};
	struct lb4_frag_ports *ports = bpf_map_lookup_elem(&lb4_frags, &key);

	if (!ports)
		return 0;
	p->sport = ports->sport;
	p->dport = ports->dport;
	return 1;
}

/* A first fragment that was translated: remember its ports for the fragments that follow. */
static __always_inline void lb4_frag_remember(const struct lb4_pkt *p)
{
	struct lb4_frag_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .id = p->id, .proto = p->proto,
	};
	struct lb4_frag_ports ports = { .sport = p->sport, .dport = p->dport };

	if (p->frag == LB_FRAG_FIRST)
		bpf_map_update_elem(&lb4_frags, &key, &ports, BPF_ANY);
}

/* ---- checksums (RFC 1071 / RFC 1624), on 16-bit words as they lie in memory ---- */

static __always_inline __u16 lb_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* HC' = ~(~HC + ~m + m') for a 32-bit field changing from `from` to `to`. */
static __always_inline void lb_csum_replace4(__u16 *sum, __u32 from, __u32 to)
{
	__u32 s = (__u16)~*sum;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	*sum = lb_csum_fold(s);
}

static __always_inline void lb_csum_replace2(__u16 *sum, __u16 from, __u16 to)
{
	__u32 s = (__u16)~*sum;

	s += (__u16)~from;
	s += to;
	*sum = lb_csum_fold(s);
}

/* The sum of `words` 16-bit words at p (a constant count: the loop unrolls). */
static __always_inline __u32 lb_csum_words(const void *p, int words)
{
	const __u16 *w = p;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < words; i++)
		sum += w[i];
	return sum;
}

/* ---- backend choice and conntrack ---- */

/* murmur3's finalizer: cheap, and every input bit reaches every output bit. */
static __always_inline __u32 lb_mix(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* The flow hash that indexes Maglev tables. Addresses and ports enter as the maps hold them
 * (network byte order read as native integers); the same flow hashes the same on every node. */
static __always_inline __u32 lb4_flow_hash(const struct lb4_pkt *p)
{
	__u32 h = 0x9e3779b9;

	h = lb_mix(h ^ p->saddr);
	h = lb_mix(h ^ p->daddr);
	h = lb_mix(h ^ (((__u32)p->sport << 16) | p->dport));
	h = lb_mix(h ^ p->proto);
	return h;
}

static __always_inline struct lb4_backend *lb4_maglev_backend(const struct lb4_service *svc,
							       const struct lb4_pkt *p,
							       __u32 *backend_id)
{
	__u32 service_id = svc->service_id;
	struct lb4_maglev *table = bpf_map_lookup_elem(&lb4_maglev, &service_id);
	__u32 index;

	if (!table)
		return 0;
	index = lb4_flow_hash(p) % LB_MAGLEV_SIZE;
	barrier_var(index); /* keep the bound check the verifier needs */
	if (index >= LB_MAGLEV_SIZE)
		return 0;
	*backend_id = table->backends[index];
	return lb4_backend_by_id(backend_id);
}

/* loadBalancerSourceRanges: is the client inside one of the service's prefixes? */
static __always_inline int lb4_source_allowed(const struct lb4_service *svc, __be32 saddr)
{
	struct lb4_source_range_key key = {
		.prefixlen = 64, .service_id = svc->service_id, .address = saddr,
	};

	return bpf_map_lookup_elem(&lb4_source_ranges, &key) != 0;
}

enum lb4_verdict {
	LB4_PASS = 0, /* leave the packet alone */
	LB4_DNAT,     /* rewrite the destination to lb4_nat */
	LB4_DENY,     /* outside loadBalancerSourceRanges: drop */
	LB4_REJECT,   /* no backend: answer with a TCP RST or ICMP port unreachable */
	LB4_DROP,     /* no local backend under traffic policy Local: drop */
	LB4_SNAT,     /* rewrite the destination to lb4_nat and the source to lb4_snat_to */
	LB4_EXHAUSTED, /* a new flow to a remote backend found no free SNAT port: drop */
};

struct lb4_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
	__u32 backend_id;
	__u32 service_id;
};

/* The source a flow to a remote backend is SNATed to. */
struct lb4_snat_to {
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* The conntrack pair of a new flow: forward (client -> frontend, as it arrived) and reply
 * (backend -> client, as the backend answers) with the frontend to restore. */
static __always_inline void lb4_ct_create(const struct lb4_pkt *p, const struct lb4_backend *backend,
					  __u32 backend_id, __u32 service_id, __u64 now)
{
	struct lb4_ct_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
		.proto = p->proto,
	};
	struct lb4_ct_entry entry = {
		.last_seen_ns = now, .backend_id = backend_id, .service_id = service_id,
	};

	if (bpf_map_update_elem(&lb4_ct, &key, &entry, BPF_ANY))
		lb_count(LB_STAT_CT_FULL);
	key.saddr = backend->address;
	key.daddr = p->saddr;
	key.sport = backend->port;
	key.dport = p->sport;
	key.reply = 1;
	entry.nat_address = p->daddr;
	entry.nat_port = p->dport;
	if (bpf_map_update_elem(&lb4_ct, &key, &entry, BPF_ANY))
		lb_count(LB_STAT_CT_FULL);
}

/* ---- SNAT of flows to backends on other nodes ----
 *
 * A flow to a remote backend (BACKEND_REMOTE) of a service without SVC_F_LOCAL_ONLY leaves
 * with a node address and a port of this node's as its source, so that the backend answers
 * here: its reply (backend -> node address:port, on the uplink's ingress) is found in lb4_snat
 * and gets both translations undone. The forward conntrack entry carries the SNAT source in
 * nat_address/nat_port; lb4_snat entries are refreshed by both directions. */

/* Does a flow to `backend` of `svc` need SNAT? */
static __always_inline int lb4_snat_wanted(const struct lb4_service *svc,
					   const struct lb4_backend *backend)
{
	return (backend->state & BACKEND_REMOTE) && !(svc->flags & SVC_F_LOCAL_ONLY);
}

/* The node address a flow to `daddr` is SNATed to: daddr itself when it is a node address
 * (NodePorts), else lb4_snat_address; 0 when there is none. */
static __always_inline __be32 lb4_snat_source(__be32 daddr)
{
	__u32 zero = 0;
	__be32 *configured;

	if (bpf_map_lookup_elem(&lb4_node_addresses, &daddr))
		return daddr;
	configured = bpf_map_lookup_elem(&lb4_snat_address, &zero);
	return configured ? *configured : 0;
}

/* The i-th SNAT port candidate of a flow (host byte order). packet_lb::snat_ports mirrors it. */
static __always_inline __u16 lb4_snat_candidate(__u32 flow_hash, __u32 i)
{
	return LB_SNAT_PORT_MIN + lb_mix(flow_hash + i) % LB_SNAT_PORTS;
}

/* TCP flags of the packet (0 when not TCP or without its header). */
static __always_inline __u8 lb4_tcp_flags(void *data, void *data_end, const struct lb4_pkt *p)
{
	__u32 off = p->l4_off;
	__u8 *flags;

	if (p->proto != IPPROTO_TCP || !p->has_l4 || off > LB_MAX_L4_OFF)
		return 0;
	flags = data + off + 13;
	if ((void *)(flags + 1) > data_end)
		return 0;
	return *flags;
}

/* Keeps a SNAT entry's idle clock and TCP state. */
static __always_inline void lb4_snat_touch(struct lb4_snat_entry *e, __u8 tcp_flags, __u64 now)
{
	e->last_seen_ns = now;
	if (tcp_flags & (LB_TCP_FIN | LB_TCP_RST))
		e->closed = 1;
	else if ((tcp_flags & (LB_TCP_SYN | LB_TCP_ACK)) == LB_TCP_SYN)
		e->closed = 0; /* the client opens the same tuple again */
}

static __always_inline int lb4_snat_same_flow(const struct lb4_snat_entry *e,
					      const struct lb4_pkt *p)
{
	return e->client == p->saddr && e->client_port == p->sport && e->frontend == p->daddr &&
	       e->frontend_port == p->dport;
}

static __always_inline int lb4_snat_expired(const struct lb4_snat_entry *e, __u8 proto, __u64 now)
{
	__u64 idle = proto != IPPROTO_TCP ? LB_SNAT_UDP_IDLE_SEC
		     : e->closed	   ? LB_SNAT_TCP_CLOSED_SEC
					   : LB_SNAT_TCP_IDLE_SEC;

	return now - e->last_seen_ns > idle * NSEC_PER_SEC;
}

/* Finds the flow's SNAT port: the one in *to when it still holds this flow's lb4_snat entry,
 * else the first of its candidates that is free (or already its own, or expired), claimed.
 * 0, or -1 when every candidate is taken. */
static __always_inline int lb4_snat_claim(const struct lb4_pkt *p, const struct lb4_backend *backend,
					  __u32 backend_id, __u32 service_id, __u8 tcp_flags,
					  __u64 now, struct lb4_snat_to *to)
{
	struct lb4_snat_key key = {
		.backend = backend->address, .address = to->address,
		.backend_port = backend->port, .port = to->port, .proto = p->proto,
	};
	struct lb4_snat_entry fresh = {
		.client = p->saddr, .frontend = p->daddr, .client_port = p->sport,
		.frontend_port = p->dport, .backend_id = backend_id, .service_id = service_id,
	};
	struct lb4_snat_entry *e;
	int claimed = 0;
	__u32 hash;

	if (to->port) {
		e = bpf_map_lookup_elem(&lb4_snat, &key);
		if (e && lb4_snat_same_flow(e, p)) {
			lb4_snat_touch(e, tcp_flags, now);
			return 0;
		}
	}
	lb4_snat_touch(&fresh, tcp_flags, now);
	hash = lb4_flow_hash(p);
#pragma unroll
	for (__u32 i = 0; i < LB_SNAT_PROBES; i++) {
		key.port = bpf_htons(lb4_snat_candidate(hash, i));
		e = bpf_map_lookup_elem(&lb4_snat, &key);
		if (e && lb4_snat_same_flow(e, p)) {
			/* Its own (the conntrack entry went, or another CPU claimed it first). */
			lb4_snat_touch(e, tcp_flags, now);
			claimed = 1;
			break;
		}
		/* Free, or idle past its timeout: its flow is over. */
		if ((!e || lb4_snat_expired(e, p->proto, now)) &&
		    !bpf_map_update_elem(&lb4_snat, &key, &fresh, e ? BPF_EXIST : BPF_NOEXIST)) {
			claimed = 1;
			break;
		}
	}
	if (!claimed)
		return -1;
	to->port = key.port;
	return 0;
}

/* What to do with a packet to the service `svc` (found at `key`): an existing flow keeps its
 * backend; a new one passes the source ranges, then gets a backend and conntrack entries.
 * A flow that needs SNAT gets LB4_SNAT and its source in *to when `can_snat` (tc), and
 * LB4_PASS without any state written when not (XDP: the tc path that follows decides again,
 * Maglev and affinity choose the same backend there). */
static __always_inline int lb4_forward_snat(struct lb4_key *key, const struct lb4_service *svc,
					    const struct lb4_pkt *p, struct lb4_nat *nat,
					    struct lb4_snat_to *to, int can_snat, __u8 tcp_flags)
{
	struct lb4_ct_key ct_key = {
		.saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
		.proto = p->proto,
	};
	struct lb4_backend *backend = 0;
	struct lb4_ct_entry *ct;
	__u32 backend_id = 0;
	__u64 now = bpf_ktime_get_ns();
	int snat = 0;

	ct = bpf_map_lookup_elem(&lb4_ct, &ct_key);
	/* A flow keeps its backend while the service (same id) and the backend exist. */
	if (ct && ct->service_id == svc->service_id) {
		backend_id = ct->backend_id;
		backend = lb4_backend_by_id(&backend_id);
	}
	if (backend) {
		snat = lb4_snat_wanted(svc, backend);
		if (snat && !can_snat)
			return LB4_PASS;
		ct->last_seen_ns = now;
	} else {
		ct = 0;
		if ((svc->flags & SVC_F_SOURCE_RANGES) && !lb4_source_allowed(svc, p->saddr))
			return LB4_DENY;
		/* kube-proxy's answers: no endpoint at all rejects; traffic policy Local without
		 * a local endpoint drops (the load balancer's health check moves clients away). */
		if (svc->count == 0)
			return (svc->flags & SVC_F_LOCAL_ONLY) ? LB4_DROP : LB4_REJECT;
		/* Affinity needs the affinity map's memory; Maglev serves the others. */
		if ((svc->flags & (SVC_F_MAGLEV | SVC_F_AFFINITY)) == SVC_F_MAGLEV)
			backend = lb4_maglev_backend(svc, p, &backend_id);
		if (!backend)
			backend = lb4_select_backend(key, svc, (__u64)p->saddr, 0, &backend_id);
		/* A slot without backend: the agent is between two writes. */
		if (!backend)
			return LB4_DROP;
		if (p->proto == IPPROTO_SCTP && backend->port != p->dport)
			return LB4_PASS;
		snat = lb4_snat_wanted(svc, backend);
		if (snat && !can_snat)
			return LB4_PASS;
	}
	/* SCTP's CRC32c covers the source port SNAT would change: such flows pass untouched. */
	if (snat && p->proto == IPPROTO_SCTP)
		return LB4_PASS;
	if (snat) {
		to->address = lb4_snat_source(p->daddr);
		if (!to->address) {
			lb_count(LB_STAT_SNAT_NO_ADDRESS);
			snat = 0;
		}
	}
	if (snat) {
		struct lb4_ct_entry entry = {
			.last_seen_ns = now, .backend_id = backend_id,
			.service_id = svc->service_id,
		};

		to->port = ct && ct->nat_address == to->address ? ct->nat_port : 0;
		if (lb4_snat_claim(p, backend, backend_id, svc->service_id, tcp_flags, now, to))
			return LB4_EXHAUSTED;
		if (ct) {
			ct->nat_address = to->address;
			ct->nat_port = to->port;
		} else {
			entry.nat_address = to->address;
			entry.nat_port = to->port;
			if (bpf_map_update_elem(&lb4_ct, &ct_key, &entry, BPF_ANY))
				lb_count(LB_STAT_CT_FULL);
		}
	} else if (!ct) {
		lb4_ct_create(p, backend, backend_id, svc->service_id, now);
	}
	nat->address = backend->address;
	nat->port = backend->port;
	nat->backend_id = backend_id;
	nat->service_id = svc->service_id;
	return snat ? LB4_SNAT : LB4_DNAT;
}

/* lb4_forward_snat without SNAT: a flow that needs it passes untouched (LB4_PASS). */
static __always_inline int lb4_forward(struct lb4_key *key, const struct lb4_service *svc,
				       const struct lb4_pkt *p, struct lb4_nat *nat)
{
	struct lb4_snat_to to = {};

	return lb4_forward_snat(key, svc, p, nat, &to, 0, 0);
}

/* The SNAT entry of a remote backend's reply (backend -> node address:SNAT port), refreshed;
 * 0 when the packet is none. */
static __always_inline struct lb4_snat_entry *lb4_snat_reply_lookup(const struct lb4_pkt *p,
								    __u8 tcp_flags)
{
	struct lb4_snat_key key = {
		.backend = p->saddr, .address = p->daddr, .backend_port = p->sport,
		.port = p->dport, .proto = p->proto,
	};
	__u16 port = bpf_ntohs(p->dport);
	struct lb4_snat_entry *e;

	if (p->proto == IPPROTO_SCTP || port < LB_SNAT_PORT_MIN || port > LB_SNAT_PORT_MAX)
		return 0;
	e = bpf_map_lookup_elem(&lb4_snat, &key);
	if (e)
		lb4_snat_touch(e, tcp_flags & ~LB_TCP_SYN, bpf_ktime_get_ns());
	return e;
}

/* The reply entry for a packet leaving a backend, refreshed; 0 when it is not a reply. */
static __always_inline struct lb4_ct_entry *lb4_reverse_lookup(const struct lb4_pkt *p)
{
	struct lb4_ct_key key = {
		.saddr = p->saddr, .daddr = p->daddr, .sport = p->sport, .dport = p->dport,
		.proto = p->proto, .reply = 1,
	};
	struct lb4_ct_entry *ct = bpf_map_lookup_elem(&lb4_ct, &key);

	if (!ct)
		return 0;
	/* SCTP flows were only translated with equal ports: the CRC32c covers them. */
	if (p->proto == IPPROTO_SCTP && ct->nat_port != p->sport)
		return 0;
	ct->last_seen_ns = bpf_ktime_get_ns();
	return ct;
}

static __always_inline void lb4_account(const struct lb4_nat *nat, __u64 bytes)
{
	lb_count(LB_STAT_PKT_TRANSLATED);
	lb_account(&lb4_service_traffic, nat->service_id, bytes);
	lb_account(&lb4_backend_traffic, nat->backend_id, bytes);
}

/* ---- rewriting ---- */

/* tc: rewrites the destination (dst = 1, DNAT) or source (reverse NAT) address and port, with
 * the kernel's checksum helpers (which also keep skb->csum right for CHECKSUM_COMPLETE and
 * leave the L4 checksum of CHECKSUM_PARTIAL packets to the offload). 0, or -1 on failure (the
 * caller drops: the packet may be half-written). */
static __always_inline int lb4_skb_rewrite(struct __sk_buff *skb, const struct lb4_pkt *p, int dst,
					   __be32 to_addr, __be16 to_port)
{
	__be32 from_addr = dst ? p->daddr : p->saddr;
	__be16 from_port = dst ? p->dport : p->sport;
	__u32 addr_off = dst ? LB_IP_DADDR_OFF : LB_IP_SADDR_OFF;
	__u32 port_off = p->l4_off + (dst ? 2 : 0);
	__u64 mangled = p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__u32 csum_off = p->l4_off + (p->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check)
							       : offsetof(struct udphdr, check));
	/* SCTP's CRC32c does not cover the addresses, and its ports never change (lb4_forward). */
	int l4_csum = p->has_l4 && p->proto != IPPROTO_SCTP;
	int port = p->has_l4 && from_port != to_port;

	if (l4_csum && from_addr != to_addr &&
	    bpf_l4_csum_replace(skb, csum_off, from_addr, to_addr,
				BPF_F_PSEUDO_HDR | mangled | sizeof(to_addr)))
		return -1;
	if (l4_csum && port &&
	    bpf_l4_csum_replace(skb, csum_off, from_port, to_port, mangled | sizeof(to_port)))
		return -1;
	if (port && bpf_skb_store_bytes(skb, port_off, &to_port, sizeof(to_port), 0))
		return -1;
	if (from_addr != to_addr) {
		if (bpf_l3_csum_replace(skb, LB_IP_CSUM_OFF, from_addr, to_addr, sizeof(to_addr)))
			return -1;
		if (bpf_skb_store_bytes(skb, addr_off, &to_addr, sizeof(to_addr), 0))
			return -1;
	}
	return 0;
}

/* XDP: the same rewrite in place, checksums updated incrementally by hand. */
static __always_inline int lb4_xdp_rewrite(struct xdp_md *ctx, const struct lb4_pkt *p, int dst,
					   __be32 to_addr, __be16 to_port)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	__u32 l4_off = p->l4_off;
	__be16 *port_field;
	__u16 *csum = 0;
	void *l4;

	if ((void *)(ip + 1) > data_end || l4_off > LB_MAX_L4_OFF)
		return -1;
	if (p->has_l4) {
		l4 = data + l4_off;
		if (l4 + sizeof(struct udphdr) > data_end)
			return -1;
		if (p->proto == IPPROTO_TCP) {
			if (l4 + sizeof(struct tcphdr) > data_end)
				return -1;
			csum = &((struct tcphdr *)l4)->check;
		} else if (p->proto == IPPROTO_UDP) {
			csum = &((struct udphdr *)l4)->check;
			if (*csum == 0) /* no UDP checksum: keep it that way */
				csum = 0;
		}
		port_field = dst ? l4 + 2 : l4;
		if (csum) {
			lb_csum_replace4(csum, dst ? ip->daddr : ip->saddr, to_addr);
			lb_csum_replace2(csum, *port_field, to_port);
			if (p->proto == IPPROTO_UDP && *csum == 0)
				*csum = 0xffff;
		}
		*port_field = to_port;
	}
	if (dst) {
		lb_csum_replace4(&ip->check, ip->daddr, to_addr);
		ip->daddr = to_addr;
	} else {
		lb_csum_replace4(&ip->check, ip->saddr, to_addr);
		ip->saddr = to_addr;
	}
	return 0;
}

/* ---- rejecting a flow: TCP RST, or ICMP port unreachable (UDP, SCTP) ---- */

#define LB_RST_LEN (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr))
/* Ethernet, IP, ICMP, then the offending IP header and its first 8 L4 bytes (RFC 792). */
#define LB_ICMP_GROW (sizeof(struct iphdr) + sizeof(struct lb_icmphdr))
#define LB_ICMP_LEN (ETH_HLEN + 2 * sizeof(struct iphdr) + sizeof(struct lb_icmphdr) + 8)

struct lb4_reject {
	__u8 client_mac[ETH_ALEN];
	__u8 local_mac[ETH_ALEN];
	__be32 client;
	__be32 frontend;
	__be16 client_port;
	__be16 frontend_port;
	__be32 seq;
	__be32 ack_seq;
	__u32 seg_len; /* sequence space the offending segment used */
	__u8 tcp_flags;
	__u8 proto;
	__u8 pad[2];
};

/* What the answer needs from the offending packet. -1 when it gets no answer (dropped): IP
 * options or fragments (the answer would need moving data around), or a TCP RST. */
static __always_inline int lb4_reject_prepare(void *data, void *data_end, const struct lb4_pkt *p,
					      struct lb4_reject *r)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct tcphdr *th = (void *)(ip + 1);
	__u32 doff;

	if (p->ihl != sizeof(*ip) || p->frag != LB_FRAG_NONE)
		return -1;
	/* 8 L4 bytes at least: all the ICMP answer quotes, and UDP's and SCTP's header fit. */
	if ((void *)(ip + 1) + 8 > data_end)
		return -1;
	__builtin_memcpy(r->client_mac, eth->h_source, ETH_ALEN);
	__builtin_memcpy(r->local_mac, eth->h_dest, ETH_ALEN);
	r->client = p->saddr;
	r->frontend = p->daddr;
	r->client_port = p->sport;
	r->frontend_port = p->dport;
	r->proto = p->proto;
	if (p->proto != IPPROTO_TCP)
		return 0;
	if ((void *)(th + 1) > data_end)
		return -1;
	r->tcp_flags = ((__u8 *)th)[13];
	if (r->tcp_flags & LB_TCP_RST)
		return -1;
	doff = th->doff * 4;
	if (doff + sizeof(*ip) > p->tot_len)
		return -1;
	r->seq = th->seq;
	r->ack_seq = th->ack_seq;
	r->seg_len = p->tot_len - sizeof(*ip) - doff + !!(r->tcp_flags & LB_TCP_SYN) +
		     !!(r->tcp_flags & LB_TCP_FIN);
	return 0;
}

static __always_inline void lb4_write_ip(struct iphdr *ip, __be32 saddr, __be32 daddr, __u8 proto,
					 __u16 tot_len)
{
	*(__u8 *)ip = 0x45; /* version 4, IHL 5 */
	ip->tos = 0;
	ip->tot_len = bpf_htons(tot_len);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = proto;
	ip->check = 0;
	ip->saddr = saddr;
	ip->daddr = daddr;
	ip->check = lb_csum_fold(lb_csum_words(ip, sizeof(*ip) / 2));
}

/* Writes the answer into a frame already sized for it (LB_RST_LEN or LB_ICMP_LEN; for ICMP the
 * offending IP header and 8 L4 bytes already sit after the new ICMP header). */
static __always_inline int lb4_reject_write(void *data, void *data_end, const struct lb4_reject *r)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if (data + LB_RST_LEN > data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, r->client_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->local_mac, ETH_ALEN);
	eth->h_proto = ETH_P_IP_BE;
	if (r->proto == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(ip + 1);
		__u16 flags = LB_TCP_RST;
		__u32 sum;

		lb4_write_ip(ip, r->frontend, r->client, IPPROTO_TCP,
			     sizeof(*ip) + sizeof(*th));
		th->source = r->frontend_port;
		th->dest = r->client_port;
		/* RFC 9293 3.10.7.1: answer an ACK at its acknowledgment number; anything else
		 * at 0, acknowledging the segment. */
		if (r->tcp_flags & LB_TCP_ACK) {
			th->seq = r->ack_seq;
			th->ack_seq = 0;
		} else {
			th->seq = 0;
			th->ack_seq = bpf_htonl(bpf_ntohl(r->seq) + r->seg_len);
			flags |= LB_TCP_ACK;
		}
		((__u16 *)th)[6] = bpf_htons((5 << 12) | flags);
		th->window = 0;
		th->check = 0;
		th->urg_ptr = 0;
		sum = lb_csum_words(th, sizeof(*th) / 2);
		sum += (r->frontend & 0xffff) + (r->frontend >> 16);
		sum += (r->client & 0xffff) + (r->client >> 16);
		sum += bpf_htons(IPPROTO_TCP) + bpf_htons(sizeof(*th));
		th->check = lb_csum_fold(sum);
		return 0;
	}
	{
		struct lb_icmphdr *icmp = (void *)(ip + 1);

		if (data + LB_ICMP_LEN > data_end)
			return -1;
		lb4_write_ip(ip, r->frontend, r->client, IPPROTO_ICMP,
			     LB_ICMP_LEN - ETH_HLEN);
		icmp->type = LB_ICMP_DEST_UNREACH;
		icmp->code = LB_ICMP_PORT_UNREACH;
		icmp->checksum = 0;
		icmp->unused = 0;
		icmp->checksum = lb_csum_fold(
			lb_csum_words(icmp, (LB_ICMP_LEN - ETH_HLEN - sizeof(*ip)) / 2));
	}
	return 0;
}
