/* SPDX-License-Identifier: Apache-2.0 */
/* Constants of the service load balancer: flags, limits and the few kernel macros that the
 * uapi headers do not carry. */
#pragma once

#include "kernel_consts.h"

#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* Service flags (lb4_service.flags, on slot 0). */
#define SVC_F_NODEPORT (1 << 0)     /* key address 0: any local address (node_addresses) */
#define SVC_F_EXTERNAL (1 << 1)     /* ExternalIP or LoadBalancer IP: reachable from outside */
#define SVC_F_AFFINITY (1 << 2)     /* sessionAffinity ClientIP, timeout in affinity_timeout */
#define SVC_F_SOURCE_RANGES (1 << 3) /* loadBalancerSourceRanges: lb4_source_ranges decides */
#define SVC_F_MAGLEV (1 << 4)       /* per-packet paths pick through lb4_maglev */
#define SVC_F_LOCAL_ONLY (1 << 5)   /* traffic policy Local: backends are this node's only */

/* Backend states (lb4_backend.state): a bit set, 0 for an active endpoint on this node. */
#define BACKEND_ACTIVE 0
#define BACKEND_TERMINATING 1 /* bit 0: terminating, still used while nothing else serves */
#define BACKEND_REMOTE 2      /* bit 1: on another node; the per-packet paths SNAT flows to it */

/* SNAT of per-packet flows to remote backends (services without SVC_F_LOCAL_ONLY): the source
 * becomes the node address the client reached (or lb4_snat_address) and a port in
 * [LB_SNAT_PORT_MIN, LB_SNAT_PORT_MAX]: above both the NodePort range (30000-32767) and
 * Linux's default ephemeral range (32768-60999), so no local socket of the node uses the same
 * (node address, port) towards a backend and has its replies taken. A flow tries LB_SNAT_PROBES ports derived
 * from its hash; a port is free when no lb4_snat entry holds (backend, node address, port,
 * proto), or when the one there has been idle longer than its protocol's timeout. */
#define LB_SNAT_PORT_MIN 61000
#define LB_SNAT_PORT_MAX 65535
#define LB_SNAT_PORTS (LB_SNAT_PORT_MAX - LB_SNAT_PORT_MIN + 1)
#define LB_SNAT_PROBES 8
#define LB_SNAT_TCP_IDLE_SEC 86400   /* kube-proxy's conntrack TCP established timeout */
#define LB_SNAT_TCP_CLOSED_SEC 10    /* after a FIN or RST */
#define LB_SNAT_UDP_IDLE_SEC 120     /* netfilter's UDP stream timeout */

/* Slots per service, including slot 0 (the service entry itself). */
#define LB_MAX_BACKENDS 4096

/* Entries of lb4_sock_peer, the connected sockets' reverse table (a power of two). */
/* Backend ids a service entry (slot 0) carries itself: a service with at most this many
 * backends is one hash lookup per new connection, not two, and has no slot entries. */
#define LB_INLINE_BACKENDS 12

#define LB_SOCK_PEER_ENTRIES 131072

/* Maglev lookup table size per service: a prime well above LB_MAX_BACKENDS' typical use. */
#define LB_MAGLEV_SIZE 1021

/* Counter indexes in lb_stats (per CPU). build.rs gives Rust these names (lb::STAT_NAMES). */
enum lb_stat {
	LB_STAT_SOCK_TRANSLATED = 0, /* connect/sendmsg sent to a backend */
	LB_STAT_SOCK_NO_BACKEND,     /* connect/sendmsg to a service without backends: refused */
	LB_STAT_PKT_TRANSLATED,      /* packets DNATed to a backend */
	LB_STAT_PKT_REVERSED,        /* reply packets reverse-NATed to the service address */
	LB_STAT_PKT_NO_BACKEND,      /* packets to a service without backends */
	LB_STAT_PKT_SOURCE_DENIED,   /* packets outside loadBalancerSourceRanges */
	LB_STAT_PKT_MALFORMED,       /* truncated or otherwise unparseable packets */
	LB_STAT_CT_FULL,             /* conntrack inserts that failed */
	LB_STAT_SOCK_PEER_FULL,      /* connects that took over another socket's reverse entry */
	LB_STAT_SNAT_EXHAUSTED,      /* new flows to remote backends dropped: no free SNAT port */
	LB_STAT_SNAT_NO_ADDRESS,     /* flows to remote backends not SNATed: no lb4_snat_address */
	LB_STAT_MAX,
};
