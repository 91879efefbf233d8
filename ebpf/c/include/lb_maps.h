/* SPDX-License-Identifier: Apache-2.0 */
/* The service load balancer's maps. Every program object includes this file; the maps are
 * pinned by name, so all objects (and every restart of the agent) share one instance of each.
 * Sizes here are defaults: the agent sets them before loading. */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lb_structs.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_key);
	__type(value, struct lb4_service);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_services SEC(".maps");

/* Backends by id. An array: the agent hands out dense ids, and a lookup is one indexed load
 * instead of a hash walk (the socket LB's per-connection cost is mostly memory accesses). An
 * entry with address 0 is free. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lb4_backend);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_reverse_nat);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_reverse_nat SEC(".maps");

/* The node's own addresses: a NodePort (lb4_key.address 0) answers on each of them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __be32);
	__type(value, __u8);
	__uint(max_entries, 256);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_node_addresses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_affinity_key);
	__type(value, struct lb4_affinity);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_affinity SEC(".maps");

/* Connected sockets (TCP, or UDP after connect()) -> the service their peer stands for: a
 * direct-mapped table indexed by a hash of the socket cookie. Writing an entry is one store
 * into a preallocated array (no lock, no allocation, nothing to delete at close); an entry is
 * a socket's only while its cookie matches, so a newer socket hashing to the same entry takes
 * it over and the older one's getpeername() shows the backend (counted, sized to make it
 * rare). Hash maps cost several times more per connect (LRU ~1.5 us, preallocated ~0.7 us,
 * socket-local storage ~1 us, measured with bpf_stats). Its size is fixed at build time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct lb4_sock_peer);
	__uint(max_entries, LB_SOCK_PEER_ENTRIES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_sock_peer SEC(".maps");

/* Unconnected UDP (sendmsg to a service): the backend a socket sent to -> the service. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_sock_key);
	__type(value, struct lb4_sock_rev);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_ct_key);
	__type(value, struct lb4_ct_entry);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lb4_source_range_key);
	__type(value, __u8);
	__uint(max_entries, 16384);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_source_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct lb4_maglev);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_traffic);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_service_traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_traffic);
	__uint(max_entries, 65536);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_backend_traffic SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, LB_STAT_MAX);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_stats SEC(".maps");

/* Backends just removed: the socket reaper closes UDP sockets connected to them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct lb4_reap_key);
	__type(value, __u8);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_reap SEC(".maps");

/* SNAT of per-packet flows to remote backends (lb_packet.h): reply tuple -> the client and
 * the frontend. Sized like lb4_ct (one entry per SNATed flow). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct lb4_snat_key);
	__type(value, struct lb4_snat_entry);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_snat SEC(".maps");

/* Entry 0: the address flows to remote backends are SNATed to when the client reached an
 * address that is not in lb4_node_addresses (an ExternalIP or LoadBalancer IP). Set by the
 * agent (the node's primary address); 0: such flows are DNATed only (counted). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __be32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb4_snat_address SEC(".maps");
