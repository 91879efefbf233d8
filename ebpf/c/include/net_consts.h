/* SPDX-License-Identifier: Apache-2.0 */
/* Constants of the pod network's programs (net_tc.bpf.c) and the kernel macros the uapi
 * headers do not carry (those shared with the load balancer: kernel_consts.h). */
#pragma once

#include "kernel_consts.h"

/* tcx: on to the next program of the chain, then the stack. */
#define NET_TCX_NEXT (-1)

/* net4_config.mode: 0 means "not configured" (the programs then pass everything on). */
#define NET_MODE_UNSET 0
#define NET_MODE_NATIVE 1
#define NET_MODE_OVERLAY 2

/* Outer TTL of encapsulated packets. */
#define NET_TUNNEL_TTL 64

/* Counters of net_stats (per CPU). build.rs gives Rust these names (net::STAT_NAMES). */
enum net_stat {
	NET_STAT_REDIRECT_LOCAL = 0, /* to a pod on this node (out of its host veth) */
	NET_STAT_REDIRECT_NATIVE,    /* to another node through the FIB */
	NET_STAT_REDIRECT_TUNNEL,    /* to another node through the overlay */
	NET_STAT_PASS,               /* handed to the stack (or the next tcx program) */
	NET_STAT_DROP_SPOOF,         /* a pod sent with a source address not its own */
	NET_STAT_FIB_FAIL,           /* native: no usable FIB answer; the stack decides */
	NET_STAT_NO_TUNNEL,          /* overlay: no node for the destination; the stack decides */
	NET_STAT_MAX,
};
