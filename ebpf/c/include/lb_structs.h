/* SPDX-License-Identifier: Apache-2.0 */
/* Map keys and values of the service load balancer. Userspace gets these types from the
 * skeletons libbpf-cargo generates, so this file is their only definition. Every struct is
 * laid out with explicit padding: the kernel compares keys bytewise. Addresses and ports are in
 * network byte order. */
#pragma once

#include <linux/types.h>

#include "lb_consts.h"

/* A service frontend (address, port, protocol). Slot 0 holds the service itself with its
 * first inline_count backend ids; slot n (n > inline_count) holds the n-th backend id. */
struct lb4_key {
	__be32 address; /* the ClusterIP, ExternalIP or LB IP; 0 for a NodePort on any node address */
	__be16 port;
	__u16 slot;
	__u8 proto; /* IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP */
	__u8 pad[3];
};

struct lb4_service {
	__u32 backend_id;       /* slot n > 0: the backend; slot 0: unused */
	__u32 service_id;       /* reverse NAT, affinity, Maglev and counters key by it */
	__u16 count;            /* slot 0: backends 1..=count (0: reject) */
	__u8 flags;             /* SVC_F_* */
	__u8 inline_count;      /* slot 0: backends 1..=inline_count are in inline_ids */
	__u32 affinity_timeout; /* seconds, with SVC_F_AFFINITY */
	__u32 inline_ids[LB_INLINE_BACKENDS]; /* slot 0 */
};

struct lb4_backend {
	__be32 address;
	__be16 port;
	__u8 proto;
	__u8 state; /* BACKEND_* */
};

/* service_id -> the frontend a reply must appear to come from. */
struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
	__u16 pad;
};

/* Session affinity: who (a client IP, or for the socket paths a network namespace cookie when
 * the source address is not known yet) was sent to which backend of a service, and when. */
struct lb4_affinity_key {
	__u64 client; /* client IPv4 address, or the netns cookie */
	__u32 service_id;
	__u8 netns;   /* 1: client is a netns cookie */
	__u8 pad[3];
};

struct lb4_affinity {
	__u64 last_used_ns; /* bpf_ktime_get_ns() */
	__u32 backend_id;
	__u32 pad;
};

/* Socket-level reverse NAT for UDP: the backend a socket sent to -> the service address that
 * recvmsg must report. */
struct lb4_sock_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct lb4_sock_rev {
	__be32 address;
	__be16 port;
	__u16 pad;
	__u32 service_id;
	__u32 pad2;
};

/* Socket-level reverse NAT of a connected socket (TCP, or UDP after connect()). */
struct lb4_sock_peer {
	__u64 cookie; /* the socket's cookie: an entry is the socket's only when it matches */
	__be32 backend_address;
	__be16 backend_port;
	__u16 pad;
	__be32 address; /* the service frontend */
	__be16 port;
	__u16 pad2;
	__u32 service_id;
	__u32 pad3;
};

/* Conntrack of the per-packet paths, keyed by the packet's tuple as it arrived (client ->
 * frontend) and, for the reply direction, as it leaves the backend (backend -> client). */
struct lb4_ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 reply; /* 0: client -> frontend; 1: backend -> client */
	__u8 pad[2];
};

struct lb4_ct_entry {
	__u64 last_seen_ns;
	__u32 backend_id; /* forward entries */
	__u32 service_id;
	/* reply entries: the frontend to restore as the source. Forward entries: the SNAT source
	 * (node address, port) of a flow to a remote backend, 0 when the flow is not SNATed. */
	__be32 nat_address;
	__be16 nat_port;
	__u16 pad;
};

/* SNAT of a flow to a remote backend, keyed by its reply as it arrives from the backend
 * (backend -> node address:SNAT port). The forward conntrack entry holds the same SNAT
 * source; there is no lb4_ct reply entry for such a flow. */
struct lb4_snat_key {
	__be32 backend;
	__be32 address; /* the node address the flow is SNATed to */
	__be16 backend_port;
	__be16 port; /* the SNAT port, LB_SNAT_PORT_MIN..=LB_SNAT_PORT_MAX */
	__u8 proto;
	__u8 pad[3];
};

struct lb4_snat_entry {
	__u64 last_seen_ns; /* either direction */
	__be32 client;      /* the reply's destination is restored to client:client_port */
	__be32 frontend;    /* and its source to frontend:frontend_port */
	__be16 client_port;
	__be16 frontend_port;
	__u32 backend_id; /* as in the forward conntrack entry: what the agent purges by */
	__u32 service_id;
	__u8 closed;      /* TCP: a FIN or RST was seen (LB_SNAT_TCP_CLOSED_SEC applies) */
	__u8 pad[3];
};

/* loadBalancerSourceRanges: an LPM trie over (service, source prefix). */
struct lb4_source_range_key {
	__u32 prefixlen; /* 32 (service_id) + the CIDR's prefix length */
	__u32 service_id;
	__be32 address;
};

/* Per-service and per-backend traffic, per CPU. */
struct lb_traffic {
	__u64 packets;
	__u64 bytes;
};

/* A service's Maglev table: LB_MAGLEV_SIZE backend ids. */
struct lb4_maglev {
	__u32 backends[LB_MAGLEV_SIZE];
};

/* A backend whose connected UDP sockets must be closed (the socket reaper's input). */
struct lb4_reap_key {
	__be32 address;
	__be16 port;
	__u16 pad;
};
