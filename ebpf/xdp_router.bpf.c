// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* vfplane's XDP fast path: IPv4 and IPv6 forwarding, with ECMP, from a table compiled by the
 * forwarding model.
 *
 * The checks, their order and the flow hash are those of dataplane/packet.h and
 * dataplane/forwarding_model.h (flowHash), which the DPDK path runs as C++; the shared test cases
 * hold the two to the same verdicts and the same paths. What the fast path does not finish goes
 * to the kernel with XDP_PASS (ARP, ND, local traffic, unresolved next hops, TTL expiry, options,
 * packets over the MTU), which answers, resolves or sends ICMP as a router must. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "vfplane/ebpf/xdp_router_abi.h"

/* Set by the loader before the program is loaded. */
const volatile __u32 hash_seed = 0;

/* IPv4: DIR-24-8 (see xdp_router_abi.h). Array lookups are inlined by the verifier: one or two
 * loads, where an LPM trie walks a node per prefix bit that differs. An array element takes 8
 * bytes whatever its size, so each holds two entries, and the mapped memory is a plain __u32
 * array for the writer. */
struct vfp_dir_pair {
	__u32 e[2];
};

/* An mmapable array of entry pairs, that many pairs. */
#define VFP_DIR_ARRAY(name, pairs)                   \
	struct {                                      \
		__uint(type, BPF_MAP_TYPE_ARRAY);     \
		__type(key, __u32);                   \
		__type(value, struct vfp_dir_pair);   \
		__uint(map_flags, BPF_F_MMAPABLE);    \
		__uint(max_entries, pairs);           \
	} name SEC(".maps")

VFP_DIR_ARRAY(tbl24, VFP_TBL24_ENTRIES / 2);
VFP_DIR_ARRAY(tbl8, 128); /* groups of 256 entries, sized by the loader */

/* Entry i of one of those arrays, or 0 (invalid) past its end. */
static __always_inline __u32 dir_entry(void *map, __u32 i)
{
	__u32 key = i >> 1;
	struct vfp_dir_pair *p = bpf_map_lookup_elem(map, &key);

	if (!p)
		return 0;
	return *(volatile __u32 *)&p->e[i & 1];
}

/* IPv6: a 16-bit first level, then 8-bit groups (see xdp_router_abi.h). */
VFP_DIR_ARRAY(tbl16, VFP_TBL16_ENTRIES / 2);
VFP_DIR_ARRAY(tbl8_6, 128); /* sized by the loader */

/* Next-hop groups by id, an array (an inlined load where a hash map costs a call and a hash).
 * Never rewritten while a packet may read it: a changed group gets a new id, written before the
 * routes that point at it, and an id the routes no longer use is written again only after a
 * delay far longer than any packet's run (the loader's FIFO of freed ids). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vfp_group);
	__uint(max_entries, 1024); /* sized by the loader */
} groups SEC(".maps");

/* Egress ports by their slot; a devmap lets the kernel batch transmissions per port. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, VFP_MAX_PORTS);
} tx_ports SEC(".maps");

/* Ingress ports with their MACs: by ifindex in an array below VFP_PORT_DIRECT, by hash above. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vfp_port);
	__uint(max_entries, VFP_PORT_DIRECT);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct vfp_port);
	__uint(max_entries, VFP_MAX_PORTS);
} ports_high SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, VFP_CNT_MAX);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct vfp_port_counters);
	__uint(max_entries, VFP_MAX_PORTS);
} port_counters SEC(".maps");

static __always_inline struct vfp_port_counters *port_count(__u32 slot)
{
	return bpf_map_lookup_elem(&port_counters, &slot);
}

static __always_inline int count(__u32 slot, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		*c += 1;
	return verdict;
}

/* clang 14 turns __builtin_memcmp into a call to memcmp, which BPF does not have. */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
		(a[5] ^ b[5])) == 0;
}

/* ---- the flow hash: flowHash() in forwarding_model.cc, word for word ---- */

struct flow {
	__u32 src[4]; /* address words as numbers (network order read big-endian) */
	__u32 dst[4];
	__u32 words;  /* 1 for IPv4, 4 for IPv6 */
	__u32 proto;
	__u32 sport;
	__u32 dport;
};

static __always_inline __u32 rotl32(__u32 x, int r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 mix(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51u;
	k = rotl32(k, 15);
	k *= 0x1b873593u;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64u;
}

static __always_inline __u32 min32(__u32 a, __u32 b)
{
	return a < b ? a : b;
}

static __always_inline __u32 max32(__u32 a, __u32 b)
{
	return a < b ? b : a;
}

static __always_inline __u32 flow_hash(const struct flow *f)
{
	__u32 h = hash_seed;

#pragma unroll
	for (int i = 0; i < 4; i++) {
		if (i < f->words) {
			h = mix(h, min32(f->src[i], f->dst[i]));
			h = mix(h, max32(f->src[i], f->dst[i]));
		}
	}
	h = mix(h, min32(f->sport, f->dport) << 16 | max32(f->sport, f->dport));
	h = mix(h, f->proto);
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

static __always_inline int has_ports(__u32 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline void read_ports(struct flow *f, void *l4, void *end)
{
	__u16 *p = l4;

	if ((void *)(p + 2) > end)
		return;
	f->sport = bpf_ntohs(p[0]);
	f->dport = bpf_ntohs(p[1]);
}

/* The IPv4 packet at ip (its 20 bytes in the frame): addresses and protocol, and the start of
 * its L4 header, or NULL for a fragment. */
static __always_inline void *v4_tuple(struct iphdr *ip, struct flow *f)
{
	f->words = 1;
	f->src[0] = bpf_ntohl(ip->saddr);
	f->dst[0] = bpf_ntohl(ip->daddr);
	f->proto = ip->protocol;
	f->sport = 0;
	f->dport = 0;
	if (ip->frag_off & bpf_htons(0x3fff))
		return 0;
	return (void *)ip + ip->ihl * 4;
}

/* The IPv6 packet at ip6 (its 40 bytes in the frame). */
static __always_inline void *v6_tuple(struct ipv6hdr *ip6, struct flow *f)
{
	f->words = 4;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		f->src[i] = bpf_ntohl(ip6->saddr.in6_u.u6_addr32[i]);
		f->dst[i] = bpf_ntohl(ip6->daddr.in6_u.u6_addr32[i]);
	}
	f->proto = ip6->nexthdr;
	f->sport = 0;
	f->dport = 0;
	return ip6 + 1;
}

static __always_inline void flow_v4(struct iphdr *ip, void *end, struct flow *f)
{
	__u8 *l4 = v4_tuple(ip, f);

	if (!l4 || (void *)(l4 + 4) > end)
		return;
	if (has_ports(f->proto)) {
		read_ports(f, l4, end);
		return;
	}
	/* An ICMP error (unreachable, redirect, time exceeded, parameter problem) hashes as the
	 * packet it quotes, when the quote holds a whole IPv4 header. */
	if (f->proto == IPPROTO_ICMP &&
	    (l4[0] == 3 || l4[0] == 5 || l4[0] == 11 || l4[0] == 12)) {
		struct iphdr *in = (void *)(l4 + 8);
		struct flow q;
		__u8 *ql4;

		if ((void *)(in + 1) > end || in->version != 4)
			return;
		ql4 = v4_tuple(in, &q);
		if (ql4 && (void *)(ql4 + 4) <= end && has_ports(q.proto))
			read_ports(&q, ql4, end);
		*f = q;
	}
}

static __always_inline void flow_v6(struct ipv6hdr *ip6, void *end, struct flow *f)
{
	__u8 *l4 = v6_tuple(ip6, f);

	if ((void *)(l4 + 4) > end)
		return;
	if (has_ports(f->proto)) {
		read_ports(f, l4, end);
		return;
	}
	if (f->proto == IPPROTO_ICMPV6 && l4[0] >= 1 && l4[0] <= 4) {
		struct ipv6hdr *in = (void *)(l4 + 8);
		struct flow q;
		__u8 *ql4;

		if ((void *)(in + 1) > end || in->version != 6)
			return;
		ql4 = v6_tuple(in, &q);
		if ((void *)(ql4 + 4) <= end && has_ports(q.proto))
			read_ports(&q, ql4, end);
		*f = q;
	}
}

/* ---- forwarding ---- */

/* The route's verdict, the group's path, the MTU, then the rewrite and the redirect. ip is the
 * IPv4 or IPv6 header; l3len the packet's length. */
static __always_inline int forward(struct ethhdr *eth, void *ip, void *end, int v6, __u32 l3len,
				   struct vfp_fib_value *v, __u32 in_slot)
{
	struct vfp_port_counters *pc;
	struct vfp_adjacency *adj;
	struct vfp_group *g;
	__u32 idx = 0;

	if (v->verdict != VFP_CNT_FORWARDED)
		return count(v->verdict, XDP_PASS);
	g = bpf_map_lookup_elem(&groups, &v->group);
	if (!g)
		return count(VFP_CNT_UNRESOLVED, XDP_PASS);
	if (g->paths > 1) {
		struct flow f;
		__u32 x;

		if (v6)
			flow_v6(ip, end, &f);
		else
			flow_v4(ip, end, &f);
		x = (__u32)(((__u64)flow_hash(&f) * g->total) >> 32);
#pragma unroll
		for (int i = VFP_MAX_PATHS - 1; i >= 0; i--) {
			if (i < g->paths && x < g->upper[i])
				idx = i;
		}
	}
	adj = &g->adj[idx & (VFP_MAX_PATHS - 1)];
	if (!adj->ifindex)
		return count(VFP_CNT_UNRESOLVED, XDP_PASS);
	if (l3len > adj->mtu)
		return count(VFP_CNT_TOO_BIG, XDP_PASS);
	if (v6) {
		((struct ipv6hdr *)ip)->hop_limit--;
	} else {
		/* RFC 1624: TTL is the high byte of its 16-bit word, so decrementing it adds 0x0100
		 * to the one's-complement checksum, with the end-around carry. */
		struct iphdr *ip4 = ip;
		__u32 check = (__u32)ip4->check + (__u32)bpf_htons(0x0100);

		ip4->check = (__u16)(check + (check >= 0xffff));
		ip4->ttl--;
	}
	__builtin_memcpy(eth->h_dest, adj->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, adj->smac, ETH_ALEN);
	count(VFP_CNT_FORWARDED, 0);
	pc = port_count(in_slot);
	if (pc)
		pc->forwarded++;
	pc = port_count(adj->slot);
	if (pc)
		pc->tx++;
	/* install() adds egress ports before the entries that use them, so the devmap has this one.
	 * Were it missing, the kernel would get the rewritten frame, now for another host, and drop
	 * it. */
	return bpf_redirect_map(&tx_ports, adj->slot, XDP_PASS);
}

static __always_inline int special4(const __u8 *a)
{
	return a[0] == 0 || a[0] == 127 || (a[0] & 0xf0) == 0xe0 ||
	       (a[0] == 0xff && a[1] == 0xff && a[2] == 0xff && a[3] == 0xff);
}

static __always_inline int special6(const struct in6_addr *addr)
{
	const __u8 *a = addr->in6_u.u6_addr8;
	const __u32 *w = addr->in6_u.u6_addr32;

	if (a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
		return 1;
	if (w[0] != 0 || w[1] != 0)
		return 0;
	if (w[2] == bpf_htonl(0x0000ffff))
		return 1;
	return w[2] == 0 && (bpf_ntohl(w[3]) <= 1);
}

static __always_inline int route4(struct ethhdr *eth, void *end, __u32 in_slot)
{
	struct iphdr *ip = (void *)(eth + 1);
	struct vfp_fib_value v;
	__u32 sum = 0, len, dst, x;
	__u16 *w;

	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	len = bpf_ntohs(ip->tot_len);
	if (len < 20 || (void *)ip + len > end)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	if (ip->ihl != 5)
		return count(VFP_CNT_IP_OPTIONS, XDP_PASS);
	/* RFC 1812 5.2.2: a router verifies the header checksum. */
	w = (void *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	if (special4((__u8 *)&ip->saddr) || special4((__u8 *)&ip->daddr))
		return count(VFP_CNT_SPECIAL, XDP_PASS);
	if (ip->ttl <= 1)
		return count(VFP_CNT_TTL, XDP_PASS);

	dst = bpf_ntohl(ip->daddr);
	x = dir_entry(&tbl24, dst >> 8);
	if (x & VFP_DIR_EXT)
		x = dir_entry(&tbl8, (x & VFP_DIR_VALUE_MASK) << 8 | (dst & 0xff));
	if (!(x & VFP_DIR_VALID))
		return count(VFP_CNT_NO_ROUTE, XDP_PASS);
	v.verdict = (x & VFP_DIR_VALUE_MASK) >> VFP_V4_VERDICT_SHIFT;
	v.group = x & VFP_V4_GROUP_MASK;
	return forward(eth, ip, end, 0, len, &v, in_slot);
}

static __always_inline int route6(struct ethhdr *eth, void *end, __u32 in_slot)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct vfp_fib_value v;
	const __u8 *a;
	__u32 len, x;

	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	len = 40 + (__u32)bpf_ntohs(ip6->payload_len);
	if ((void *)ip6 + len > end)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	if (ip6->nexthdr == 0)
		return count(VFP_CNT_IP_OPTIONS, XDP_PASS);
	if (special6(&ip6->saddr) || special6(&ip6->daddr))
		return count(VFP_CNT_SPECIAL, XDP_PASS);
	if (ip6->hop_limit <= 1)
		return count(VFP_CNT_TTL, XDP_PASS);

	/* One load per level the longest matching prefix reaches: 16 bits, then a byte a level. */
	a = ip6->daddr.in6_u.u6_addr8;
	x = dir_entry(&tbl16, (__u32)a[0] << 8 | a[1]);
	for (int i = 2; i < 16; i++) { /* a bounded loop the verifier walks */
		if (!(x & VFP_DIR_EXT))
			break;
		x = dir_entry(&tbl8_6, (x & VFP_DIR_VALUE_MASK) << 8 | a[i]);
	}
	if (!(x & VFP_DIR_VALID) || (x & VFP_DIR_EXT))
		return count(VFP_CNT_NO_ROUTE, XDP_PASS);
	v.verdict = (x & VFP_DIR_VALUE_MASK) >> VFP_V4_VERDICT_SHIFT;
	v.group = x & VFP_V4_GROUP_MASK;
	return forward(eth, ip6, end, 1, len, &v, in_slot);
}

SEC("xdp")
int vfp_xdp_router(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	__u32 ingress = ctx->ingress_ifindex;
	struct vfp_port_counters *pc;
	struct vfp_port *port;
	__u32 slot;

	count(VFP_CNT_RX, 0);
	if ((void *)(eth + 1) > end)
		return count(VFP_CNT_MALFORMED, XDP_PASS);
	/* A router routes only frames addressed to it; the kernel drops the rest (other host) and
	 * handles broadcast and multicast. */
	if (ingress < VFP_PORT_DIRECT)
		port = bpf_map_lookup_elem(&ports, &ingress);
	else
		port = bpf_map_lookup_elem(&ports_high, &ingress);
	if (!port || !port->valid)
		return count(VFP_CNT_OTHER_HOST, XDP_PASS);
	slot = port->slot;
	pc = port_count(slot);
	if (pc)
		pc->rx++;
	if (!mac_equal(eth->h_dest, port->mac))
		return count(VFP_CNT_OTHER_HOST, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return route4(eth, end, slot);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return route6(eth, end, slot);
	return count(VFP_CNT_NOT_IP, XDP_PASS);
}

/* For the far end of a veth that the router redirects into: veth delivers redirected frames only
 * to a peer that runs XDP itself, and this is the program that lets them through. */
SEC("xdp")
int vfp_xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
