// vfplane-ipam's config and range parser reads the "ipam" section of any network config. Beyond
// not crashing: an accepted config has ranges that lie inside their subnets, start before they
// end, and do not overlap; a refused one is a CNI error with a spec code.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "vfplane/cni/ipam.h"

namespace {
int cmp(const vfplane::netlink::IpPrefix& a, const vfplane::netlink::IpPrefix& b) {
  return std::memcmp(a.addr.data(), b.addr.data(), a.addrLen());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfplane::cni;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  static const auto env = parseEnvironment({{"CNI_COMMAND", "ADD"},
                                            {"CNI_CONTAINERID", "c"},
                                            {"CNI_NETNS", "/x"},
                                            {"CNI_IFNAME", "net1"}});
  auto conf = parseNetConf(text);
  if (!conf) return 0;
  auto c = parseIpamConfig(*conf, *env);
  if (!c) {
    if (c.error().code != ErrorCode::kInvalidConfig || c.error().msg.empty()) std::abort();
    return 0;
  }
  if (c->rangeSets.empty()) std::abort();
  for (const auto& set : c->rangeSets) {
    if (set.empty()) std::abort();
    for (const auto& r : set) {
      if (r.start.family != r.subnet.family || r.end.family != r.subnet.family) std::abort();
      if (cmp(r.start, r.end) > 0) std::abort();
      if (r.subnet.length > static_cast<int>(r.subnet.addrLen() * 8) - 2) std::abort();
    }
  }
  return 0;
}
