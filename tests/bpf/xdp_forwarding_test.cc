// The XDP router forwarding real traffic: two pods on veth links to a router namespace whose
// kernel does not forward (ip_forward=0), so every packet that crosses does so through XDP.
// Root only; skips with the reason where namespaces, veth or XDP are missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "test_support.h"
#include "vfplane/dataplane/kernel_model.h"
#include "vfplane/dataplane/router_loop.h"
#include "vfplane/dataplane/xdp_router.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {
namespace {
using test::run;

std::string pidOf(const test::PodNetns& pod) {
  // path() is /proc/<pid>/ns/net
  const std::string& p = pod.path();
  return p.substr(6, p.find('/', 6) - 6);
}

test::CommandResult inPod(const test::PodNetns& pod, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"nsenter", "--net=" + pod.path()});
  return run(argv);
}

class XdpForwardingTest : public testing::Test {
 protected:
  void SetUp() override {
    if (auto why = test::enterFreshNetns()) GTEST_SKIP() << "needs a network namespace: " << *why;
    // The fresh namespace's loopback is down; the metrics test listens on it.
    ASSERT_EQ(run({"ip", "link", "set", "lo", "up"}).exitCode, 0);
    std::string why;
    for (auto* pod : {&pod1_, &pod2_}) {
      auto made = test::PodNetns::create(&why);
      if (!made) GTEST_SKIP() << "needs pod namespaces: " << why;
      pod->emplace(std::move(*made));
    }
    auto router = XdpRouter::load({});
    if (!router) GTEST_SKIP() << "cannot load BPF here: " << router.error().message();
    router_.emplace(std::move(*router));

    // pod1 (10.1.0.2) -- h1|r1 (10.1.0.1)  router  r2 (10.2.0.1)|h2 -- pod2 (10.2.0.2)
    for (auto [r, h, pod, n] :
         {std::tuple{"r1", "h1", &pod1_, "1"}, std::tuple{"r2", "h2", &pod2_, "2"}}) {
      ASSERT_EQ(run({"ip", "link", "add", r, "type", "veth", "peer", "name", h}).exitCode, 0);
      ASSERT_EQ(run({"ip", "link", "set", h, "netns", pidOf(**pod)}).exitCode, 0);
      ASSERT_EQ(run({"ip", "addr", "add", std::string("10.") + n + ".0.1/24", "dev", r}).exitCode,
                0);
      ASSERT_EQ(run({"ip", "link", "set", r, "up"}).exitCode, 0);
      ASSERT_EQ(inPod(**pod, {"ip", "addr", "add", std::string("10.") + n + ".0.2/24", "dev", h})
                    .exitCode,
                0);
      ASSERT_EQ(inPod(**pod, {"ip", "link", "set", h, "up"}).exitCode, 0);
      ASSERT_EQ(
          inPod(**pod, {"ip", "route", "add", "default", "via", std::string("10.") + n + ".0.1"})
              .exitCode,
          0);
      // IPv6 beside it, without duplicate address detection so the addresses work at once.
      std::string net6 = std::string("2001:db8:") + n + "::";
      ASSERT_EQ(run({"ip", "-6", "addr", "add", net6 + "1/64", "dev", r, "nodad"}).exitCode, 0);
      ASSERT_EQ(
          inPod(**pod, {"ip", "-6", "addr", "add", net6 + "2/64", "dev", h, "nodad"}).exitCode, 0);
      ASSERT_EQ(inPod(**pod, {"ip", "-6", "route", "add", "default", "via", net6 + "1"}).exitCode,
                0);
    }
    std::ifstream forward("/proc/sys/net/ipv4/ip_forward");
    std::string value;
    forward >> value;
    ASSERT_EQ(value, "0") << "the router's kernel must not forward, or the test proves nothing";
    std::ifstream forward6("/proc/sys/net/ipv6/conf/all/forwarding");
    forward6 >> value;
    ASSERT_EQ(value, "0") << "nor IPv6";
  }

  // The link as the namespace at path (or the current one) sees it.
  netlink::LinkInfo link(const std::string& name, const test::PodNetns* pod = nullptr) {
    Result<netlink::Rtnl> rtnl = fail("unset");
    if (pod != nullptr) {
      auto ns = netlink::Netns::open(pod->path());
      EXPECT_TRUE(ns) << ns.error().message();
      rtnl = netlink::Rtnl::openIn(*ns);
    } else {
      rtnl = netlink::Rtnl::open();
    }
    EXPECT_TRUE(rtnl) << rtnl.error().message();
    auto info = rtnl->link(name);
    EXPECT_TRUE(info && *info) << name;
    return **info;
  }

  void attachAll() {
    for (const char* r : {"r1", "r2"}) {
      ASSERT_TRUE(router_->setPort(link(r).ifindex, *MacAddress::parse(link(r).mac)));
      auto ok = router_->attach(link(r).ifindex, XdpMode::kNative);
      ASSERT_TRUE(ok) << "native XDP on veth: " << ok.error().message();
    }
    for (auto [pod, h] : {std::pair{&*pod1_, "h1"}, std::pair{&*pod2_, "h2"}}) {
      auto ns = netlink::Netns::open(pod->path());
      ASSERT_TRUE(ns);
      auto entered = netlink::NetnsEntered::enter(*ns);
      ASSERT_TRUE(entered) << entered.error().message();
      ASSERT_TRUE(router_->attachPass(link(h, pod).ifindex, XdpMode::kNative));
    }
  }

  std::optional<test::PodNetns> pod1_, pod2_;
  std::optional<XdpRouter> router_;
};

TEST_F(XdpForwardingTest, PingCrossesTheRouterThroughXdpOnly) {
  dataplane::ForwardingModel model;
  auto r1 = link("r1"), r2 = link("r2");
  auto h1 = link("h1", &*pod1_), h2 = link("h2", &*pod2_);
  auto ip = [](const char* text) { return *IpAddr::parse(text); };
  auto prefix = [](const char* text) { return *Prefix::parse(text); };
  model.setInterface({r1.ifindex, "r1", *MacAddress::parse(r1.mac)});
  model.setInterface({r2.ifindex, "r2", *MacAddress::parse(r2.mac)});
  model.setRoute(Route::onLink(prefix("10.1.0.0/24"), r1.ifindex));
  model.setRoute(Route::onLink(prefix("10.2.0.0/24"), r2.ifindex));
  model.addLocal(ip("10.1.0.1"));
  model.addLocal(ip("10.2.0.1"));
  model.setNeighbour({ip("10.1.0.2"), r1.ifindex, *MacAddress::parse(h1.mac)});
  model.setNeighbour({ip("10.2.0.2"), r2.ifindex, *MacAddress::parse(h2.mac)});
  ASSERT_TRUE(router_->install(model.compile()));

  // Without the fast path the kernel refuses to forward.
  EXPECT_NE(inPod(*pod1_, {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode, 0);

  attachAll();

  auto ping = inPod(*pod1_, {"ping", "-c", "3", "-i", "0.2", "-W", "2", "10.2.0.2"});
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  auto c = router_->counters();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_GE(c->forwarded, 6u) << "3 echo requests one way, 3 replies the other";
  EXPECT_GE(c->puntOtherHost + c->puntNotIp, 1u)
      << "ARP for the router's own addresses (broadcast requests, replies to us) goes to the "
         "kernel";

  // The route goes away: the fast path punts, the kernel refuses, and the ping fails.
  model.removeRoute(prefix("10.2.0.0/24"));
  ASSERT_TRUE(router_->install(model.compile()));
  EXPECT_NE(inPod(*pod1_, {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode, 0);
}

// The model comes from the router namespace's own tables: the kernel resolved both pods (the
// router pinged them), and that is all the fast path needs to forward between them.
TEST_F(XdpForwardingTest, KernelTablesDriveTheFastPath) {
  for (const char* pod : {"10.1.0.2", "10.2.0.2", "2001:db8:1::2", "2001:db8:2::2"}) {
    ASSERT_EQ(run({"ping", "-c", "1", "-W", "2", pod}).exitCode, 0) << "the router reaches " << pod;
  }
  auto rtnl = netlink::Rtnl::open();
  ASSERT_TRUE(rtnl);
  auto tables = dataplane::readKernelTables(*rtnl);
  ASSERT_TRUE(tables) << tables.error().message();
  auto model = dataplane::buildModel(*tables, {"r1", "r2"});
  ASSERT_TRUE(model) << model.error().message();
  dataplane::Flow toPod2{*IpAddr::parse("10.1.0.2"), *IpAddr::parse("10.2.0.2"), 1};
  EXPECT_EQ(model->resolve(toPod2, 0)->dst, *MacAddress::parse(link("h2", &*pod2_).mac));
  ASSERT_TRUE(router_->install(model->compile()));
  attachAll();

  auto ping = inPod(*pod1_, {"ping", "-c", "2", "-i", "0.2", "-W", "2", "10.2.0.2"});
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  EXPECT_GE(router_->counters()->forwarded, 4u);
  // IPv6 crosses too; the kernel (forwarding off) would not carry it.
  auto ping6 = inPod(*pod1_, {"ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "2001:db8:2::2"});
  EXPECT_EQ(ping6.exitCode, 0) << ping6.out << ping6.err;
  EXPECT_GE(router_->counters()->forwarded, 8u);
}

// The daemon follows the kernel by itself: neighbours learned after it started and a route
// removed while it runs reach the fast path through rtnetlink events alone (the timer resync is
// set to an hour).
TEST_F(XdpForwardingTest, DaemonFollowsKernelEvents) {
  auto xdp = XdpRouter::load({.maxEntries = 1024, .mode = XdpMode::kNative});
  ASSERT_TRUE(xdp) << xdp.error().message();
  auto daemon = RouterLoop::start({.ports = {"r1", "r2"},
                                   .resyncInterval = std::chrono::hours(1),
                                   .debounce = std::chrono::milliseconds(20)},
                                  *xdp);
  ASSERT_TRUE(daemon) << daemon.error().message();
  std::thread loop([&] { (*daemon)->run(); });
  for (auto [pod, h] : {std::pair{&*pod1_, "h1"}, std::pair{&*pod2_, "h2"}}) {
    auto ns = netlink::Netns::open(pod->path());
    auto entered = netlink::NetnsEntered::enter(*ns);
    ASSERT_TRUE(entered);
    ASSERT_TRUE(router_->attachPass(link(h, pod).ifindex, XdpMode::kNative));
  }
  auto pingOnce = [&] {
    return inPod(*pod1_, {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode == 0;
  };
  // Bounded retries: each waits for the next sync, which events trigger within milliseconds.
  auto eventually = [&](auto condition) {
    for (int i = 0; i < 20; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };

  EXPECT_FALSE(pingOnce()) << "pod2's MAC is not known yet, and the kernel does not forward";
  // What the daemon has applied: full re-reads, and batches of notifications applied alone.
  auto applied = [&] {
    auto s = (*daemon)->status();
    return s.syncs + s.routeUpdates;
  };
  uint64_t before = applied();
  ASSERT_EQ(run({"ping", "-c", "1", "-W", "2", "10.2.0.2"}).exitCode,
            0);  // the router resolves pod2
  ASSERT_EQ(run({"ping", "-c", "1", "-W", "2", "10.1.0.2"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return applied() > before && pingOnce(); }));
  EXPECT_GE((*daemon)->counters()->forwarded, 2u);

  ASSERT_EQ(run({"ip", "route", "del", "10.2.0.0/24", "dev", "r2"}).exitCode, 0);
  EXPECT_TRUE(eventually([&] { return !pingOnce(); })) << "the removed route reaches the fast path";
  EXPECT_EQ((*daemon)->status().syncErrors, 0u);

  (*daemon)->stop();
  loop.join();
}

}  // namespace
}  // namespace vfplane::dataplane
