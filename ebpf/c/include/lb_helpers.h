/* SPDX-License-Identifier: Apache-2.0 */
/* Service lookup and backend selection, shared by the socket and the per-packet programs. */
#pragma once

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lb_maps.h"

#define NSEC_PER_SEC 1000000000ULL

static __always_inline void lb_count(__u32 stat)
{
	__u64 *counter = bpf_map_lookup_elem(&lb_stats, &stat);
	if (counter)
		*counter += 1;
}

static __always_inline void lb_account(void *map, __u32 id, __u64 bytes)
{
	struct lb_traffic *traffic = bpf_map_lookup_elem(map, &id);
	if (traffic) {
		traffic->packets += 1;
		traffic->bytes += bytes;
	}
}

static __always_inline int lb_is_l4(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* The service whose frontend is (address, port, proto), if any. Fills key (slot 0) for the
 * backend lookups that follow. A miss costs one hash lookup, plus one in the node address set
 * when the address is not a service address: no cost grows with the number of services. */
static __always_inline struct lb4_service *
lb4_lookup_service(struct lb4_key *key, __be32 address, __be16 port, __u8 proto)
{
	struct lb4_service *svc;

	key->address = address;
	key->port = port;
	key->slot = 0;
	key->proto = proto;
	key->pad[0] = key->pad[1] = key->pad[2] = 0;
	svc = bpf_map_lookup_elem(&lb4_services, key);
	if (svc)
		return svc;
	if (!bpf_map_lookup_elem(&lb4_node_addresses, &address))
		return 0;
	key->address = 0;
	svc = bpf_map_lookup_elem(&lb4_services, key);
	if (svc && (svc->flags & SVC_F_NODEPORT))
		return svc;
	return 0;
}

/* The backend with id `*id`, if that id is in use (free array entries have address 0). */
static __always_inline struct lb4_backend *lb4_backend_by_id(__u32 *id)
{
	struct lb4_backend *backend = bpf_map_lookup_elem(&lb4_backends, id);

	return backend && backend->address ? backend : 0;
}

/* The backend in `slot` (1..=count) of the service at `key`. */
static __always_inline struct lb4_backend *lb4_backend_in_slot(struct lb4_key *key, __u16 slot,
								__u32 *backend_id)
{
	struct lb4_service *entry;

	key->slot = slot;
	entry = bpf_map_lookup_elem(&lb4_services, key);
	key->slot = 0;
	if (!entry)
		return 0;
	*backend_id = entry->backend_id;
	return lb4_backend_by_id(backend_id);
}

/* A backend chosen at random, or the client's affine one while its timeout has not run out. */
static __always_inline struct lb4_backend *lb4_select_backend(struct lb4_key *key,
							       const struct lb4_service *svc,
							       __u64 client, __u8 netns,
							       __u32 *backend_id)
{
	struct lb4_affinity_key akey = {};
	struct lb4_affinity *affine;
	struct lb4_affinity fresh = {};
	struct lb4_backend *backend;
	__u64 now = 0;
	__u32 index;

	if (svc->count == 0)
		return 0;
	if (svc->flags & SVC_F_AFFINITY) {
		akey.client = client;
		akey.service_id = svc->service_id;
		akey.netns = netns;
		now = bpf_ktime_get_ns();
		affine = bpf_map_lookup_elem(&lb4_affinity, &akey);
		if (affine) {
			if (now - affine->last_used_ns <= (__u64)svc->affinity_timeout * NSEC_PER_SEC) {
				*backend_id = affine->backend_id;
				backend = lb4_backend_by_id(backend_id);
				if (backend) {
					affine->last_used_ns = now;
					return backend;
				}
			}
			bpf_map_delete_elem(&lb4_affinity, &akey);
		}
	}
	index = bpf_get_prandom_u32() % svc->count;
	if (index < svc->inline_count && index < LB_INLINE_BACKENDS) {
		*backend_id = svc->inline_ids[index];
		backend = lb4_backend_by_id(backend_id);
	} else {
		backend = lb4_backend_in_slot(key, index + 1, backend_id);
	}
	if (backend && (svc->flags & SVC_F_AFFINITY)) {
		fresh.last_used_ns = now;
		fresh.backend_id = *backend_id;
		bpf_map_update_elem(&lb4_affinity, &akey, &fresh, BPF_ANY);
	}
	return backend;
}
