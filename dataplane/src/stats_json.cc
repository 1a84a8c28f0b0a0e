#include "vfplane/dataplane/stats_json.h"

#include <nlohmann/json.hpp>

#include "vfplane/base/files.h"

namespace vfplane::dataplane {

std::string statsJson(const char* fastPath, const FastPathCounters& counters,
                      const RouterStatus& status, const std::vector<PortCounters>& ports,
                      const std::vector<WorkerPolls>& polls) {
  nlohmann::ordered_json j;
  j["fast_path"] = fastPath;
  j["received"] = counters.rx;
  nlohmann::ordered_json packets = nlohmann::ordered_json::object();
  for (const auto& v : kVerdicts) packets[v.name] = counters.*v.count;
  j["packets"] = std::move(packets);
  nlohmann::ordered_json perPort = nlohmann::ordered_json::object();
  for (const auto& p : ports)
    perPort[p.name] = {{"rx", p.rx}, {"forwarded", p.forwarded}, {"tx", p.tx}};
  j["ports"] = std::move(perPort);
  if (!polls.empty()) {
    nlohmann::ordered_json workers = nlohmann::ordered_json::array();
    for (const auto& w : polls) workers.push_back({{"polls", w.polls}, {"busy", w.busy}});
    j["workers"] = std::move(workers);
  }
  j["table_entries"] = status.entries;
  j["routes"] = status.routes;
  j["neighbours"] = status.neighbours;
  j["next_hop_groups"] = status.groups;
  j["syncs"] = status.syncs;
  j["route_updates"] = status.routeUpdates;
  j["sync_errors"] = status.syncErrors;
  return j.dump(2) + "\n";
}

Result<void> writeStatsJson(const std::filesystem::path& path, const RouterLoop& loop) {
  auto counters = loop.counters();
  if (!counters) return fail(std::move(counters.error()).withContext("--stats-json"));
  auto ports = loop.portCounters();
  if (!ports) return fail(std::move(ports.error()).withContext("--stats-json"));
  auto ok = writeFileAtomic(
      path, statsJson(loop.fastPath().name(), *counters, loop.status(), *ports, loop.workerPolls()),
      0644);
  if (!ok) return fail(std::move(ok.error()).withContext("--stats-json " + path.string()));
  return {};
}

}  // namespace vfplane::dataplane
