// The router's counters as one JSON object, for --stats-json: what /metrics serves, written once
// when the router stops, so a benchmark or a test reads the totals without scraping.
//
//   {"fast_path": "dpdk", "received": 10, "packets": {"forwarded": 8, "ttl": 1, ...},
//    "ports": {"r1": {"rx": 6, "forwarded": 5, "tx": 3}, ...},
//    "workers": [{"polls": 90000, "busy": 9}],              (DPDK only)
//    "table_entries": 12, "routes": 6, "neighbours": 3, "next_hop_groups": 2,
//    "syncs": 3, "sync_errors": 0}
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/router_loop.h"

namespace vfplane::dataplane {

std::string statsJson(const char* fastPath, const FastPathCounters& counters,
                      const RouterStatus& status, const std::vector<PortCounters>& ports,
                      const std::vector<WorkerPolls>& polls);
// Atomically; errors name the file.
Result<void> writeStatsJson(const std::filesystem::path& path, const RouterLoop& loop);

}  // namespace vfplane::dataplane
