// The router's packet path as the DPDK backend runs it (classify, table lookup, flowOf and the
// ECMP pick, the MTU check, rewrite) on frames of any shape, in a buffer exactly as long as the
// frame, so that a read past its end is an ASan report. Beyond not crashing: a frame is either
// punted with a verdict or forwarded to a path of the table, and a forwarded IPv4 header still
// has a valid checksum.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "vfplane/dataplane/forwarding_model.h"
#include "vfplane/dataplane/packet.h"

namespace {
using namespace vfplane::dataplane;

IpAddr ip(const char* text) { return *IpAddr::parse(text); }
Prefix prefix(const char* text) { return *Prefix::parse(text); }

// Both families, an ECMP group with an unresolved path, locals and a reject route.
const Fib& table() {
  static const Fib fib = [] {
    ForwardingModel m;
    MacAddress port{{0xaa, 0, 0, 0, 0, 1}};
    m.setInterface({1, "p", port, 1500});
    m.setRoute(Route::onLink(prefix("10.1.0.0/24"), 1));
    m.setRoute(Route::via(prefix("0.0.0.0/0"), ip("10.1.0.254"), 1));
    m.setRoute({prefix("203.0.113.0/24"),
                {{ip("10.1.0.11"), 1, 1}, {ip("10.1.0.12"), 1, 2}, {ip("10.1.0.13"), 1, 1}}});
    m.setRoute(Route::reject(prefix("10.66.0.0/16")));
    m.setRoute(Route::via(prefix("::/0"), ip("fe80::1"), 1));
    m.setRoute({prefix("2001:db8:e::/48"), {{ip("fe80::11"), 1, 1}, {ip("fe80::12"), 1, 1}}});
    for (const char* n :
         {"10.1.0.7", "10.1.0.254", "10.1.0.11", "10.1.0.13", "fe80::1", "fe80::11", "fe80::12"}) {
      m.setNeighbour({ip(n), 1, MacAddress{{0xbb, 0, 0, 0, 0, 7}}});
    }
    m.addLocal(ip("10.1.0.1"));
    m.addLocal(ip("2001:db8::1"));
    return m.compile();
  }();
  return fib;
}

const FibEntry* lookup(const IpAddr& dst) {
  const FibEntry* best = nullptr;
  for (const auto& e : table()) {
    if (e.prefix.contains(dst) && (best == nullptr || e.prefix.length > best->prefix.length))
      best = &e;
  }
  return best;
}

uint16_t sum16(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> frame(data, data + size);
  // Half the inputs are addressed to the port, so the checks beyond the MAC get exercised.
  MacAddress port{{0xaa, 0, 0, 0, 0, 1}};
  if (size >= 6 && (data[size - 1] & 1) == 0) std::memcpy(port.bytes.data(), data, 6);
  auto parsed = classify(frame.data(), frame.size(), port);
  if (!parsed) return 0;
  if (parsed->l3Length > frame.size() - kEthHeader) std::abort();
  const FibEntry* e = lookup(parsed->dst);
  if (e == nullptr || !e->action.forwards()) return 0;
  Flow flow = flowOf(frame.data(), frame.size());
  if (flow.dst != parsed->dst && flow.src.family != parsed->dst.family) std::abort();
  const GroupPath& path = e->action.group().pick(flowHash(flow, 7));
  if (!path.adjacency || parsed->l3Length > static_cast<uint32_t>(path.adjacency->mtu)) return 0;
  rewrite(frame.data(), path.adjacency->dst, path.adjacency->src);
  if (std::memcmp(frame.data(), path.adjacency->dst.bytes.data(), 6) != 0) std::abort();
  if (parsed->dst.isV4() && sum16(frame.data() + kEthHeader, 20) != 0xffff) std::abort();
  return 0;
}
