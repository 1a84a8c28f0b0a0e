// The XDP router program through BPF_PROG_TEST_RUN: each case builds a frame, runs the loaded
// program on it and checks the verdict and the bytes that come out. Root only: the binary moves
// into a throwaway network namespace and skips, saying why, where BPF or namespaces are missing.
#include "vfplane/dataplane/xdp_router.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <iterator>
#include <random>
#include <set>

#include "fastpath_cases.h"
#include "test_support.h"

namespace vfplane::dataplane {
namespace {
using test::Frame;
using test::frameTo;
using test::ipOf;
using test::macOf;
using test::prefixOf;

class XdpRouterTest : public testing::Test, public test::FastPathRunner {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) {
      skip_ = "needs root to load BPF programs";
    } else if (auto why = test::enterFreshNetns()) {
      skip_ = "needs a network namespace: " + *why;
    }
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    auto router = XdpRouter::load({.maxEntries = 1024, .hashSeed = test::kHashSeed});
    if (!router) GTEST_SKIP() << "cannot load BPF here: " << router.error().message();
    router_.emplace(std::move(*router));
    // lo (ifindex 1) is the only device of the fresh namespace; the devmap wants a real one.
    model_ = test::fastPathModel(1);
    ASSERT_TRUE(router_->setPort(1, test::portMac()));
    ASSERT_TRUE(router_->install(model_.compile()));
  }

  // BPF_PROG_TEST_RUN: the frame out, and whether the program redirected it.
  test::Outcome run(const std::vector<uint8_t>& in) override { return runOn(in, 0).first; }

  // The same as if the frame came in on ingress (0: the kernel's default, lo), with the verdict.
  std::pair<test::Outcome, __u32> runOn(const std::vector<uint8_t>& in, __u32 ingress) {
    test::Outcome o;
    o.bytes.resize(in.size() + 256);
    xdp_md ctx{};
    ctx.data_end = static_cast<__u32>(in.size());
    ctx.ingress_ifindex = ingress;
    bpf_test_run_opts opts{};
    opts.sz = sizeof opts;
    opts.data_in = in.data();
    opts.data_size_in = static_cast<__u32>(in.size());
    opts.data_out = o.bytes.data();
    opts.data_size_out = static_cast<__u32>(o.bytes.size());
    if (ingress != 0) {
      opts.ctx_in = &ctx;
      opts.ctx_size_in = sizeof ctx;
    }
    opts.repeat = 1;
    int rc = bpf_prog_test_run_opts(router_->routerFd(), &opts);
    EXPECT_EQ(rc, 0) << "BPF_PROG_TEST_RUN: " << std::strerror(errno);
    EXPECT_TRUE(opts.retval == XDP_REDIRECT || opts.retval == XDP_PASS) << opts.retval;
    o.forwarded = opts.retval == XDP_REDIRECT;
    o.bytes.resize(opts.data_size_out);
    return {o, opts.retval};
  }
  FastPathCounters counters() override {
    auto c = router_->counters();
    EXPECT_TRUE(c) << c.error().message();
    return c.value_or(FastPathCounters{});
  }

  static inline std::string skip_;
  std::optional<XdpRouter> router_;
  dataplane::ForwardingModel model_;
};

TEST_F(XdpRouterTest, EverySharedCaseAsTheModelSays) {
  for (const auto& c : test::sharedCases()) {
    if (c.truncate > 0 && c.truncate < 14) {
      // The kernel refuses to run XDP on less than an Ethernet header (EINVAL), so no such frame
      // ever reaches the program; the DPDK suite runs this case.
      continue;
    }
    test::checkCase(*this, model_, c);
  }
  EXPECT_EQ(test::ecmpMacs(model_, "203.0.113.9").size(), 3u) << "the flows use every path";
  EXPECT_EQ(test::ecmpMacs(model_, "2001:db8:e::9").size(), 2u);
}

TEST_F(XdpRouterTest, IncrementalChecksumMatchesARecomputationForAnyHeader) {
  std::mt19937 rng(11);
  for (int i = 0; i < 500; ++i) {
    Frame f = frameTo("10.1.0.7");
    f.ttl = static_cast<uint8_t>(2 + rng() % 254);
    f.id = static_cast<uint16_t>(rng());
    f.saddr = IpAddr::v4(0x0b000000u | (rng() & 0x00ffffffu));
    auto v = run(f.bytes());
    ASSERT_TRUE(v.forwarded);
    ASSERT_EQ(test::ipChecksum(v.bytes.data() + 14, 20), 0)
        << "ttl " << int(f.ttl) << " id " << f.id;
    ASSERT_EQ(v.bytes[14 + 8], f.ttl - 1);
  }
}

TEST_F(XdpRouterTest, PortCountersCountReceivedForwardedAndSent) {
  ASSERT_TRUE(run(frameTo("10.1.0.7").bytes()).forwarded);
  ASSERT_FALSE(run(frameTo("10.1.0.1").bytes()).forwarded);
  auto ports = router_->portCounters();
  ASSERT_TRUE(ports) << ports.error().message();
  ASSERT_EQ(ports->size(), 1u);
  EXPECT_EQ((*ports)[0].name, "ifindex 1") << "setPort() alone gives no name";
  EXPECT_EQ((*ports)[0].rx, 2u);
  EXPECT_EQ((*ports)[0].forwarded, 1u);
  EXPECT_EQ((*ports)[0].tx, 1u) << "the one egress port is the ingress one here";
}

// Ports are found by indexing an array below ifindex VFP_PORT_DIRECT and by hash from there up:
// a veth made with ifindex 70000 routes like lo does, and an ifindex of neither kind is no port.
TEST_F(XdpRouterTest, APortAboveTheDirectRangeIsFoundByHash) {
  static_assert(VFP_PORT_DIRECT < 70000);
  auto made = test::run({"ip", "link", "add", "vfphigh", "index", "70000", "type", "veth", "peer",
                         "name", "vfphigh-p", "index", "70001"});
  ASSERT_EQ(made.exitCode, 0) << made.err;
  auto router = XdpRouter::load({.maxEntries = 1024, .hashSeed = test::kHashSeed});
  ASSERT_TRUE(router) << router.error().message();
  router_.emplace(std::move(*router));
  model_ = test::fastPathModel(70000);
  ASSERT_TRUE(router_->setPort(70000, test::portMac()));
  ASSERT_TRUE(router_->install(model_.compile()));
  std::vector<uint8_t> frame = frameTo("10.1.0.7").bytes();
  EXPECT_EQ(runOn(frame, 70000).second, XDP_REDIRECT) << "the port found by hash forwards";
  auto before = router_->counters();
  ASSERT_TRUE(before);
  EXPECT_EQ(runOn(frame, 70001).second, XDP_PASS) << "its peer is no port";
  EXPECT_EQ(runOn(frame, 1).second, XDP_PASS) << "lo, below the range, is no port either";
  auto after = router_->counters();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->puntOtherHost - before->puntOtherHost, 2u);
  test::run({"ip", "link", "del", "vfphigh"});
}

// 1,000,000 IPv4 routes in DIR-24-8 and 100,000 IPv6 in the LPM trie (--max-routes 1100000): every
// sampled destination goes to its own route's next hop.
TEST_F(XdpRouterTest, HoldsAMillionIpv4AndAHundredThousandIpv6Routes) {
  auto big = XdpRouter::load({.maxEntries = 1'100'000, .hashSeed = test::kHashSeed});
  ASSERT_TRUE(big) << big.error().message();
  router_.emplace(std::move(*big));
  ASSERT_TRUE(router_->setPort(1, test::portMac()));
  auto table = test::bigTable(1, 1'000'000, 100'000);
  auto ok = router_->install(table.fib);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->added, 1'100'000u);
  size_t checked = 0;
  for (const auto& [dst, mac] : table.samples) {
    auto v = run(frameTo(dst.str().c_str()).bytes());
    ASSERT_TRUE(v.forwarded) << dst.str();
    ASSERT_TRUE(std::equal(mac.bytes.begin(), mac.bytes.end(), v.bytes.begin())) << dst.str();
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
}

TEST_F(XdpRouterTest, OnlyDeclaredPortsRoute) {
  ASSERT_TRUE(router_->setPort(1, macOf("aa:00:00:00:00:99")));
  auto in = frameTo("10.1.0.7").bytes();
  auto v = run(in);
  EXPECT_FALSE(v.forwarded) << "the frame is for aa:..:01, the port is now aa:..:99";
  EXPECT_EQ(v.bytes, in);
}

TEST_F(XdpRouterTest, NoRouteIsPunted) {
  model_.removeRoute(prefixOf("0.0.0.0/0"));
  model_.removeRoute(prefixOf("::/0"));
  auto stats = router_->install(model_.compile());
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->removed, 2u);
  EXPECT_FALSE(run(frameTo("198.51.100.20").bytes()).forwarded);
  EXPECT_FALSE(run(frameTo("2001:db8:99::1").bytes()).forwarded);
  EXPECT_EQ(router_->counters()->puntNoRoute, 2u);
}

TEST_F(XdpRouterTest, InstallWritesOnlyWhatChanged) {
  EXPECT_EQ(router_->installedEntries(), model_.compile().size());
  auto same = router_->install(model_.compile());
  ASSERT_TRUE(same);
  EXPECT_EQ(same->changed(), 0u);
  EXPECT_EQ(same->unchanged, model_.compile().size());

  // The gateway moves: one entry changes, and traffic follows at once.
  model_.setNeighbour({ipOf("10.1.0.254"), 1, macOf("bb:00:00:00:0f:ff")});
  model_.removeNeighbour(ipOf("10.1.0.7"), 1);
  auto changed = router_->install(model_.compile());
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->updated, 2u) << "the default route and 10.1.0.254/32";
  EXPECT_EQ(changed->removed, 1u) << "10.1.0.7/32";
  auto v = run(frameTo("198.51.100.20").bytes());
  EXPECT_TRUE(
      std::equal(v.bytes.begin(), v.bytes.begin() + 6, macOf("bb:00:00:00:0f:ff").bytes.begin()));
  EXPECT_FALSE(run(frameTo("10.1.0.7").bytes()).forwarded) << "back to the kernel for ARP";
}

// A group changes (a path's neighbour moves): the new group is written under a new id before the
// route points at it, and the old id leaves the set in use, its bytes kept for a packet that read
// the old route; routes over it follow at once.
TEST_F(XdpRouterTest, AChangedGroupReplacesTheOldOneWithoutAGap) {
  auto groupsInFib = [&] {
    std::set<NextHopGroup> g;
    for (const auto& e : model_.compile()) {
      if (e.action.forwards()) g.insert(e.action.group());
    }
    return g.size();
  };
  auto pathsOf = [&](uint32_t id) {
    vfp_group g{};
    EXPECT_EQ(bpf_map_lookup_elem(router_->groupsFd(), &id, &g), 0) << "group " << id;
    return g.paths;
  };
  std::set<uint32_t> before = router_->groupIdsInUse();
  EXPECT_EQ(before.size(), groupsInFib());
  for (uint32_t id : before) EXPECT_GT(pathsOf(id), 0u) << "group " << id << " is written";
  model_.setNeighbour({ipOf("10.1.0.13"), 1, macOf("bb:00:00:00:01:13")});
  auto changed = router_->install(model_.compile());
  ASSERT_TRUE(changed);
  EXPECT_EQ(changed->updated, 2u) << "203.0.113.0/24 and 10.1.0.13/32";
  for (const auto& c : test::sharedCases()) {
    if (c.what.starts_with("IPv4 ECMP flow")) test::checkCase(*this, model_, c);
  }
  std::set<uint32_t> after = router_->groupIdsInUse();
  EXPECT_EQ(after.size(), groupsInFib()) << "the old group is no longer in use";
  std::vector<uint32_t> gone, added;
  std::ranges::set_difference(before, after, std::back_inserter(gone));
  std::ranges::set_difference(after, before, std::back_inserter(added));
  ASSERT_FALSE(gone.empty());
  ASSERT_EQ(added.size(), gone.size()) << "each changed group under a new id";
  for (uint32_t id : gone)
    EXPECT_GT(pathsOf(id), 0u) << "a freed group keeps its bytes for readers of the old route";
}

// Fresh ids first, up to the array's end; then freed ids in the order they were freed, so an id
// comes back as late as it can (and never before the loader's reuse delay, which this test does
// not time).
TEST_F(XdpRouterTest, GroupIdsAreFreshFirstThenReusedOldestFirst) {
  // 4096 ids (the least the loader makes): ids 1 to 4095. Each round gives the ECMP routes a new
  // neighbour MAC, so a new group, and lets the old one go.
  std::set<uint32_t> inUse = router_->groupIdsInUse();
  std::deque<uint32_t> freed;
  uint32_t highest = *inUse.rbegin();
  int reused = 0;
  for (int round = 0; round < 4200; ++round) {
    model_.setNeighbour(
        {ipOf("10.1.0.13"), 1,
         macOf(fmt::format("bb:00:00:00:{:02x}:{:02x}", round >> 8, round & 0xff).c_str())});
    auto changed = router_->install(model_.compile());
    ASSERT_TRUE(changed) << "round " << round << ": " << changed.error().message();
    std::set<uint32_t> now = router_->groupIdsInUse();
    std::vector<uint32_t> gone, added;
    std::ranges::set_difference(inUse, now, std::back_inserter(gone));
    std::ranges::set_difference(now, inUse, std::back_inserter(added));
    ASSERT_FALSE(added.empty()) << "round " << round;
    std::set<uint32_t> want;
    for (size_t i = 0; i < added.size(); ++i) {
      if (highest < 4095) {
        want.insert(++highest);  // a fresh id
      } else {
        ASSERT_FALSE(freed.empty()) << "round " << round;
        want.insert(freed.front());  // the longest freed
        freed.pop_front();
        ++reused;
      }
    }
    EXPECT_EQ(std::set<uint32_t>(added.begin(), added.end()), want) << "round " << round;
    for (uint32_t id : gone) freed.push_back(id);
    inUse = now;
  }
  EXPECT_GT(reused, 100) << "the rounds must run past the fresh ids";
  for (const auto& c : test::sharedCases()) {
    if (c.what.starts_with("IPv4 ECMP flow")) test::checkCase(*this, model_, c);
  }
}

}  // namespace
}  // namespace vfplane::dataplane
