/* SPDX-License-Identifier: Apache-2.0 */
/* Map keys and values of the pod network. Userspace gets these types from the skeleton
 * (net::types), so this file is their only definition. Padding is spelled out: hash keys are
 * compared bytewise and Rust reads values as plain bytes. Addresses are in network order. */
#pragma once

#include <linux/types.h>

#include "net_consts.h"

/* net4_endpoints value, keyed by the pod's IPv4 address. */
struct net4_endpoint {
	__u32 ifindex;     /* the host-side veth, in the node's netns */
	__u8 pod_mac[6];   /* the pod's eth0 */
	__u8 host_mac[6];  /* the host-side veth: the pod's gateway MAC */
	__u64 identity;    /* the owning sandbox (hash of the CNI container id) */
	__u32 flags;       /* reserved, 0 */
	__u32 pad;
};

/* net4_config[0]: the node's pod-network settings. */
struct net4_config {
	__be32 cluster_addr;
	__be32 pod_addr;
	__u8 cluster_prefix;
	__u8 pod_prefix;
	__u8 mode;         /* NET_MODE_* */
	__u8 pad;
	__u32 overlay_ifindex;
	__u32 vni;
};

/* net4_tunnels key: a pod CIDR (LPM trie). */
struct net4_tunnel_key {
	__u32 prefixlen;
	__be32 addr;
};

/* net4_tunnels value: the node owning the CIDR. */
struct net4_tunnel {
	__be32 node;       /* its underlay IPv4 */
};
