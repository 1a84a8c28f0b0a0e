// The router loop, whatever the fast path: it gives the fast path the ports with the ifindex and
// MAC the kernel has, installs what the kernel's tables compile to, and follows the kernel through
// rtnetlink notifications. Driven against a fake fast path in a throwaway network namespace, so
// it needs no BPF or DPDK.
#include "vfplane/dataplane/router_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "test_support.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {
namespace {
using namespace std::chrono_literals;
using test::run;
using testing::HasSubstr;

class FakeFastPath final : public FastPath {
 public:
  const char* name() const override { return "fake"; }
  Result<void> addPort(const Port& port) override {
    std::lock_guard lock(mu_);
    ports_.push_back(port);
    if (port.name == refuse_) return fail("port " + port.name + ": refused by the fake", EBUSY);
    return {};
  }
  Result<InstallStats> install(const Fib& fib) override {
    std::lock_guard lock(mu_);
    FibDiff diff = diffFib(table_, fib);
    table_.clear();
    for (const auto& e : fib) table_.emplace(e.prefix, e.action);
    ++installs_;
    changed_.notify_all();
    return diff.stats;
  }
  Result<FastPathCounters> counters() const override {
    return FastPathCounters{.rx = 5, .forwarded = 3};
  }
  Result<std::vector<PortCounters>> portCounters() const override {
    return std::vector<PortCounters>{{"r1", 5, 3, 3}};
  }
  size_t installedEntries() const override {
    std::lock_guard lock(mu_);
    return table_.size();
  }

  // Waits (bounded) until pred holds for the installed table.
  bool waitFor(const std::function<bool(const std::map<Prefix, Action>&)>& pred) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, 10s, [&] { return pred(table_); });
  }
  std::vector<Port> ports() const {
    std::lock_guard lock(mu_);
    return ports_;
  }
  int installs() const {
    std::lock_guard lock(mu_);
    return installs_;
  }
  void refuse(std::string name) { refuse_ = std::move(name); }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<Prefix, Action> table_;
  std::vector<Port> ports_;
  int installs_ = 0;
  std::string refuse_;
};

class RouterLoopTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto why = test::enterFreshNetns()) skip_ = *why;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "needs a network namespace: " << skip_;
    // One port r1 on 10.5.0.0/24, its far end x1 in the same namespace.
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"ip", "link", "add", "r1", "type", "veth", "peer", "name", "x1"},
             {"ip", "addr", "add", "10.5.0.1/24", "dev", "r1"},
             {"ip", "link", "set", "r1", "up"},
             {"ip", "link", "set", "x1", "up"}}) {
      auto r = run(cmd);
      ASSERT_EQ(r.exitCode, 0) << r.err;
    }
  }
  void TearDown() override {
    if (skip_.empty()) (void)run({"ip", "link", "del", "r1"});
  }
  static netlink::LinkInfo link(const std::string& name) {
    auto rtnl = netlink::Rtnl::open();
    auto l = rtnl->link(name);
    return l && *l ? **l : netlink::LinkInfo{};
  }
  static bool has(const std::map<Prefix, Action>& t, const char* prefix) {
    return t.contains(*Prefix::parse(prefix));
  }

  static inline std::string skip_;
  FakeFastPath fast_;
};

TEST_F(RouterLoopTest, StartGivesThePortsAndTheKernelsTable) {
  auto loop = RouterLoop::start({.ports = {"r1"}}, fast_);
  ASSERT_TRUE(loop) << loop.error().message();
  auto r1 = link("r1");
  ASSERT_EQ(fast_.ports().size(), 1u);
  EXPECT_EQ(fast_.ports()[0].ifindex, r1.ifindex);
  EXPECT_EQ(fast_.ports()[0].name, "r1");
  EXPECT_EQ(fast_.ports()[0].mac.str(), r1.mac);
  EXPECT_TRUE(fast_.waitFor([](const auto& t) {
    return has(t, "10.5.0.0/24") && has(t, "10.5.0.1/32");
  })) << "the connected subnet and the router's own address, both for the kernel";
  EXPECT_EQ((*loop)->status().syncs, 1u);
  EXPECT_EQ((*loop)->status().entries, fast_.installedEntries());
  EXPECT_EQ((*loop)->counters()->forwarded, 3u) << "the fast path's own counters";
}

TEST_F(RouterLoopTest, FollowsTheKernelThroughNotificationsAlone) {
  // An hour between resyncs: whatever reaches the fast path came by rtnetlink notification.
  auto loop = RouterLoop::start({.ports = {"r1"}, .resyncInterval = 1h, .debounce = 20ms}, fast_);
  ASSERT_TRUE(loop) << loop.error().message();
  std::thread t([&] { (*loop)->run(); });
  ASSERT_EQ(run({"ip", "route", "add", "10.6.0.0/16", "via", "10.5.0.9"}).exitCode, 0);
  EXPECT_TRUE(fast_.waitFor([](const auto& t) {
    auto it = t.find(*Prefix::parse("10.6.0.0/16"));
    return it != t.end() && !it->second.forwards();
  })) << "a new route, punted while its gateway is unresolved";
  ASSERT_EQ(
      run({"ip", "neigh", "add", "10.5.0.9", "lladdr", "02:00:00:00:00:09", "dev", "r1"}).exitCode,
      0);
  EXPECT_TRUE(fast_.waitFor([](const auto& t) {
    auto it = t.find(*Prefix::parse("10.6.0.0/16"));
    return it != t.end() && it->second.forwards() &&
           it->second.group().paths[0].adjacency->dst.str() == "02:00:00:00:00:09";
  })) << "forwarded once the kernel knows the gateway's MAC";
  // IPv6 multipath over two link-local gateways: a group of two, with the kernel's weights.
  ASSERT_EQ(run({"ip", "-6", "route", "add", "2001:db8:6::/48", "nexthop", "via", "fe80::9", "dev",
                 "r1", "weight", "1", "nexthop", "via", "fe80::a", "dev", "r1", "weight", "3"})
                .exitCode,
            0);
  for (const char* gw : {"fe80::9", "fe80::a"}) {
    ASSERT_EQ(
        run({"ip", "-6", "neigh", "add", gw, "lladdr", "02:00:00:00:00:0a", "dev", "r1"}).exitCode,
        0);
  }
  EXPECT_TRUE(fast_.waitFor([](const auto& t) {
    auto it = t.find(*Prefix::parse("2001:db8:6::/48"));
    if (it == t.end() || !it->second.forwards()) return false;
    const auto& paths = it->second.group().paths;
    return paths.size() == 2 && paths[0].weight == 1 && paths[1].weight == 3 &&
           paths[0].adjacency && paths[1].adjacency;
  })) << "an IPv6 ECMP route, once both gateways are resolved";
  ASSERT_EQ(run({"ip", "route", "del", "10.6.0.0/16"}).exitCode, 0);
  EXPECT_TRUE(fast_.waitFor([](const auto& t) { return !has(t, "10.6.0.0/16"); }));
  (*loop)->stop();
  t.join();
  EXPECT_GT((*loop)->status().syncs, 1u);
  EXPECT_EQ((*loop)->status().syncErrors, 0u);
}

// Route changes alone are applied from their notifications: no re-read of the tables, which at a
// million routes would cost more than the changes themselves.
TEST_F(RouterLoopTest, RouteChangesAreAppliedWithoutReReadingTheTables) {
  ASSERT_EQ(
      run({"ip", "neigh", "add", "10.5.0.9", "lladdr", "02:00:00:00:00:09", "dev", "r1"}).exitCode,
      0);
  ASSERT_EQ(
      run({"ip", "neigh", "add", "10.5.0.10", "lladdr", "02:00:00:00:00:10", "dev", "r1"}).exitCode,
      0);
  auto loop = RouterLoop::start({.ports = {"r1"}, .resyncInterval = 1h, .debounce = 20ms}, fast_);
  ASSERT_TRUE(loop) << loop.error().message();
  std::thread t([&] { (*loop)->run(); });
  auto via = [&](const char* mac) {
    return fast_.waitFor([mac](const auto& table) {
      auto it = table.find(*Prefix::parse("10.7.0.0/16"));
      return it != table.end() && it->second.forwards() &&
             it->second.group().paths[0].adjacency->dst.str() == mac;
    });
  };
  ASSERT_EQ(run({"ip", "route", "add", "10.7.0.0/16", "via", "10.5.0.9"}).exitCode, 0);
  EXPECT_TRUE(via("02:00:00:00:00:09"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(run({"ip", "route", "replace", "10.7.0.0/16", "via", "10.5.0.10"}).exitCode, 0);
    EXPECT_TRUE(via("02:00:00:00:00:10"));
    ASSERT_EQ(run({"ip", "route", "replace", "10.7.0.0/16", "via", "10.5.0.9"}).exitCode, 0);
    EXPECT_TRUE(via("02:00:00:00:00:09"));
  }
  ASSERT_EQ(run({"ip", "route", "del", "10.7.0.0/16"}).exitCode, 0);
  EXPECT_TRUE(fast_.waitFor([](const auto& table) { return !has(table, "10.7.0.0/16"); }));
  // A second route for the prefix (another metric) is the kernel's choice: that one re-reads.
  ASSERT_EQ(run({"ip", "route", "add", "10.7.0.0/16", "via", "10.5.0.9"}).exitCode, 0);
  EXPECT_TRUE(via("02:00:00:00:00:09"));
  ASSERT_EQ(run({"ip", "route", "add", "10.7.0.0/16", "via", "10.5.0.10", "metric", "5"}).exitCode,
            0);
  EXPECT_TRUE(fast_.waitFor([&](const auto&) { return (*loop)->status().syncs > 1; }));
  (*loop)->stop();
  t.join();
  EXPECT_EQ((*loop)->status().syncs, 2u) << "the start and the second route only";
  EXPECT_GE((*loop)->status().routeUpdates, 4u);
  EXPECT_EQ((*loop)->status().syncErrors, 0u);
}

TEST_F(RouterLoopTest, AMissingPortIsAUsageErrorBeforeAnythingIsInstalled) {
  auto loop = RouterLoop::start({.ports = {"r1", "nosuch0"}}, fast_);
  ASSERT_FALSE(loop);
  EXPECT_TRUE(loop.error().isUsage());
  EXPECT_THAT(loop.error().message(), HasSubstr("port nosuch0"));
  EXPECT_EQ(fast_.installs(), 0);
  EXPECT_TRUE(fast_.ports().empty());
  auto none = RouterLoop::start({}, fast_);
  ASSERT_FALSE(none);
  EXPECT_TRUE(none.error().isUsage());
}

TEST_F(RouterLoopTest, AFastPathThatRefusesAPortFailsTheStart) {
  fast_.refuse("r1");
  auto loop = RouterLoop::start({.ports = {"r1"}}, fast_);
  ASSERT_FALSE(loop);
  EXPECT_THAT(loop.error().message(), HasSubstr("refused by the fake"));
  EXPECT_FALSE(loop.error().isUsage());
}

}  // namespace
}  // namespace vfplane::dataplane
