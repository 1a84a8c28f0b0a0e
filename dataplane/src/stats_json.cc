#include "vfplane/dataplane/stats_json.h"

#include <nlohmann/json.hpp>

#include "vfplane/base/files.h"

namespace vfplane::dataplane {

std::string statsJson(const char* fastPath, const FastPathCounters& counters,
                      const RouterStatus& status) {
  nlohmann::ordered_json j;
  j["fast_path"] = fastPath;
  j["received"] = counters.rx;
  nlohmann::ordered_json packets = nlohmann::ordered_json::object();
  for (const auto& v : kVerdicts) packets[v.name] = counters.*v.count;
  j["packets"] = std::move(packets);
  j["table_entries"] = status.entries;
  j["syncs"] = status.syncs;
  j["sync_errors"] = status.syncErrors;
  return j.dump(2) + "\n";
}

Result<void> writeStatsJson(const std::filesystem::path& path, const RouterLoop& loop) {
  auto counters = loop.counters();
  if (!counters) return fail(std::move(counters.error()).withContext("--stats-json"));
  auto ok =
      writeFileAtomic(path, statsJson(loop.fastPath().name(), *counters, loop.status()), 0644);
  if (!ok) return fail(std::move(ok.error()).withContext("--stats-json " + path.string()));
  return {};
}

}  // namespace vfplane::dataplane
