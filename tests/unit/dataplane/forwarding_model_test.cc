#include "vfplane/dataplane/forwarding_model.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <random>
#include <set>

#include "vfplane/dataplane/fast_path.h"
#include "vfplane/dataplane/kernel_model.h"
#include "vfplane/dataplane/packet.h"

namespace vfplane::dataplane {
namespace {
using testing::HasSubstr;

IpAddr ip(const char* text) { return *IpAddr::parse(text); }
Prefix prefix(const char* text) { return *Prefix::parse(text); }
MacAddress mac(const char* text) { return *MacAddress::parse(text); }
Flow flowTo(const char* dst, uint16_t sport = 40000, const char* src = "192.0.2.10") {
  return {ip(src), ip(dst), 17, sport, 53};
}
constexpr uint32_t kSeed = 0x5eed;

TEST(Prefix, ParsesBothFamiliesAndRejectsWithTheText) {
  EXPECT_EQ(prefix("10.1.0.0/16").str(), "10.1.0.0/16");
  EXPECT_EQ(prefix("10.1.0.7").length, 32);
  EXPECT_EQ(prefix("2001:db8::/32").str(), "2001:db8::/32");
  EXPECT_EQ(prefix("2001:db8::1").length, 128);
  EXPECT_EQ(prefix("::/0").length, 0);
  EXPECT_TRUE(prefix("10.1.0.0/16").contains(ip("10.1.255.3")));
  EXPECT_FALSE(prefix("10.1.0.0/16").contains(ip("10.2.0.1")));
  EXPECT_TRUE(prefix("0.0.0.0/0").contains(ip("203.0.113.9")));
  EXPECT_FALSE(prefix("0.0.0.0/0").contains(ip("2001:db8::1"))) << "families never mix";
  EXPECT_TRUE(prefix("2001:db8:80::/41").contains(ip("2001:db8:ff::1")));
  EXPECT_FALSE(prefix("2001:db8:80::/41").contains(ip("2001:db8:7f::1")));
  auto hostBits = Prefix::parse("10.1.0.5/16");
  ASSERT_FALSE(hostBits);
  EXPECT_THAT(hostBits.error().message(), HasSubstr("did you mean 10.1.0.0/16"));
  auto hostBits6 = Prefix::parse("2001:db8::1/64");
  ASSERT_FALSE(hostBits6);
  EXPECT_THAT(hostBits6.error().message(), HasSubstr("did you mean 2001:db8::/64"));
  EXPECT_FALSE(Prefix::parse("10.1.0.0/33"));
  EXPECT_FALSE(Prefix::parse("2001:db8::/129"));
  EXPECT_FALSE(Prefix::parse("10.1.0.0/"));
  EXPECT_FALSE(Prefix::parse("router"));
  EXPECT_EQ(IpAddr::v4(0xc00002ff).str(), "192.0.2.255");
  EXPECT_LT(ip("255.255.255.255"), ip("::")) << "IPv4 sorts first";
}

// A router with two legs: 10.1.0.1/24 on if 2 (aa:..:02), 10.2.0.1/24 on if 3 (aa:..:03), a
// default route via 10.2.0.254 and a more specific route via a gateway on the first leg.
class ModelTest : public testing::Test {
 protected:
  void SetUp() override {
    m_.setInterface({2, "r1", mac("aa:00:00:00:00:02"), 1500});
    m_.setInterface({3, "r2", mac("aa:00:00:00:00:03"), 9000});
    m_.setRoute(Route::onLink(prefix("10.1.0.0/24"), 2));
    m_.setRoute(Route::onLink(prefix("10.2.0.0/24"), 3));
    m_.setRoute(Route::via(prefix("0.0.0.0/0"), ip("10.2.0.254"), 3));
    m_.setRoute(Route::via(prefix("172.16.0.0/12"), ip("10.1.0.9"), 2));
    m_.addLocal(ip("10.1.0.1"));
    m_.addLocal(ip("10.2.0.1"));
  }
  ForwardingModel m_;
};

TEST_F(ModelTest, LongestPrefixWins) {
  EXPECT_EQ(m_.lookup(ip("10.1.0.50"))->dst, prefix("10.1.0.0/24"));
  EXPECT_EQ(m_.lookup(ip("172.20.1.1"))->dst, prefix("172.16.0.0/12"));
  EXPECT_EQ(m_.lookup(ip("8.8.8.8"))->dst, prefix("0.0.0.0/0"));
  EXPECT_EQ(m_.lookup(ip("2001:db8::1")), nullptr) << "an IPv4 default route is not an IPv6 one";
  m_.removeRoute(prefix("0.0.0.0/0"));
  EXPECT_EQ(m_.lookup(ip("8.8.8.8")), nullptr);
}

TEST_F(ModelTest, ResolvesThroughGatewayAndNeighbour) {
  EXPECT_EQ(m_.resolve(flowTo("8.8.8.8"), kSeed).error(), Punt::kUnresolved)
      << "gateway MAC not known yet";
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  EXPECT_EQ(m_.resolve(flowTo("8.8.8.8"), kSeed),
            (Decision{Adjacency{3, mac("aa:00:00:00:00:03"), mac("bb:00:00:00:02:54"), 9000}}))
      << "with the egress MTU";
  EXPECT_EQ(m_.resolve(flowTo("10.1.0.1"), kSeed).error(), Punt::kLocal);
  EXPECT_EQ(m_.resolve(flowTo("10.1.0.77"), kSeed).error(), Punt::kUnresolved);
  m_.setNeighbour({ip("10.1.0.77"), 2, mac("bb:00:00:00:00:77")});
  EXPECT_EQ(m_.resolve(flowTo("10.1.0.77"), kSeed)->dst, mac("bb:00:00:00:00:77"));
  m_.removeInterface(2);
  EXPECT_EQ(m_.resolve(flowTo("10.1.0.77"), kSeed).error(), Punt::kNotPort);
  m_.setRoute(Route::reject(prefix("8.8.0.0/16")));
  EXPECT_EQ(m_.resolve(flowTo("8.8.8.8"), kSeed).error(), Punt::kReject);
  m_.removeRoute(prefix("0.0.0.0/0"));
  EXPECT_EQ(m_.resolve(flowTo("9.9.9.9"), kSeed).error(), Punt::kNoRoute);
}

TEST_F(ModelTest, CompileEmitsRoutesNeighboursAndLocals) {
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  m_.setNeighbour({ip("10.1.0.77"), 2, mac("bb:00:00:00:00:77")});
  auto fib = m_.compile();
  std::map<std::string, Action> byPrefix;
  for (const auto& e : fib) byPrefix.insert_or_assign(e.prefix.str(), e.action);
  EXPECT_EQ(byPrefix.size(), 8u) << "4 routes, 2 neighbours, 2 local addresses";
  EXPECT_EQ(byPrefix.at("0.0.0.0/0").group().paths.at(0).adjacency->ifindex, 3);
  EXPECT_EQ(byPrefix.at("172.16.0.0/12").punt(), Punt::kUnresolved);
  EXPECT_EQ(byPrefix.at("10.1.0.0/24").punt(), Punt::kUnresolved)
      << "unknown hosts go to the kernel";
  EXPECT_EQ(byPrefix.at("10.1.0.77/32").group().paths.at(0).adjacency->dst,
            mac("bb:00:00:00:00:77"));
  EXPECT_EQ(byPrefix.at("10.2.0.254/32").group().paths.at(0).adjacency->dst,
            mac("bb:00:00:00:02:54"));
  EXPECT_EQ(byPrefix.at("10.1.0.1/32").punt(), Punt::kLocal);
  EXPECT_EQ(byPrefix.at("10.2.0.1/32").punt(), Punt::kLocal);
  EXPECT_EQ(byPrefix.at("0.0.0.0/0").groupRef(), byPrefix.at("10.2.0.254/32").groupRef())
      << "equal groups are one group";
  EXPECT_TRUE(std::is_sorted(fib.begin(), fib.end(), [](const FibEntry& a, const FibEntry& b) {
    return a.prefix < b.prefix;
  }));
  EXPECT_EQ(m_.compile(), fib) << "a second compile is equal, group by group";
}

TEST_F(ModelTest, NeighbourNeverShadowsAMoreSpecificGatewayRoute) {
  // 10.1.0.128/25 goes via a gateway even though 10.1.0.200 answers ARP on the connected leg.
  m_.setRoute(Route::via(prefix("10.1.0.128/25"), ip("10.2.0.254"), 3));
  m_.setNeighbour({ip("10.1.0.200"), 2, mac("bb:00:00:00:02:00")});
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  for (const auto& e : m_.compile()) EXPECT_NE(e.prefix, Prefix::host(ip("10.1.0.200")));
  EXPECT_EQ(m_.resolve(flowTo("10.1.0.200"), kSeed)->ifindex, 3);
}

TEST(Ipv6Model, RoutesViaLinkLocalGatewaysAndConnectedHosts) {
  ForwardingModel m;
  m.setInterface({2, "r1", mac("aa:00:00:00:00:02")});
  m.setInterface({3, "r2", mac("aa:00:00:00:00:03")});
  m.setRoute(Route::onLink(prefix("2001:db8:1::/64"), 2));
  m.setRoute(Route::via(prefix("::/0"), ip("fe80::1"), 3));
  m.setNeighbour({ip("fe80::1"), 3, mac("bb:00:00:00:00:01")});
  m.setNeighbour({ip("2001:db8:1::7"), 2, mac("bb:00:00:00:00:07")});
  m.addLocal(ip("2001:db8:1::1"));
  Flow out{ip("2001:db8:1::7"), ip("2001:db8:99::5"), 6, 1234, 443};
  EXPECT_EQ(m.resolve(out, kSeed)->dst, mac("bb:00:00:00:00:01"));
  EXPECT_EQ(m.resolve(Flow{ip("2001:db8:99::5"), ip("2001:db8:1::7"), 6, 443, 1234}, kSeed)->dst,
            mac("bb:00:00:00:00:07"));
  EXPECT_EQ(m.resolve(Flow{ip("2001:db8:99::5"), ip("2001:db8:1::1"), 58}, kSeed).error(),
            Punt::kLocal);
  EXPECT_EQ(m.resolve(Flow{ip("2001:db8:99::5"), ip("2001:db8:1::8"), 17}, kSeed).error(),
            Punt::kUnresolved);
  EXPECT_EQ(m.resolve(flowTo("10.0.0.1"), kSeed).error(), Punt::kNoRoute)
      << "no IPv4 route: an IPv6 default does not cover it";
}

// Two equal paths and a third of weight 2 out of one leg; flows spread by the weights, and each
// flow, in either direction, always takes one path.
class EcmpTest : public testing::Test {
 protected:
  void SetUp() override {
    m_.setInterface({2, "r1", mac("aa:00:00:00:00:02")});
    m_.setInterface({3, "r2", mac("aa:00:00:00:00:03")});
    m_.setRoute({prefix("198.51.100.0/24"),
                 {{ip("10.2.0.1"), 3, 1}, {ip("10.2.0.2"), 3, 1}, {ip("10.1.0.3"), 2, 2}}});
    m_.setNeighbour({ip("10.2.0.1"), 3, mac("bb:00:00:00:00:01")});
    m_.setNeighbour({ip("10.2.0.2"), 3, mac("bb:00:00:00:00:02")});
    m_.setNeighbour({ip("10.1.0.3"), 2, mac("bb:00:00:00:00:03")});
  }
  ForwardingModel m_;
};

TEST_F(EcmpTest, FlowsSpreadByWeightAndStick) {
  std::map<MacAddress, int> hits;
  for (uint16_t port = 1; port <= 4000; ++port) {
    Flow f = flowTo("198.51.100.9", port);
    auto d = m_.resolve(f, kSeed);
    ASSERT_TRUE(d);
    ++hits[d->dst];
    ASSERT_EQ(m_.resolve(f, kSeed), d) << "the same flow, the same path";
  }
  ASSERT_EQ(hits.size(), 3u);
  // Weights 1:1:2 of 4000 flows: 1000, 1000, 2000, within a generous margin.
  EXPECT_NEAR(hits[mac("bb:00:00:00:00:01")], 1000, 150);
  EXPECT_NEAR(hits[mac("bb:00:00:00:00:02")], 1000, 150);
  EXPECT_NEAR(hits[mac("bb:00:00:00:00:03")], 2000, 200);
}

TEST(FlowHash, IsSymmetricAndDependsOnEveryField) {
  Flow f{*IpAddr::parse("2001:db8::1"), *IpAddr::parse("2001:db8::2"), 6, 1000, 80};
  Flow back{f.dst, f.src, 6, 80, 1000};
  EXPECT_EQ(flowHash(f, 1), flowHash(back, 1)) << "both directions hash alike";
  std::set<uint32_t> seen{flowHash(f, 1)};
  Flow g = f;
  g.proto = 17;
  seen.insert(flowHash(g, 1));
  g = f;
  g.sport = 1001;
  seen.insert(flowHash(g, 1));
  g = f;
  g.dst = *IpAddr::parse("2001:db8::3");
  seen.insert(flowHash(g, 1));
  seen.insert(flowHash(f, 2));
  EXPECT_EQ(seen.size(), 5u) << "protocol, ports, addresses and seed each change it";
}

TEST_F(EcmpTest, AnUnresolvedPathPuntsOnlyItsOwnFlows) {
  m_.removeNeighbour(ip("10.2.0.2"), 3);
  int punted = 0, forwarded = 0;
  for (uint16_t port = 1; port <= 1000; ++port) {
    auto d = m_.resolve(flowTo("198.51.100.9", port), kSeed);
    if (d) {
      ++forwarded;
      EXPECT_NE(d->dst, mac("bb:00:00:00:00:02"));
    } else {
      ++punted;
      EXPECT_EQ(d.error(), Punt::kUnresolved);
    }
  }
  EXPECT_GT(punted, 100);
  EXPECT_GT(forwarded, 600);
  m_.removeNeighbour(ip("10.2.0.1"), 3);
  m_.removeNeighbour(ip("10.1.0.3"), 2);
  auto fib = m_.compile();
  ASSERT_EQ(fib.size(), 1u);
  EXPECT_EQ(fib[0].action.punt(), Punt::kUnresolved) << "no path resolved: the whole route";
}

TEST_F(EcmpTest, APathThroughANonPortLeavesTheRouteToTheKernel) {
  m_.setRoute({prefix("198.51.100.0/24"), {{ip("10.2.0.1"), 3, 1}, {ip("192.168.0.1"), 9, 1}}});
  EXPECT_EQ(m_.resolve(flowTo("198.51.100.9"), kSeed).error(), Punt::kNotPort);
}

TEST_F(EcmpTest, RoutesTheFastPathCannotHoldAreNamedWithWhy) {
  EXPECT_TRUE(m_.unsupportedRoutes().empty());
  Route wide{prefix("192.0.2.0/24"), {}};
  for (int i = 0; i < 17; ++i)
    wide.paths.push_back({IpAddr::v4(0x0a020000u + static_cast<uint32_t>(i)), 3, 1});
  m_.setRoute(wide);
  m_.setRoute({prefix("192.0.3.0/24"), {{ip("10.2.0.1"), 3, 1}, {std::nullopt, 2, 1}}});
  auto u = m_.unsupportedRoutes();
  ASSERT_EQ(u.size(), 2u);
  EXPECT_EQ(u[0].first, prefix("192.0.2.0/24"));
  EXPECT_THAT(u[0].second, HasSubstr("17 paths, more than the 16"));
  EXPECT_THAT(u[1].second, HasSubstr("on-link"));
  EXPECT_EQ(m_.resolve(flowTo("192.0.2.1"), kSeed).error(), Punt::kNotPort);
}

// The longest-prefix match on a compiled table and the group's pick, as the fast paths do it.
Decision lookupCompiled(const Fib& fib, const Flow& flow) {
  const FibEntry* best = nullptr;
  for (const auto& e : fib) {
    if (e.prefix.contains(flow.dst) && (best == nullptr || e.prefix.length > best->prefix.length))
      best = &e;
  }
  if (best == nullptr) return std::unexpected(Punt::kNoRoute);
  if (!best->action.forwards()) return std::unexpected(best->action.punt());
  const GroupPath& p = best->action.group().pick(flowHash(flow, kSeed));
  if (!p.adjacency) return std::unexpected(Punt::kUnresolved);
  return *p.adjacency;
}

// On random models of both families, with multipath routes, the compiled table answers every
// flow exactly as resolve() does.
TEST(ModelProperty, CompiledTableAgreesWithResolve) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  for (int round = 0; round < 200; ++round) {
    bool v6 = round % 2 == 1;
    // A small address space (a /20's worth) so that random routes, neighbours and probes overlap.
    auto addr = [&] {
      uint32_t low = static_cast<uint32_t>(pick(4096));
      return v6 ? *IpAddr::parse(fmt::format("2001:db8::{:x}", low).c_str())
                : IpAddr::v4(0x0a000000u + low);
    };
    int bits = v6 ? 128 : 32;
    ForwardingModel m;
    for (int i = 1; i <= 3; ++i) {
      if (pick(4) != 0)
        m.setInterface(
            {i, "if" + std::to_string(i), MacAddress{{0xaa, 0, 0, 0, 0, static_cast<uint8_t>(i)}}});
    }
    for (int r = pick(12); r > 0; --r) {
      Prefix dst = Prefix::of(addr(), bits - 14 + pick(15));
      Route route{dst, {}};
      int paths = pick(3) == 0 ? 2 + pick(3) : 1;
      for (int p = 0; p < paths; ++p) {
        std::optional<IpAddr> gw;
        if (paths > 1 || pick(2) == 0) gw = addr();
        route.paths.push_back({gw, 1 + pick(3), static_cast<uint32_t>(1 + pick(3))});
      }
      if (pick(10) == 0) route = Route::reject(dst);
      m.setRoute(route);
    }
    for (int n = pick(30); n > 0; --n) {
      m.setNeighbour(
          {addr(), 1 + pick(3), MacAddress{{0xbb, 0, 0, 0, static_cast<uint8_t>(pick(256)), 1}}});
    }
    for (int l = pick(3); l > 0; --l) m.addLocal(addr());
    auto fib = m.compile();
    for (int probe = 0; probe < 300; ++probe) {
      Flow f{addr(), addr(), 17, static_cast<uint16_t>(pick(65536)), 53};
      ASSERT_EQ(lookupCompiled(fib, f), m.resolve(f, kSeed))
          << "round " << round << ", " << f.dst.str() << " port " << f.sport;
    }
  }
}

netlink::IpPrefix kp(const char* text) { return *netlink::IpPrefix::parse(text); }

netlink::RouteInfo routeInfo(const char* dst, std::optional<const char*> gw, int oif,
                             int type = RTN_UNICAST) {
  netlink::RouteInfo r;
  r.dst = kp(dst);
  if (gw) r.gateway = kp(*gw);
  r.oif = oif;
  r.table = RT_TABLE_MAIN;
  r.type = type;
  return r;
}

// A router namespace's tables: ports r1 (if 2, MTU 9000) and r2 (if 3), a management link eth0
// (if 4); IPv4 and IPv6.
KernelTables routerTables() {
  KernelTables t;
  auto link = [](int index, const char* name, const char* mac, int mtu = 1500) {
    netlink::LinkInfo l;
    l.ifindex = index;
    l.name = name;
    l.mac = mac;
    l.mtu = mtu;
    return l;
  };
  t.links = {link(1, "lo", "00:00:00:00:00:00", 65536), link(2, "r1", "aa:00:00:00:00:02", 9000),
             link(3, "r2", "aa:00:00:00:00:03"), link(4, "eth0", "aa:00:00:00:00:04")};
  auto route = [](const char* dst, std::optional<const char*> gw, int oif, int type = RTN_UNICAST) {
    return routeInfo(dst, gw, oif, type);
  };
  auto multipath = route("203.0.113.0/24", std::nullopt, 0);
  multipath.nexthops = {{kp("10.2.0.254"), 3, 1}, {kp("10.1.0.5"), 2, 3}};
  auto multipath6 = route("2001:db8:99::/48", std::nullopt, 0);
  multipath6.nexthops = {{kp("fe80::1"), 3, 1}, {kp("fe80::2"), 3, 1}};
  t.routes = {route("10.1.0.0/24", std::nullopt, 2),
              route("10.2.0.0/24", std::nullopt, 3),
              route("0.0.0.0/0", "10.2.0.254", 3),
              route("192.168.0.0/16", std::nullopt, 4),
              route("10.2.9.0/24", std::nullopt, 0, RTN_BLACKHOLE),
              route("10.2.8.0/24", std::nullopt, 0, RTN_PROHIBIT),
              multipath,
              route("2001:db8:1::/64", std::nullopt, 2),
              route("::/0", "fe80::1", 3),
              route("2001:db8:bad::/48", std::nullopt, 0, RTN_UNREACHABLE),
              multipath6};
  auto neigh = [](const char* ip, int ifindex, std::optional<const char*> mac, uint16_t state) {
    netlink::NeighbourInfo n;
    n.ifindex = ifindex;
    n.ip = kp(ip);
    if (mac) n.mac = *MacAddress::parse(*mac);
    n.state = state;
    return n;
  };
  t.neighbours = {neigh("10.2.0.254", 3, "bb:00:00:00:02:54", NUD_STALE),
                  neigh("10.1.0.5", 2, "bb:00:00:00:00:05", NUD_REACHABLE),
                  neigh("10.1.0.6", 2, std::nullopt, NUD_INCOMPLETE),
                  neigh("10.1.0.7", 2, "bb:00:00:00:00:07", NUD_FAILED),
                  neigh("fe80::1", 3, "bb:00:00:00:06:01", NUD_REACHABLE),
                  neigh("fe80::2", 3, "bb:00:00:00:06:02", NUD_DELAY),
                  neigh("2001:db8:1::7", 2, "bb:00:00:00:06:07", NUD_PERMANENT)};
  t.addresses = {{2, kp("10.1.0.1/24")}, {3, kp("10.2.0.1/24")},      {4, kp("192.168.1.10/16")},
                 {1, kp("127.0.0.1/8")}, {2, kp("2001:db8:1::1/64")}, {3, kp("fe80::aa:3/64")}};
  return t;
}

Decision resolveTo(const ForwardingModel& m, const char* dst, uint16_t sport = 1) {
  bool v6 = std::string_view(dst).find(':') != std::string_view::npos;
  return m.resolve({ip(v6 ? "2001:db8:1::7" : "10.1.0.5"), ip(dst), 17, sport, 53}, kSeed);
}

TEST(KernelModel, ForwardsOnlyWhatTheKernelWouldSendThroughAPort) {
  auto m = buildModel(routerTables(), {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(resolveTo(*m, "8.8.8.8")->dst, mac("bb:00:00:00:02:54")) << "STALE still has a MAC";
  EXPECT_EQ(resolveTo(*m, "10.1.0.5")->src, mac("aa:00:00:00:00:02"));
  EXPECT_EQ(resolveTo(*m, "10.1.0.5")->mtu, 9000) << "the port's MTU";
  EXPECT_EQ(resolveTo(*m, "10.1.0.6").error(), Punt::kUnresolved) << "incomplete";
  EXPECT_EQ(resolveTo(*m, "10.1.0.7").error(), Punt::kUnresolved) << "failed";
  EXPECT_EQ(resolveTo(*m, "192.168.7.7").error(), Punt::kNotPort)
      << "a route through a non-port link shadows the default route";
  EXPECT_EQ(resolveTo(*m, "10.2.9.1").error(), Punt::kReject) << "blackhole: the kernel drops it";
  EXPECT_EQ(resolveTo(*m, "10.2.8.1").error(), Punt::kReject) << "prohibit";
  EXPECT_EQ(resolveTo(*m, "192.168.1.10").error(), Punt::kLocal) << "any address of the namespace";
  EXPECT_EQ(resolveTo(*m, "10.2.0.1").error(), Punt::kLocal);
}

TEST(KernelModel, Ipv6RoutesNeighboursAndAddresses) {
  auto m = buildModel(routerTables(), {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(resolveTo(*m, "2001:db8:77::1")->dst, mac("bb:00:00:00:06:01"))
      << "default route via a link-local gateway";
  EXPECT_EQ(resolveTo(*m, "2001:db8:1::7")->dst, mac("bb:00:00:00:06:07"));
  EXPECT_EQ(resolveTo(*m, "2001:db8:1::1").error(), Punt::kLocal);
  EXPECT_EQ(resolveTo(*m, "fe80::aa:3").error(), Punt::kLocal);
  EXPECT_EQ(resolveTo(*m, "2001:db8:bad::1").error(), Punt::kReject);
}

TEST(KernelModel, MultipathRoutesBecomeGroupsWithTheKernelsWeights) {
  auto m = buildModel(routerTables(), {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  std::map<MacAddress, int> v4, v6;
  for (uint16_t port = 1; port <= 2000; ++port) {
    ++v4[resolveTo(*m, "203.0.113.9", port)->dst];
    ++v6[resolveTo(*m, "2001:db8:99::9", port)->dst];
  }
  // Weights 1 and 3 (rtnh_hops 0 and 2): a quarter and three quarters.
  EXPECT_NEAR(v4[mac("bb:00:00:00:02:54")], 500, 100);
  EXPECT_NEAR(v4[mac("bb:00:00:00:00:05")], 1500, 100);
  EXPECT_NEAR(v6[mac("bb:00:00:00:06:01")], 1000, 120);
  EXPECT_NEAR(v6[mac("bb:00:00:00:06:02")], 1000, 120);
}

// What a re-read of after's tables would install, and what applying events to before's model
// installs, are the same table.
bool sameTable(const ForwardingModel& applied, const KernelTables& after) {
  auto reread = buildModel(after, {"r1", "r2"});
  if (!reread) return false;
  std::map<Prefix, Action> installed;
  for (const auto& e : applied.compile()) installed.emplace(e.prefix, e.action);
  return diffFib(installed, reread->compile()).stats.changed() == 0 &&
         installed.size() == reread->compile().size();
}

netlink::RouteEvent event(netlink::RouteInfo r, bool removed = false, bool replaced = false) {
  return {std::move(r), removed, replaced, false};
}

TEST(KernelModel, RouteNotificationsApplyAsAReReadWould) {
  KernelTables t = routerTables();
  auto m = buildModel(t, {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  auto shared = sharedPrefixes(t);
  EXPECT_TRUE(shared.empty());

  // The default route moves to r1's neighbour (a replace), a new route comes, another goes.
  std::vector<netlink::RouteEvent> events = {
      event(routeInfo("0.0.0.0/0", "10.1.0.5", 2), false, true),
      event(routeInfo("198.51.100.0/24", "10.2.0.254", 3)),
      event(routeInfo("10.2.9.0/24", std::nullopt, 0, RTN_BLACKHOLE), true),
      event(routeInfo("2001:db8:5::/48", "fe80::1", 3))};
  ASSERT_TRUE(applyRouteEvents(*m, shared, events));
  t.routes[2] = routeInfo("0.0.0.0/0", "10.1.0.5", 2);
  t.routes.push_back(routeInfo("198.51.100.0/24", "10.2.0.254", 3));
  std::erase_if(t.routes, [](const auto& r) { return r.type == RTN_BLACKHOLE; });
  t.routes.push_back(routeInfo("2001:db8:5::/48", "fe80::1", 3));
  EXPECT_TRUE(sameTable(*m, t));
  EXPECT_EQ(resolveTo(*m, "8.8.8.8")->dst, mac("bb:00:00:00:00:05"));
  EXPECT_EQ(resolveTo(*m, "10.2.9.1")->dst, mac("bb:00:00:00:00:05"))
      << "the blackhole is gone: the default route carries it";

  // What the model does not keep is skipped: other tables, cache entries.
  auto local = routeInfo("10.9.0.0/24", "10.2.0.254", 3);
  local.table = RT_TABLE_LOCAL;
  auto cached = event(routeInfo("2001:db8:1::9/128", "fe80::1", 3));
  cached.cloned = true;
  ASSERT_TRUE(applyRouteEvents(*m, shared, {event(local), cached}));
  EXPECT_TRUE(sameTable(*m, t));
}

TEST(KernelModel, NeighbourNotificationsApplyAsAReReadWould) {
  KernelTables t = routerTables();
  auto m = buildModel(t, {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  auto n = [](const char* ip, int ifindex, std::optional<const char*> mac, uint16_t state,
              bool removed = false) {
    netlink::NeighbourEvent e;
    e.neighbour.ifindex = ifindex;
    e.neighbour.ip = kp(ip);
    if (mac) e.neighbour.mac = *MacAddress::parse(*mac);
    e.neighbour.state = state;
    e.removed = removed;
    return e;
  };
  applyNeighbourEvents(*m, {n("10.2.0.254", 3, "bb:00:00:00:02:54", NUD_FAILED),
                            n("10.1.0.6", 2, "bb:00:00:00:00:06", NUD_REACHABLE),
                            n("10.1.0.5", 2, "bb:00:00:00:00:05", NUD_REACHABLE, true)});
  t.neighbours[0].state = NUD_FAILED;
  t.neighbours[2] = t.neighbours[1];
  t.neighbours[2].ip = kp("10.1.0.6");
  t.neighbours[2].mac = *MacAddress::parse("bb:00:00:00:00:06");
  t.neighbours.erase(t.neighbours.begin() + 1);
  EXPECT_TRUE(sameTable(*m, t));
  EXPECT_EQ(resolveTo(*m, "8.8.8.8").error(), Punt::kUnresolved) << "the gateway failed";
  EXPECT_EQ(resolveTo(*m, "10.1.0.6")->dst, mac("bb:00:00:00:00:06"));
  EXPECT_EQ(resolveTo(*m, "10.1.0.5").error(), Punt::kUnresolved) << "deleted";
}

TEST(KernelModel, RouteNotificationsThatOnlyAReReadCanApplyAreRefused) {
  KernelTables t = routerTables();
  // Two routes for one prefix (other metrics): the kernel picks.
  t.routes.push_back(routeInfo("10.2.0.0/24", std::nullopt, 2));
  auto shared = sharedPrefixes(t);
  EXPECT_EQ(shared, std::set<Prefix>{*Prefix::parse("10.2.0.0/24")});
  auto m = buildModel(t, {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_FALSE(
      applyRouteEvents(*m, shared, {event(routeInfo("10.2.0.0/24", std::nullopt, 2), true)}))
      << "one of two routes of a prefix goes";
  EXPECT_FALSE(applyRouteEvents(*m, shared, {event(routeInfo("0.0.0.0/0", "10.1.0.5", 2))}))
      << "a second route for a prefix the model has (no NLM_F_REPLACE)";
  auto mp6 = routeInfo("2001:db8:7::/48", std::nullopt, 0);
  mp6.nexthops = {{kp("fe80::1"), 3, 1}, {kp("fe80::2"), 3, 1}};
  EXPECT_FALSE(applyRouteEvents(*m, shared, {event(mp6)})) << "IPv6 multipath";
  EXPECT_FALSE(
      applyRouteEvents(*m, shared, {event(routeInfo("2001:db8:99::/48", "fe80::1", 3), true)}))
      << "one path of an IPv6 multipath route may go alone";
  EXPECT_TRUE(applyRouteEvents(*m, shared,
                               {event(routeInfo("203.0.113.0/24", "10.2.0.254", 3), false, true)}))
      << "IPv4 multipath notifications carry every path: a replace applies";
}

TEST(KernelModel, NamesAMissingPort) {
  auto m = buildModel(routerTables(), {"r1", "ens9"});
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message(), HasSubstr("port ens9: no such link"));
  auto lo = buildModel(routerTables(), {"lo"});
  ASSERT_TRUE(lo) << "lo's all-zero address still parses";
}

// classifyFrame sums the IPv4 header in 32-bit words and tests addresses with wide loads: against
// the byte-by-byte reading of RFC 1071 and of the special ranges, over random headers (right and
// wrong checksums, both zeros of one's complement) and over addresses near every range's edge.
TEST(ClassifyFrame, AgreesWithTheByteWiseChecksumAndRanges) {
  std::mt19937 rng(7);
  MacAddress port = mac("aa:00:00:00:00:01");
  auto byteSum = [](const uint8_t* p) {
    uint32_t sum = 0;
    for (int i = 0; i < 20; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
  };
  auto special4 = [](const uint8_t* a) {
    return a[0] == 0 || a[0] == 127 || (a[0] >= 224 && a[0] <= 239) ||
           (a[0] == 255 && a[1] == 255 && a[2] == 255 && a[3] == 255);
  };
  const uint8_t edges[] = {0, 1, 126, 127, 128, 223, 224, 239, 240, 254, 255};
  int checked = 0, good = 0;
  for (int round = 0; round < 200000; ++round) {
    std::vector<uint8_t> f(64);
    for (auto& b : f) b = static_cast<uint8_t>(rng());
    std::copy(port.bytes.begin(), port.bytes.end(), f.begin());
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t* ip = f.data() + 14;
    ip[0] = 0x45;
    ip[2] = 0;
    ip[3] = 40;
    ip[8] = static_cast<uint8_t>(2 + rng() % 250);
    for (int a : {12, 16}) {
      if (rng() % 2) ip[a] = edges[rng() % std::size(edges)];
      if (rng() % 8 == 0) std::fill(ip + a, ip + a + 4, 255);
    }
    ip[10] = ip[11] = 0;
    uint16_t right = static_cast<uint16_t>(~byteSum(ip));
    switch (rng() % 4) {
      case 0:
        right = static_cast<uint16_t>(right + 1 + rng() % 0xfffe);
        break;  // wrong
      case 1:
        break;
      default:
        // One's complement has two zeros: 0x0000 and 0xffff stand for each other in a sum.
        if (right == 0)
          right = 0xffff;
        else if (right == 0xffff)
          right = 0;
    }
    ip[10] = static_cast<uint8_t>(right >> 8);
    ip[11] = static_cast<uint8_t>(right);
    bool sumOk = byteSum(ip) == 0xffff;
    uint64_t FastPathCounters::*want = !sumOk ? &FastPathCounters::puntMalformed
                                       : special4(ip + 12) || special4(ip + 16)
                                           ? &FastPathCounters::puntSpecial
                                           : nullptr;
    FrameClass c = classifyFrame(f.data(), f.size(), port);
    ASSERT_EQ(c.punt, want) << "round " << round << ": checksum " << right << ", "
                            << IpAddr::fromBytes(Family::kIpv4, ip + 12).str() << " -> "
                            << IpAddr::fromBytes(Family::kIpv4, ip + 16).str();
    ++checked;
    if (want == nullptr) {
      ++good;
      EXPECT_EQ(c.dst, ip + 16);
      EXPECT_TRUE(c.v4);
      EXPECT_EQ(c.l3Length, 40u);
    }
  }
  EXPECT_GT(good, checked / 10) << "the rounds must reach the accepted case too";
}

TEST(ClassifyFrame, Ipv6SpecialRangesByteForByte) {
  MacAddress port = mac("aa:00:00:00:00:01");
  auto verdict = [&](const char* src, const char* dst) {
    std::vector<uint8_t> f(14 + 40 + 8, 0);
    std::copy(port.bytes.begin(), port.bytes.end(), f.begin());
    f[12] = 0x86;
    f[13] = 0xdd;
    uint8_t* h = f.data() + 14;
    h[0] = 0x60;
    h[5] = 8;
    h[6] = 17;
    h[7] = 64;
    std::memcpy(h + 8, ip(src).bytes.data(), 16);
    std::memcpy(h + 24, ip(dst).bytes.data(), 16);
    return classifyFrame(f.data(), f.size(), port).punt;
  };
  uint64_t FastPathCounters::*special = &FastPathCounters::puntSpecial;
  for (const char* s : {"::", "::1", "::ffff:10.0.0.1", "fe80::1", "febf::1", "ff02::1"})
    EXPECT_EQ(verdict(s, "2001:db8::2"), special) << s;
  for (const char* s : {"::2", "::ff:0:1", "::1:ffff:0:1", "fec0::1", "fe7f::1", "2001:db8::1",
                        "::ffff:0:0:1", "0:0:0:1::1"})
    EXPECT_EQ(verdict(s, "2001:db8::2"), nullptr) << s;
}

}  // namespace
}  // namespace vfplane::dataplane
