// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The XDP benchmark chain's own programs (bench/xdp_chain.cc loads them):
 *
 *   generator (gen namespace) --veth--> router port r1 ... r2 --veth--> sink (sink namespace)
 *
 * xdpc_gen     the traffic generator, run by BPF_PROG_TEST_RUN in live-frames mode on the
 *              generator's veth: it writes the next header of the table into the frame (live
 *              pages are recycled with whatever the router left in them) and sends it (XDP_TX).
 * xdpc_sink    counts what arrives, and what arrives forwarded (TTL or hop limit one lower than
 *              sent), and drops it.
 * xdpc_fib     the baseline router: the kernel's FIB by bpf_fib_lookup, TTL, MAC rewrite,
 *              redirect (what the kernel's samples/bpf/xdp_fwd does).
 * xdpc_floor   the redirect-only floor: every frame to the egress port, no lookup, no rewrite.
 * xdpc_pass    XDP_PASS: lets the kernel forward (veth hands frames from an XDP peer only to a
 *              link that runs XDP), and the floor of a program's own cost. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define XDPC_HDR 64 /* header bytes kept per destination: Ethernet, IPv6, UDP fit */

struct xdpc_header {
	__u8 bytes[XDPC_HDR];
};

/* Set by the loader before the programs are loaded. */
const volatile __u32 header_len = XDPC_HDR; /* 64, or 48 for frames shorter than 64 bytes */
const volatile __u32 sent_ttl = 64;         /* the TTL the generator's headers carry */
const volatile __u32 floor_ifindex = 0;     /* xdpc_floor's egress port */
const volatile __u32 header_count = 1;      /* entries in headers */

/* The generator's headers, one per destination; max_entries is set to their count. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct xdpc_header);
	__uint(max_entries, 1);
} headers SEC(".maps");

__u32 next_header = 0; /* the generator runs on one CPU */

enum { XDPC_SEEN, XDPC_FORWARDED, XDPC_COUNTERS };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, XDPC_COUNTERS);
} sink_counters SEC(".maps");

/* Frames xdpc_fib left to the kernel: the harness reads it to tell that the baseline, not the
 * kernel behind it, forwarded the traffic. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} fib_passed SEC(".maps");

static __always_inline int fib_pass(void)
{
	__u32 zero = 0;
	__u64 *c = bpf_map_lookup_elem(&fib_passed, &zero);

	if (c)
		*c += 1;
	return XDP_PASS;
}

/* The routers' egress ports by ifindex, as vfplane's own program has them. */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 64);
} tx_ports SEC(".maps");

SEC("xdp")
int xdpc_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 i = next_header;
	struct xdpc_header *h;

	next_header = i + 1 < header_count ? i + 1 : 0;
	h = bpf_map_lookup_elem(&headers, &i);
	if (!h)
		return XDP_ABORTED;
	if (header_len == XDPC_HDR) {
		if (data + XDPC_HDR > end)
			return XDP_ABORTED;
		__builtin_memcpy(data, h->bytes, XDPC_HDR);
	} else {
		if (data + 48 > end)
			return XDP_ABORTED;
		__builtin_memcpy(data, h->bytes, 48);
	}
	return XDP_TX;
}

static __always_inline void sink_count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&sink_counters, &slot);

	if (c)
		*c += 1;
}

SEC("xdp")
int xdpc_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	sink_count(XDPC_SEEN);
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) <= end && ip->ttl == sent_ttl - 1)
			sink_count(XDPC_FORWARDED);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) <= end && ip6->hop_limit == sent_ttl - 1)
			sink_count(XDPC_FORWARDED);
	}
	return XDP_DROP;
}

/* The lookup's answer applied: next hop's and egress port's MACs, then the redirect. */
static __always_inline int fib_send(struct ethhdr *eth, struct bpf_fib_lookup *fib)
{
	__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
	return bpf_redirect_map(&tx_ports, fib->ifindex, 0);
}

static __always_inline int fib4(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct iphdr *ip = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};
	__u32 check;

	if ((void *)(ip + 1) > end || ip->ttl <= 1)
		return fib_pass();
	fib.family = 2; /* AF_INET */
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof fib, 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_pass(); /* the kernel resolves, answers or drops */
	if (!bpf_map_lookup_elem(&tx_ports, &fib.ifindex))
		return fib_pass();
	check = (__u32)ip->check + (__u32)bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
	return fib_send(eth, &fib);
}

static __always_inline int fib6(struct xdp_md *ctx, struct ethhdr *eth, void *end)
{
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	struct bpf_fib_lookup fib = {};

	if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
		return fib_pass();
	fib.family = 10; /* AF_INET6 */
	fib.flowinfo = *(__be32 *)ip6 & bpf_htonl(0x0fffffff);
	fib.l4_protocol = ip6->nexthdr;
	fib.tot_len = bpf_ntohs(ip6->payload_len);
	__builtin_memcpy(fib.ipv6_src, &ip6->saddr, 16);
	__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof fib, 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return fib_pass();
	if (!bpf_map_lookup_elem(&tx_ports, &fib.ifindex))
		return fib_pass();
	ip6->hop_limit--;
	return fib_send(eth, &fib);
}

SEC("xdp")
int xdpc_fib(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > end)
		return fib_pass();
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return fib4(ctx, eth, end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return fib6(ctx, eth, end);
	return fib_pass();
}

SEC("xdp")
int xdpc_floor(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_ports, floor_ifindex, 0);
}

SEC("xdp")
int xdpc_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
