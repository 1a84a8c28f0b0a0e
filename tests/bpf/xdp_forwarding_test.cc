// The XDP router forwarding real traffic: two pods on veth links to a router namespace whose
// kernel does not forward (ip_forward=0), so every packet that crosses does so through XDP.
// Root only; skips with the reason where namespaces, veth or XDP are missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "test_support.h"
#include "vfplane/dataplane/kernel_model.h"
#include "vfplane/ebpf/xdp_router.h"
#include "vfplane/sriov/netns.h"
#include "vfplane/sriov/rtnl.h"

namespace vfplane::ebpf {
namespace {
using dataplane::Ipv4Prefix;
using dataplane::MacAddress;
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
    for (auto [r, h, pod, n] : {std::tuple{"r1", "h1", &pod1_, "1"}, std::tuple{"r2", "h2", &pod2_, "2"}}) {
      ASSERT_EQ(run({"ip", "link", "add", r, "type", "veth", "peer", "name", h}).exitCode, 0);
      ASSERT_EQ(run({"ip", "link", "set", h, "netns", pidOf(**pod)}).exitCode, 0);
      ASSERT_EQ(run({"ip", "addr", "add", std::string("10.") + n + ".0.1/24", "dev", r}).exitCode, 0);
      ASSERT_EQ(run({"ip", "link", "set", r, "up"}).exitCode, 0);
      ASSERT_EQ(inPod(**pod, {"ip", "addr", "add", std::string("10.") + n + ".0.2/24", "dev", h}).exitCode, 0);
      ASSERT_EQ(inPod(**pod, {"ip", "link", "set", h, "up"}).exitCode, 0);
      ASSERT_EQ(inPod(**pod, {"ip", "route", "add", "default", "via", std::string("10.") + n + ".0.1"}).exitCode, 0);
    }
    std::ifstream forward("/proc/sys/net/ipv4/ip_forward");
    std::string value;
    forward >> value;
    ASSERT_EQ(value, "0") << "the router's kernel must not forward, or the test proves nothing";
  }

  // The link as the namespace at path (or the current one) sees it.
  sriov::LinkInfo link(const std::string& name, const test::PodNetns* pod = nullptr) {
    Result<sriov::Rtnl> rtnl = fail("unset");
    if (pod != nullptr) {
      auto ns = sriov::Netns::open(pod->path());
      EXPECT_TRUE(ns) << ns.error().message();
      rtnl = sriov::Rtnl::openIn(*ns);
    } else {
      rtnl = sriov::Rtnl::open();
    }
    EXPECT_TRUE(rtnl) << rtnl.error().message();
    auto info = rtnl->link(name);
    EXPECT_TRUE(info && *info) << name;
    return **info;
  }

  void attachAll() {
    for (const char* r : {"r1", "r2"}) {
      auto ok = router_->attach(link(r).ifindex, XdpMode::kNative);
      ASSERT_TRUE(ok) << "native XDP on veth: " << ok.error().message();
    }
    for (auto [pod, h] : {std::pair{&*pod1_, "h1"}, std::pair{&*pod2_, "h2"}}) {
      auto ns = sriov::Netns::open(pod->path());
      ASSERT_TRUE(ns);
      auto entered = sriov::NetnsEntered::enter(*ns);
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
  model.setInterface({r1.ifindex, "r1", *MacAddress::parse(r1.mac)});
  model.setInterface({r2.ifindex, "r2", *MacAddress::parse(r2.mac)});
  model.setRoute({*Ipv4Prefix::parse("10.1.0.0/24"), std::nullopt, r1.ifindex});
  model.setRoute({*Ipv4Prefix::parse("10.2.0.0/24"), std::nullopt, r2.ifindex});
  model.addLocal(*dataplane::parseIpv4("10.1.0.1"));
  model.addLocal(*dataplane::parseIpv4("10.2.0.1"));
  model.setNeighbour({*dataplane::parseIpv4("10.1.0.2"), r1.ifindex, *MacAddress::parse(h1.mac)});
  model.setNeighbour({*dataplane::parseIpv4("10.2.0.2"), r2.ifindex, *MacAddress::parse(h2.mac)});
  ASSERT_TRUE(router_->install(model.compile()));

  // Without the fast path the kernel refuses to forward.
  EXPECT_NE(inPod(*pod1_, {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode, 0);

  attachAll();

  auto ping = inPod(*pod1_, {"ping", "-c", "3", "-i", "0.2", "-W", "2", "10.2.0.2"});
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  auto c = router_->counters();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_GE(c->forwarded, 6u) << "3 echo requests one way, 3 replies the other";
  EXPECT_GE(c->puntNotIpv4, 1u) << "ARP for the router's own addresses goes to the kernel";

  // The route goes away: the fast path punts, the kernel refuses, and the ping fails.
  model.removeRoute(*Ipv4Prefix::parse("10.2.0.0/24"));
  ASSERT_TRUE(router_->install(model.compile()));
  EXPECT_NE(inPod(*pod1_, {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode, 0);
}

// The model comes from the router namespace's own tables: the kernel resolved both pods (the
// router pinged them), and that is all the fast path needs to forward between them.
TEST_F(XdpForwardingTest, KernelTablesDriveTheFastPath) {
  for (const char* pod : {"10.1.0.2", "10.2.0.2"}) {
    ASSERT_EQ(run({"ping", "-c", "1", "-W", "2", pod}).exitCode, 0) << "the router reaches " << pod;
  }
  auto rtnl = sriov::Rtnl::open();
  ASSERT_TRUE(rtnl);
  auto tables = dataplane::readKernelTables(*rtnl);
  ASSERT_TRUE(tables) << tables.error().message();
  auto model = dataplane::buildModel(*tables, {"r1", "r2"});
  ASSERT_TRUE(model) << model.error().message();
  EXPECT_EQ(model->resolve(*dataplane::parseIpv4("10.2.0.2"))->dst, *MacAddress::parse(link("h2", &*pod2_).mac));
  ASSERT_TRUE(router_->install(model->compile()));
  attachAll();

  auto ping = inPod(*pod1_, {"ping", "-c", "2", "-i", "0.2", "-W", "2", "10.2.0.2"});
  EXPECT_EQ(ping.exitCode, 0) << ping.out << ping.err;
  EXPECT_GE(router_->counters()->forwarded, 4u);
}

}  // namespace
}  // namespace vfplane::ebpf
