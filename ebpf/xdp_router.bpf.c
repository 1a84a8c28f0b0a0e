// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* vfplane's XDP fast path: IPv4 forwarding from a table compiled by the forwarding model.
 *
 * A packet is forwarded here only when the table has a FORWARD entry for its destination and
 * nothing about it needs the kernel: IPv4 without options and a TTL above 1. Everything else
 * (ARP, IPv6, local addresses, unresolved next hops, TTL expiry, malformed frames) goes to the
 * kernel with XDP_PASS, which answers, resolves or sends ICMP as a router must. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "vfplane/ebpf/xdp_router_abi.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct vfp_fib_key);
	__type(value, struct vfp_fib_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 65536);
} fib SEC(".maps");

/* Egress ports by ifindex; a devmap lets the kernel batch transmissions per port. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1024);
} tx_ports SEC(".maps");

/* Ingress ports by ifindex, with their MACs. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vfp_port);
	__uint(max_entries, 1024);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, VFP_CNT_MAX);
} counters SEC(".maps");

static __always_inline int count(__u32 slot, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		*c += 1;
	return verdict;
}

/* RFC 1624: TTL is the high byte of its 16-bit word, so decrementing it adds 0x0100 to the
 * one's-complement checksum, with the end-around carry. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check + (__u32)bpf_htons(0x0100);

	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

/* clang 14 turns __builtin_memcmp into a call to memcmp, which BPF does not have. */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
		(a[5] ^ b[5])) == 0;
}

SEC("xdp")
int vfp_xdp_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct vfp_fib_key key;
	struct vfp_fib_value *v;
	struct vfp_port *port;
	__u32 ingress = ctx->ingress_ifindex;

	count(VFP_CNT_RX, 0);
	if ((void *)(eth + 1) > end)
		return count(VFP_CNT_PUNT_MALFORMED, XDP_PASS);
	/* A router routes only frames addressed to it; the kernel drops the rest (other host) and
	 * handles broadcast and multicast. */
	port = bpf_map_lookup_elem(&ports, &ingress);
	if (!port || !mac_equal(eth->h_dest, port->mac))
		return count(VFP_CNT_PUNT_OTHER_HOST, XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return count(VFP_CNT_PUNT_NOT_IPV4, XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return count(VFP_CNT_PUNT_MALFORMED, XDP_PASS);
	if (ip->version != 4 || ip->ihl != 5)
		return count(VFP_CNT_PUNT_IP_OPTIONS, XDP_PASS);
	if (ip->ttl <= 1)
		return count(VFP_CNT_PUNT_TTL, XDP_PASS);

	key.prefixlen = 32;
	key.addr = ip->daddr;
	v = bpf_map_lookup_elem(&fib, &key);
	if (!v)
		return count(VFP_CNT_PUNT_NO_ROUTE, XDP_PASS);
	if (v->action != VFP_FIB_FORWARD)
		return count(VFP_CNT_PUNT_ACTION, XDP_PASS);

	decrement_ttl(ip);
	__builtin_memcpy(eth->h_dest, v->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
	count(VFP_CNT_FORWARDED, 0);
	/* install() adds egress ports before the entries that use them, so the devmap has this one.
	 * Were it missing, the kernel would get the rewritten frame, now for another host, and drop
	 * it. */
	return bpf_redirect_map(&tx_ports, v->ifindex, XDP_PASS);
}

/* For the far end of a veth that the router redirects into: veth delivers redirected frames only
 * to a peer that runs XDP itself, and this is the program that lets them through. */
SEC("xdp")
int vfp_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
