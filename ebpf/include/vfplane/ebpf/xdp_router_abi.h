/* What the XDP router program and its C++ loader share: map keys, values and counter slots.
 * Included by BPF C and by C++, so it is plain C with kernel types. */
#ifndef VFPLANE_EBPF_XDP_ROUTER_ABI_H
#define VFPLANE_EBPF_XDP_ROUTER_ABI_H

#include <linux/types.h>

/* The most paths of one next-hop group, and the most ports. */
#define VFP_MAX_PATHS 16
#define VFP_MAX_PORTS 64

/* IPv4 forwarding table: DIR-24-8 in two arrays of __u32 entries (dataplane/dir24_8.h writes
 * them in place through mmap). tbl24 is indexed by the destination's top 24 bits; an entry with
 * VFP_DIR_EXT sends the lookup to group (value) of tbl8, indexed by the last 8 bits. A valid final
 * entry's value is the route: its verdict and its next-hop group. Bits 24-29 are 0. */
#define VFP_DIR_VALID (1u << 31)
#define VFP_DIR_EXT (1u << 30)
#define VFP_DIR_VALUE_MASK ((1u << 24) - 1)
#define VFP_TBL24_ENTRIES (1u << 24)
#define VFP_V4_VERDICT_SHIFT 20
#define VFP_V4_GROUP_MASK ((1u << 20) - 1) /* so group ids stay below 2^20 */

/* IPv6 forwarding table: the same entries in a multibit trie (dataplane/stride_table.h): tbl16
 * indexed by the destination's top 16 bits, then 8-bit groups in tbl8_6, one level per further
 * byte, while the entry found has VFP_DIR_EXT. The length of the prefix behind each entry is the
 * writer's, kept in its own memory. */
#define VFP_TBL16_ENTRIES (1u << 16)

/* Slots of the per-CPU packet counters, in the order of the fast path's verdicts. */
enum vfp_counter {
	VFP_CNT_RX = 0,
	VFP_CNT_FORWARDED,
	VFP_CNT_OTHER_HOST,
	VFP_CNT_NOT_IP,
	VFP_CNT_MALFORMED,
	VFP_CNT_SPECIAL,
	VFP_CNT_IP_OPTIONS,
	VFP_CNT_TTL,
	VFP_CNT_NO_ROUTE,
	VFP_CNT_LOCAL,
	VFP_CNT_UNRESOLVED,
	VFP_CNT_NOT_PORT,
	VFP_CNT_REJECT,
	VFP_CNT_TOO_BIG,
	VFP_CNT_MAX,
};

/* A table entry: forward over a group, or hand the packet to the kernel and count it in the
 * slot that says why. */
struct vfp_fib_value {
	__u32 verdict; /* VFP_CNT_FORWARDED, or the punt's counter slot */
	__u32 group;   /* an index of the groups array, when forwarding */
};

/* Where the flows that pick a path go; ifindex 0 while its next hop is unresolved. */
struct vfp_adjacency {
	__u32 ifindex;
	__u32 mtu;
	__u32 slot; /* the egress port's slot in port_counters */
	__u8 smac[6];
	__u8 dmac[6];
};

/* A next-hop group. Path i owns hash shares [upper[i-1], upper[i]) of total: the kernel's
 * hash-threshold rule over the paths' weights. */
struct vfp_group {
	__u32 paths;
	__u32 total;
	__u32 upper[VFP_MAX_PATHS];
	struct vfp_adjacency adj[VFP_MAX_PATHS];
};

/* An ingress port's own MAC: only frames addressed to it are routed. Ports whose ifindex is
 * below VFP_PORT_DIRECT are found by indexing an array (an inlined load); the rest by hash. */
struct vfp_port {
	__u8 mac[6];
	__u8 valid; /* 0: no port (an array holds an element for every index) */
	__u8 slot;  /* its slot in port_counters and tx_ports, below VFP_MAX_PORTS */
};
#define VFP_PORT_DIRECT 65536

/* Per port, per CPU: frames received, of those forwarded, and transmitted out of it. */
struct vfp_port_counters {
	__u64 rx;
	__u64 forwarded;
	__u64 tx;
};

#endif
