// Prometheus metrics of vfplane-xdp-router, computed when scraped:
//
//   vfplane_xdp_packets_total{verdict}   forwarded, or the reason it went to the kernel:
//                                        other_host, not_ipv4, ip_options, ttl, no_route,
//                                        local_or_unresolved, malformed
//   vfplane_xdp_received_total           every frame the program saw
//   vfplane_xdp_table_entries            entries in the forwarding table
//   vfplane_xdp_syncs_total / vfplane_xdp_sync_errors_total   re-reads of the kernel's tables
#pragma once

#include <memory>

#include <prometheus/collectable.h>

#include "vfplane/ebpf/router_daemon.h"

namespace vfplane::ebpf {

// The daemon must outlive the collectable's use by an exposer.
std::shared_ptr<prometheus::Collectable> makeRouterMetrics(const RouterDaemon& daemon);

}  // namespace vfplane::ebpf
