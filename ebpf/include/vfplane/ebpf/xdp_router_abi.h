/* What the XDP router program and its C++ loader share: map keys, values and counter slots.
 * Included by BPF C and by C++, so it is plain C with kernel types. */
#ifndef VFPLANE_EBPF_XDP_ROUTER_ABI_H
#define VFPLANE_EBPF_XDP_ROUTER_ABI_H

#include <linux/types.h>

/* LPM trie key: the prefix length, then the IPv4 address in network byte order. */
struct vfp_fib_key {
	__u32 prefixlen;
	__u32 addr;
};

enum vfp_fib_action {
	VFP_FIB_PUNT = 0,    /* hand the packet to the kernel (XDP_PASS) */
	VFP_FIB_FORWARD = 1, /* rewrite the MACs, decrement TTL, redirect to ifindex */
};

struct vfp_fib_value {
	__u32 action;
	__u32 ifindex;
	__u8 smac[6];
	__u8 dmac[6];
};

/* An ingress port's own MAC: only frames addressed to it are routed. */
struct vfp_port {
	__u8 mac[6];
	__u16 pad;
};

/* Slots of the per-CPU packet counters. */
enum vfp_counter {
	VFP_CNT_RX = 0,
	VFP_CNT_FORWARDED,
	VFP_CNT_PUNT_NOT_IPV4,
	VFP_CNT_PUNT_IP_OPTIONS,
	VFP_CNT_PUNT_TTL,
	VFP_CNT_PUNT_NO_ROUTE,
	VFP_CNT_PUNT_ACTION,
	VFP_CNT_PUNT_MALFORMED,
	VFP_CNT_PUNT_OTHER_HOST,
	VFP_CNT_MAX,
};

#endif
