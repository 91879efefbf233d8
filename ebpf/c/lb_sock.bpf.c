/* SPDX-License-Identifier: Apache-2.0 */
/* Socket-level service load balancing: a connection (or an unconnected UDP datagram) to a
 * service frontend goes to a backend at connect()/sendmsg() time, so no packet of it is ever
 * translated again; recvmsg() and getpeername() report the service address back. Attached to
 * the cgroup2 root, these cover every pod and host process of the node. */
#include <linux/bpf.h>
#include <linux/errno.h>
#include <bpf/bpf_helpers.h>

#include "lb_helpers.h"

char LICENSE[] SEC("license") = "GPL";

#define SOCK_ALLOW 1
#define SOCK_REJECT 0

/* The lb4_sock_peer entry of a socket: its cookie modulo the table's size. The kernel hands
 * out cookies in per-CPU runs of consecutive numbers, so sockets opened one after another write
 * neighbouring entries (already in cache) and an entry is reused only after the table's size of
 * newer sockets: first in, first out, rather than a hash's random collisions. */
static __always_inline __u32 lb4_sock_peer_index(__u64 cookie)
{
	return (__u32)cookie & (LB_SOCK_PEER_ENTRIES - 1);
}

/* Remember which service a socket's peer stands for, for recvmsg and getpeername: by socket
 * cookie when it connects (one peer for the socket's life), by cookie and backend in an LRU
 * map for datagrams sent without connecting (a peer per destination). */
static __always_inline void lb4_remember(struct bpf_sock_addr *ctx, const struct lb4_key *key,
					 const struct lb4_service *svc,
					 const struct lb4_backend *backend, int connecting)
{
	__be32 frontend = key->address ? key->address : ctx->user_ip4;

	__u64 cookie = bpf_get_socket_cookie(ctx);

	if (connecting) {
		__u32 index = lb4_sock_peer_index(cookie);
		struct lb4_sock_peer *peer = bpf_map_lookup_elem(&lb4_sock_peer, &index);

		if (peer) {
			if (peer->cookie)
				lb_count(LB_STAT_SOCK_PEER_FULL); /* taken over (or stale) */
			peer->cookie = cookie;
			peer->backend_address = backend->address;
			peer->backend_port = backend->port;
			peer->address = frontend;
			peer->port = key->port;
			peer->service_id = svc->service_id;
		}
		return;
	}
	struct lb4_sock_key skey = {
		.cookie = cookie,
		.address = backend->address,
		.port = backend->port,
	};
	struct lb4_sock_rev rev = {
		.address = frontend,
		.port = key->port,
		.service_id = svc->service_id,
	};

	bpf_map_update_elem(&lb4_sock_rev, &skey, &rev, BPF_ANY);
}

static __always_inline int lb4_translate(struct bpf_sock_addr *ctx, int connecting)
{
	struct lb4_key key;
	struct lb4_service *svc;
	struct lb4_backend *backend;
	__be32 address = ctx->user_ip4;
	__u8 proto = ctx->protocol;
	__u32 backend_id = 0;

	if (!lb_is_l4(proto))
		return SOCK_ALLOW;
	svc = lb4_lookup_service(&key, address, (__be16)ctx->user_port, proto);
	if (!svc)
		return SOCK_ALLOW;
	backend = lb4_select_backend(&key, svc, bpf_get_netns_cookie(ctx), 1, &backend_id);
	if (!backend) {
		/* No backend: refuse, as Kubernetes does, rather than send into the void. */
		lb_count(LB_STAT_SOCK_NO_BACKEND);
		bpf_set_retval(-ECONNREFUSED);
		return SOCK_REJECT;
	}
	lb4_remember(ctx, &key, svc, backend, connecting);
	ctx->user_ip4 = backend->address;
	ctx->user_port = backend->port;
	lb_count(LB_STAT_SOCK_TRANSLATED);
	lb_account(&lb4_service_traffic, svc->service_id, 0);
	lb_account(&lb4_backend_traffic, backend_id, 0);
	return SOCK_ALLOW;
}

SEC("cgroup/connect4")
int lb4_connect(struct bpf_sock_addr *ctx)
{
	return lb4_translate(ctx, 1);
}

SEC("cgroup/sendmsg4")
int lb4_sendmsg(struct bpf_sock_addr *ctx)
{
	return lb4_translate(ctx, 0);
}

/* A backend address seen by this socket -> the service address it was reached through. */
static __always_inline int lb4_reverse(struct bpf_sock_addr *ctx)
{
	__u64 cookie = bpf_get_socket_cookie(ctx);
	__u32 index = lb4_sock_peer_index(cookie);
	struct lb4_sock_peer *peer = bpf_map_lookup_elem(&lb4_sock_peer, &index);
	struct lb4_sock_rev *rev;

	if (peer && peer->cookie == cookie && peer->backend_address == ctx->user_ip4 &&
	    peer->backend_port == (__be16)ctx->user_port) {
		ctx->user_ip4 = peer->address;
		ctx->user_port = peer->port;
		return SOCK_ALLOW;
	}
	struct lb4_sock_key skey = {
		.cookie = cookie,
		.address = ctx->user_ip4,
		.port = (__be16)ctx->user_port,
	};
	rev = bpf_map_lookup_elem(&lb4_sock_rev, &skey);
	if (rev) {
		ctx->user_ip4 = rev->address;
		ctx->user_port = rev->port;
	}
	return SOCK_ALLOW;
}

SEC("cgroup/recvmsg4")
int lb4_recvmsg(struct bpf_sock_addr *ctx)
{
	return lb4_reverse(ctx);
}

SEC("cgroup/getpeername4")
int lb4_getpeername(struct bpf_sock_addr *ctx)
{
	return lb4_reverse(ctx);
}
