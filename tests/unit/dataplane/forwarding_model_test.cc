#include "vfplane/dataplane/forwarding_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <random>

#include "vfplane/dataplane/kernel_model.h"

namespace vfplane::dataplane {
namespace {
using testing::HasSubstr;

Ipv4 ip(const char* text) { return *parseIpv4(text); }
Ipv4Prefix prefix(const char* text) { return *Ipv4Prefix::parse(text); }
MacAddress mac(const char* text) { return *MacAddress::parse(text); }

TEST(Ipv4Prefix, ParsesAndRejectsWithTheText) {
  EXPECT_EQ(prefix("10.1.0.0/16").str(), "10.1.0.0/16");
  EXPECT_EQ(prefix("10.1.0.7").length, 32);
  EXPECT_EQ(prefix("0.0.0.0/0").addr, 0u);
  EXPECT_TRUE(prefix("10.1.0.0/16").contains(ip("10.1.255.3")));
  EXPECT_FALSE(prefix("10.1.0.0/16").contains(ip("10.2.0.1")));
  EXPECT_TRUE(prefix("0.0.0.0/0").contains(ip("203.0.113.9")));
  auto hostBits = Ipv4Prefix::parse("10.1.0.5/16");
  ASSERT_FALSE(hostBits);
  EXPECT_THAT(hostBits.error().message(), HasSubstr("did you mean 10.1.0.0/16"));
  EXPECT_FALSE(Ipv4Prefix::parse("10.1.0.0/33"));
  EXPECT_FALSE(Ipv4Prefix::parse("10.1.0.0/"));
  EXPECT_FALSE(Ipv4Prefix::parse("fd00::/8"));
  EXPECT_EQ(ipv4Str(ip("192.0.2.255")), "192.0.2.255");
}

// A router with two legs: 10.1.0.1/24 on if 2 (aa:..:02), 10.2.0.1/24 on if 3 (aa:..:03), a
// default route via 10.2.0.254 and a more specific route via a gateway on the first leg.
class ModelTest : public testing::Test {
 protected:
  void SetUp() override {
    m_.setInterface({2, "r1", mac("aa:00:00:00:00:02")});
    m_.setInterface({3, "r2", mac("aa:00:00:00:00:03")});
    m_.setRoute({prefix("10.1.0.0/24"), std::nullopt, 2});
    m_.setRoute({prefix("10.2.0.0/24"), std::nullopt, 3});
    m_.setRoute({prefix("0.0.0.0/0"), ip("10.2.0.254"), 3});
    m_.setRoute({prefix("172.16.0.0/12"), ip("10.1.0.9"), 2});
    m_.addLocal(ip("10.1.0.1"));
    m_.addLocal(ip("10.2.0.1"));
  }
  ForwardingModel m_;
};

TEST_F(ModelTest, LongestPrefixWins) {
  EXPECT_EQ(m_.lookup(ip("10.1.0.50"))->dst, prefix("10.1.0.0/24"));
  EXPECT_EQ(m_.lookup(ip("172.20.1.1"))->dst, prefix("172.16.0.0/12"));
  EXPECT_EQ(m_.lookup(ip("8.8.8.8"))->dst, prefix("0.0.0.0/0"));
  m_.removeRoute(prefix("0.0.0.0/0"));
  EXPECT_EQ(m_.lookup(ip("8.8.8.8")), nullptr);
}

TEST_F(ModelTest, ResolvesThroughGatewayAndNeighbour) {
  EXPECT_EQ(m_.resolve(ip("8.8.8.8")).error(), Punt::kUnresolved) << "gateway MAC not known yet";
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  EXPECT_EQ(m_.resolve(ip("8.8.8.8")),
            (Action{Adjacency{3, mac("aa:00:00:00:00:03"), mac("bb:00:00:00:02:54")}}));
  EXPECT_EQ(m_.resolve(ip("10.1.0.1")).error(), Punt::kLocal);
  EXPECT_EQ(m_.resolve(ip("10.1.0.77")).error(), Punt::kUnresolved);
  m_.setNeighbour({ip("10.1.0.77"), 2, mac("bb:00:00:00:00:77")});
  EXPECT_EQ(m_.resolve(ip("10.1.0.77"))->dst, mac("bb:00:00:00:00:77"));
  m_.removeInterface(2);
  EXPECT_EQ(m_.resolve(ip("10.1.0.77")).error(), Punt::kNoInterface);
  m_.removeRoute(prefix("0.0.0.0/0"));
  EXPECT_EQ(m_.resolve(ip("8.8.8.8")).error(), Punt::kNoRoute);
}

TEST_F(ModelTest, CompileEmitsRoutesNeighboursAndLocals) {
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  m_.setNeighbour({ip("10.1.0.77"), 2, mac("bb:00:00:00:00:77")});
  auto fib = m_.compile();
  std::map<std::string, Action> byPrefix;
  for (const auto& e : fib) byPrefix[e.prefix.str()] = e.action;
  EXPECT_EQ(byPrefix.size(), 8u) << "4 routes, 2 neighbours, 2 local addresses";
  EXPECT_EQ(byPrefix.at("0.0.0.0/0")->ifindex, 3);
  EXPECT_EQ(byPrefix.at("172.16.0.0/12").error(), Punt::kUnresolved);
  EXPECT_EQ(byPrefix.at("10.1.0.0/24").error(), Punt::kUnresolved)
      << "unknown hosts go to the kernel";
  EXPECT_EQ(byPrefix.at("10.1.0.77/32")->dst, mac("bb:00:00:00:00:77"));
  EXPECT_EQ(byPrefix.at("10.2.0.254/32")->dst, mac("bb:00:00:00:02:54"));
  EXPECT_EQ(byPrefix.at("10.1.0.1/32").error(), Punt::kLocal);
  EXPECT_EQ(byPrefix.at("10.2.0.1/32").error(), Punt::kLocal);
  EXPECT_TRUE(std::is_sorted(fib.begin(), fib.end(), [](const FibEntry& a, const FibEntry& b) {
    return a.prefix < b.prefix;
  }));
}

TEST_F(ModelTest, NeighbourNeverShadowsAMoreSpecificGatewayRoute) {
  // 10.1.0.128/25 goes via a gateway even though 10.1.0.200 answers ARP on the connected leg.
  m_.setRoute({prefix("10.1.0.128/25"), ip("10.2.0.254"), 3});
  m_.setNeighbour({ip("10.1.0.200"), 2, mac("bb:00:00:00:02:00")});
  m_.setNeighbour({ip("10.2.0.254"), 3, mac("bb:00:00:00:02:54")});
  for (const auto& e : m_.compile()) EXPECT_NE(e.prefix, Ipv4Prefix::host(ip("10.1.0.200")));
  EXPECT_EQ(m_.resolve(ip("10.1.0.200"))->ifindex, 3);
}

// The longest-prefix match on a compiled table, as the fast paths do it.
Action lpm(const std::vector<FibEntry>& fib, Ipv4 addr) {
  const FibEntry* best = nullptr;
  for (const auto& e : fib) {
    if (e.prefix.contains(addr) && (best == nullptr || e.prefix.length > best->prefix.length))
      best = &e;
  }
  return best ? best->action : Action(std::unexpected(Punt::kNoRoute));
}

// On random models, the compiled table answers every address exactly as resolve() does.
TEST(ModelProperty, CompiledTableAgreesWithResolve) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  // A small address space (10.0.0.0/20) so that random routes, neighbours and probes overlap.
  auto addr = [&] { return ip("10.0.0.0") + static_cast<Ipv4>(pick(4096)); };
  for (int round = 0; round < 200; ++round) {
    ForwardingModel m;
    for (int i = 1; i <= 3; ++i) {
      if (pick(4) != 0)
        m.setInterface(
            {i, "if" + std::to_string(i), MacAddress{{0xaa, 0, 0, 0, 0, static_cast<uint8_t>(i)}}});
    }
    for (int r = pick(12); r > 0; --r) {
      int len = 18 + pick(15);
      Ipv4 a = addr() & (len == 0 ? 0 : ~Ipv4{0} << (32 - len));
      std::optional<Ipv4> gw;
      if (pick(2) == 0) gw = addr();
      m.setRoute({Ipv4Prefix{a, len}, gw, 1 + pick(3)});
    }
    for (int n = pick(30); n > 0; --n) {
      m.setNeighbour(
          {addr(), 1 + pick(3), MacAddress{{0xbb, 0, 0, 0, static_cast<uint8_t>(pick(256)), 1}}});
    }
    for (int l = pick(3); l > 0; --l) m.addLocal(addr());
    auto fib = m.compile();
    for (int probe = 0; probe < 300; ++probe) {
      Ipv4 a = addr();
      ASSERT_EQ(lpm(fib, a), m.resolve(a)) << "round " << round << ", " << ipv4Str(a);
    }
  }
}

netlink::IpPrefix kp(const char* text) { return *netlink::IpPrefix::parse(text); }

// A router namespace's tables: ports r1 (if 2) and r2 (if 3), a management link eth0 (if 4).
KernelTables routerTables() {
  KernelTables t;
  auto link = [](int index, const char* name, const char* mac) {
    netlink::LinkInfo l;
    l.ifindex = index;
    l.name = name;
    l.mac = mac;
    return l;
  };
  t.links = {link(1, "lo", "00:00:00:00:00:00"), link(2, "r1", "aa:00:00:00:00:02"),
             link(3, "r2", "aa:00:00:00:00:03"), link(4, "eth0", "aa:00:00:00:00:04")};
  auto route = [](const char* dst, std::optional<const char*> gw, int oif, int type = RTN_UNICAST) {
    netlink::RouteInfo r;
    r.dst = kp(dst);
    if (gw) r.gateway = kp(*gw);
    r.oif = oif;
    r.table = RT_TABLE_MAIN;
    r.type = type;
    return r;
  };
  t.routes = {route("10.1.0.0/24", std::nullopt, 2), route("10.2.0.0/24", std::nullopt, 3),
              route("0.0.0.0/0", "10.2.0.254", 3), route("192.168.0.0/16", std::nullopt, 4),
              route("10.2.9.0/24", std::nullopt, 0, RTN_BLACKHOLE)};
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
                  neigh("10.1.0.7", 2, "bb:00:00:00:00:07", NUD_FAILED)};
  t.addresses = {{2, kp("10.1.0.1/24")},
                 {3, kp("10.2.0.1/24")},
                 {4, kp("192.168.1.10/16")},
                 {1, kp("127.0.0.1/8")},
                 {2, kp("fd00::1/64")}};
  return t;
}

TEST(KernelModel, ForwardsOnlyWhatTheKernelWouldSendThroughAPort) {
  auto m = buildModel(routerTables(), {"r1", "r2"});
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->resolve(ip("8.8.8.8"))->dst, mac("bb:00:00:00:02:54")) << "STALE still has a MAC";
  EXPECT_EQ(m->resolve(ip("10.1.0.5"))->src, mac("aa:00:00:00:00:02"));
  EXPECT_EQ(m->resolve(ip("10.1.0.6")).error(), Punt::kUnresolved) << "incomplete";
  EXPECT_EQ(m->resolve(ip("10.1.0.7")).error(), Punt::kUnresolved) << "failed";
  EXPECT_EQ(m->resolve(ip("192.168.7.7")).error(), Punt::kNoInterface)
      << "a route through a non-port link shadows the default route";
  EXPECT_EQ(m->resolve(ip("10.2.9.1")).error(), Punt::kNoInterface)
      << "blackhole: the kernel drops it";
  EXPECT_EQ(m->resolve(ip("192.168.1.10")).error(), Punt::kLocal) << "any address of the namespace";
  EXPECT_EQ(m->resolve(ip("10.2.0.1")).error(), Punt::kLocal);
}

TEST(KernelModel, NamesAMissingPort) {
  auto m = buildModel(routerTables(), {"r1", "ens9"});
  ASSERT_FALSE(m);
  EXPECT_THAT(m.error().message(), HasSubstr("port ens9: no such link"));
  auto lo = buildModel(routerTables(), {"lo"});
  ASSERT_TRUE(lo) << "lo's all-zero address still parses";
}

}  // namespace
}  // namespace vfplane::dataplane
