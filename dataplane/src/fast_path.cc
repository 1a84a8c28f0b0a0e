#include "vfplane/dataplane/fast_path.h"

namespace vfplane::dataplane {

FibDiff diffFib(const std::map<Prefix, Action>& installed, const Fib& desired) {
  FibDiff diff;
  std::map<Prefix, const Action*> want;
  for (const auto& e : desired) want[e.prefix] = &e.action;
  for (const auto& [prefix, action] : want) {
    auto it = installed.find(prefix);
    if (it != installed.end() && it->second == *action) {
      ++diff.stats.unchanged;
      continue;
    }
    ++(it == installed.end() ? diff.stats.added : diff.stats.updated);
    diff.upserts.push_back({prefix, *action});
  }
  for (const auto& [prefix, action] : installed) {
    if (want.contains(prefix)) continue;
    ++diff.stats.removed;
    diff.removals.push_back(prefix);
  }
  return diff;
}

}  // namespace vfplane::dataplane
