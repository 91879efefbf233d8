/* SPDX-License-Identifier: Apache-2.0 */
/* The pod network's maps, pinned by name: the CNI plugin and the agent write them, every
 * load of net_tc.bpf.c adopts them. */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "net_structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, struct net4_endpoint);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net4_endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct net4_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net4_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct net4_tunnel_key);
	__type(value, struct net4_tunnel);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net4_tunnels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, NET_STAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} net_stats SEC(".maps");
