// Prometheus metrics of a router, computed when scraped, named after its fast path
// ("vfplane_xdp_...", "vfplane_dpdk_..."):
//
//   vfplane_<fp>_packets_total{verdict}   forwarded, or what else became of a frame (kVerdicts):
//                                         other_host, not_ip, malformed, special_address,
//                                         ip_options, ttl, no_route, local, unresolved, not_port,
//                                         reject, too_big, tx_dropped, punt_dropped
//   vfplane_<fp>_received_total           every frame the fast path saw
//   vfplane_<fp>_port_packets_total{port,direction}   rx, forwarded, tx per port
//   vfplane_<fp>_polls_total{worker,state}            busy or idle poll loops (DPDK)
//   vfplane_<fp>_table_installs_total{how}            in_place or rebuilt (DPDK)
//   vfplane_<fp>_table_entries            entries in the forwarding table
//   vfplane_<fp>_routes / _neighbours / _next_hop_groups   what the table was compiled from
//   vfplane_<fp>_syncs_total / vfplane_<fp>_sync_errors_total   re-reads of the kernel's tables
#pragma once

#include <prometheus/collectable.h>

#include <memory>

#include "vfplane/dataplane/router_loop.h"

namespace vfplane::dataplane {

// The loop must outlive the collectable's use by an exposer.
std::shared_ptr<prometheus::Collectable> makeRouterMetrics(const RouterLoop& loop);

}  // namespace vfplane::dataplane
