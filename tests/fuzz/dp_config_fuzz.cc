// The device plugin's config.json parser takes operator input from a ConfigMap. Beyond not
// crashing: an accepted config has named, valid, unique resources.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "vfplane/dp/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vfplane::dp::parseConfig(text, "fuzz.json", "intel.com");
  if (!config) {
    if (config.error().message().find("fuzz.json") != 0) std::abort();
    return 0;
  }
  std::set<std::string> names;
  for (const auto& r : config->resources) {
    if (r.resourceName.empty() || !names.insert(r.fullName("intel.com")).second) std::abort();
    for (const auto& s : r.selectors) {
      for (const auto& ref : s.pfNames) {
        for (auto [lo, hi] : ref.vfRanges) {
          if (lo > hi || lo < 0) std::abort();
        }
      }
    }
  }
  return 0;
}
