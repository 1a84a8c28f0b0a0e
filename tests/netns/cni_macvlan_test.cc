// vfplane-macvlan (with in-process vfplane-ipam) end to end, as a runtime runs it, and side by side
// with Debian's reference macvlan + host-local on the same master: the same config must give a
// result of the same shape and the same state in the pod. Everything happens in a throwaway
// network namespace with pods as real namespaces; the master is a veth link.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "cni_test_support.h"
#include "test_support.h"
#include "vfplane/cni/spec.h"
#include "vfplane/netlink/links.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;
using test::CniOutcome;
using testing::HasSubstr;

constexpr const char* kRefDir = "/usr/lib/cni";
constexpr const char* kMaster = "eno1";

class CniMacvlanTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("VFPLANE_MACVLAN_BIN"), nullptr)
        << "VFPLANE_MACVLAN_BIN is not set (run via meson test)";
    if (auto why = test::enterFreshNetns())
      GTEST_SKIP() << "needs a throwaway network namespace: " << *why;
    auto links = netlink::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
    ASSERT_TRUE(links_->addVethPair(kMaster, "eno1peer"));
    ASSERT_TRUE(links_->setUp(kMaster, true));
    ASSERT_TRUE(links_->setUp("eno1peer", true));
    pod_ = test::newPod();
    ASSERT_TRUE(pod_);
  }

  static bool haveReference() {
    return ::access((std::string(kRefDir) + "/macvlan").c_str(), X_OK) == 0 &&
           ::access((std::string(kRefDir) + "/host-local").c_str(), X_OK) == 0;
  }

  // The same network for both plugins; only the type names differ (as in a real migration) and
  // each has its own IPAM data directory.
  std::string config(const std::string& version, bool reference, const std::string& extra = "",
                     const std::string& ranges = R"([[{"subnet":"10.55.0.0/24"}]])") const {
    return fmt::format(R"({{"cniVersion":"{}","name":"mvnet","type":"{}","master":"{}"{},
      "ipam":{{"type":"{}","dataDir":"{}","ranges":{},"routes":[{{"dst":"0.0.0.0/0"}}]}}}})",
                       version, reference ? "macvlan" : "vfplane-macvlan", kMaster, extra,
                       reference ? "host-local" : "vfplane-ipam", ipamDir(reference).string(),
                       ranges);
  }
  fs::path ipamDir(bool reference) const { return dir_.path() / (reference ? "ipam-ref" : "ipam"); }
  size_t reservations(bool reference = false) const {
    return test::ipamReservations(ipamDir(reference) / "mvnet");
  }

  CniOutcome cni(const std::string& command, const std::string& config, const std::string& netns,
                 const std::string& container = "ctr1", const std::string& ifname = "net1",
                 bool reference = false,
                 const std::map<std::string, std::string>& extra = {}) const {
    std::map<std::string, std::string> env = {
        {"CNI_COMMAND", command},
        {"CNI_CONTAINERID", container},
        {"CNI_NETNS", netns},
        {"CNI_IFNAME", ifname},
        {"CNI_PATH", kRefDir},
        {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p"}};
    for (const auto& [k, v] : extra) env[k] = v;
    std::string binary = reference ? std::string(kRefDir) + "/macvlan"
                                   : test::builtBinary("VFPLANE_MACVLAN_BIN").string();
    return test::runCni(binary, env, config);
  }

  int masterIndex() const {
    auto l = test::linkIn("", kMaster);
    return l ? l->ifindex : -1;
  }

  test::TempDir dir_;
  std::unique_ptr<netlink::NetlinkLinks> links_;
  std::unique_ptr<test::PodNetns> pod_;
};

// A link's routes with its own ifindex taken out, so two pods' tables compare.
std::vector<std::string> routesOf(const std::string& ns, int ifindex) {
  std::vector<std::string> out;
  for (auto r : test::routesIn(ns, AF_INET)) {
    std::string dev = fmt::format(" dev {}", ifindex);
    if (r.ends_with(dev)) out.push_back(r.substr(0, r.size() - dev.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The addresses IPAM put there: the kernel's own IPv6 link-local one left out.
std::vector<std::string> globalAddresses(const std::string& ns, int ifindex) {
  std::vector<std::string> out;
  for (auto& a : test::addressesIn(ns, ifindex)) {
    if (!a.starts_with("fe80:")) out.push_back(a);
  }
  return out;
}

std::string prefixLength(const std::string& cidr) { return cidr.substr(cidr.find('/')); }

TEST_F(CniMacvlanTest, SameResultShapeAndPodStateAsTheReferencePlugins) {
  if (!haveReference())
    GTEST_SKIP() << "Debian's containernetworking-plugins (macvlan, host-local) is not installed";
  auto refPod = test::newPod();
  ASSERT_TRUE(refPod);
  // Debian 12's reference plugins stop at spec 1.0.0.
  for (const std::string version : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
    SCOPED_TRACE(version);
    auto ref = cni("ADD", config(version, true), refPod->path(), "ctr1", "net1", true);
    ASSERT_EQ(ref.exitCode, 0) << ref.out << ref.err;
    auto ours = cni("ADD", config(version, false), pod_->path());
    ASSERT_EQ(ours.exitCode, 0) << ours.out << ours.err;
    Json r = ref.json(), o = ours.json();
    EXPECT_EQ(test::keyPaths(o), test::keyPaths(r))
        << "ours: " << o.dump() << "\nreference: " << r.dump();
    EXPECT_EQ(o["cniVersion"], version);
    EXPECT_EQ(o["interfaces"][0]["sandbox"], pod_->path());
    EXPECT_EQ(r["interfaces"][0]["sandbox"], refPod->path());
    EXPECT_EQ(o["ips"][0]["interface"], r["ips"][0]["interface"]);
    EXPECT_EQ(o["ips"][0]["gateway"], r["ips"][0]["gateway"]);
    EXPECT_THAT(o["ips"][0]["address"].get<std::string>(), testing::StartsWith("10.55.0."));
    EXPECT_EQ(prefixLength(o["ips"][0]["address"]), prefixLength(r["ips"][0]["address"]));
    EXPECT_EQ(o["routes"], r["routes"]);

    // The pods: same kind, mode, master, MTU and MAC format; the address each result reports;
    // the same routes.
    auto refLink = test::linkIn(refPod->path(), "net1");
    auto ourLink = test::linkIn(pod_->path(), "net1");
    ASSERT_TRUE(refLink && ourLink);
    EXPECT_EQ(ourLink->kind, "macvlan");
    EXPECT_EQ(ourLink->kind, refLink->kind);
    EXPECT_EQ(ourLink->macvlanMode, refLink->macvlanMode);
    EXPECT_EQ(ourLink->parentIndex, masterIndex());
    EXPECT_EQ(ourLink->mtu, refLink->mtu);
    EXPECT_EQ(ourLink->up(), refLink->up());
    std::regex mac("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$");
    EXPECT_TRUE(std::regex_match(ourLink->mac, mac)) << ourLink->mac;
    EXPECT_EQ(o["interfaces"][0]["mac"], ourLink->mac);
    EXPECT_EQ(r["interfaces"][0]["mac"], refLink->mac);
    EXPECT_EQ(globalAddresses(pod_->path(), ourLink->ifindex),
              std::vector<std::string>{o["ips"][0]["address"]});
    EXPECT_EQ(globalAddresses(refPod->path(), refLink->ifindex),
              std::vector<std::string>{r["ips"][0]["address"]});
    EXPECT_EQ(routesOf(pod_->path(), ourLink->ifindex), routesOf(refPod->path(), refLink->ifindex));

    if (version != "0.3.0" && version != "0.3.1") {
      auto check =
          cni("CHECK", test::withPrevResult(config(version, false), ours.out), pod_->path());
      EXPECT_EQ(check.exitCode, 0) << check.out;
    }
    ASSERT_EQ(cni("DEL", config(version, true), refPod->path(), "ctr1", "net1", true).exitCode, 0);
    auto del = cni("DEL", config(version, false), pod_->path());
    ASSERT_EQ(del.exitCode, 0) << del.out;
    EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
    EXPECT_EQ(reservations(), 0u);
    EXPECT_EQ(reservations(true), 0u);
  }
}

TEST_F(CniMacvlanTest, DualStackMatchesTheReference) {
  if (!haveReference())
    GTEST_SKIP() << "Debian's containernetworking-plugins (macvlan, host-local) is not installed";
  auto refPod = test::newPod();
  ASSERT_TRUE(refPod);
  auto dual = [&](bool reference) {
    auto j = Json::parse(config("1.0.0", reference, "",
                                R"([[{"subnet":"10.55.0.0/24"}],[{"subnet":"fd00:55::/64"}]])"));
    j["ipam"]["routes"] = Json::parse(R"([{"dst":"0.0.0.0/0"},{"dst":"::/0"}])");
    return j.dump();
  };
  auto ref = cni("ADD", dual(true), refPod->path(), "ctr1", "net1", true);
  ASSERT_EQ(ref.exitCode, 0) << ref.out;
  auto ours = cni("ADD", dual(false), pod_->path());
  ASSERT_EQ(ours.exitCode, 0) << ours.out;
  EXPECT_EQ(test::keyPaths(ours.json()), test::keyPaths(ref.json()));
  EXPECT_EQ(ours.json()["ips"], ref.json()["ips"])
      << "same ranges, fresh state: the same addresses";
  EXPECT_EQ(ours.json()["routes"], ref.json()["routes"]);
  auto ourLink = test::linkIn(pod_->path(), "net1");
  auto refLink = test::linkIn(refPod->path(), "net1");
  ASSERT_TRUE(ourLink && refLink);
  EXPECT_EQ(globalAddresses(pod_->path(), ourLink->ifindex),
            globalAddresses(refPod->path(), refLink->ifindex));
  auto v6routes = [](const std::string& ns, int ifindex) {
    std::vector<std::string> out;
    for (auto& r : test::routesIn(ns, AF_INET6)) {
      if (r.ends_with(fmt::format(" dev {}", ifindex)) && !r.starts_with("fe80:"))
        out.push_back(r.substr(0, r.rfind(" dev ")));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(v6routes(pod_->path(), ourLink->ifindex), v6routes(refPod->path(), refLink->ifindex));
  EXPECT_EQ(routesOf(pod_->path(), ourLink->ifindex), routesOf(refPod->path(), refLink->ifindex));
  EXPECT_EQ(cni("DEL", dual(false), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", dual(true), refPod->path(), "ctr1", "net1", true).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniMacvlanTest, SpecOneOneAddsTheInterfaceMtu) {
  auto add = cni("ADD", config("1.1.0", false, R"(,"mtu":1400)"), pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  EXPECT_EQ(add.json()["interfaces"][0]["mtu"], 1400);
  EXPECT_EQ(test::linkIn(pod_->path(), "net1")->mtu, 1400);
  EXPECT_EQ(cni("DEL", config("1.1.0", false), pod_->path()).exitCode, 0);
}

TEST_F(CniMacvlanTest, EveryModeMtuAndMacAsConfigured) {
  const std::map<std::string, uint32_t> modes = {{"bridge", MACVLAN_MODE_BRIDGE},
                                                 {"private", MACVLAN_MODE_PRIVATE},
                                                 {"vepa", MACVLAN_MODE_VEPA},
                                                 {"passthru", MACVLAN_MODE_PASSTHRU}};
  for (const auto& [name, mode] : modes) {
    SCOPED_TRACE(name);
    std::string conf = config(
        "1.0.0", false, fmt::format(R"(,"mode":"{}","mtu":1280,"mac":"0a:58:0a:37:00:09")", name));
    auto add = cni("ADD", conf, pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out;
    auto link = test::linkIn(pod_->path(), "net1");
    ASSERT_TRUE(link);
    EXPECT_EQ(link->macvlanMode, mode);
    EXPECT_EQ(link->mtu, 1280);
    EXPECT_EQ(link->mac, "0a:58:0a:37:00:09");
    EXPECT_EQ(add.json()["interfaces"][0]["mac"], "0a:58:0a:37:00:09");
    auto check = cni("CHECK", test::withPrevResult(conf, add.out), pod_->path());
    EXPECT_EQ(check.exitCode, 0) << check.out;
    ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  }
}

TEST_F(CniMacvlanTest, MacFromRuntimeConfigWinsOverCniArgsAndConfig) {
  std::string conf = config(
      "1.0.0", false, R"(,"mac":"0a:00:00:00:00:01","runtimeConfig":{"mac":"0a:00:00:00:00:03"})");
  auto add = cni("ADD", conf, pod_->path(), "ctr1", "net1", false,
                 {{"CNI_ARGS", "IgnoreUnknown=1;MAC=0a:00:00:00:00:02"}});
  ASSERT_EQ(add.exitCode, 0) << add.out;
  EXPECT_EQ(test::linkIn(pod_->path(), "net1")->mac, "0a:00:00:00:00:03");
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
}

TEST_F(CniMacvlanTest, WithoutIpamTheLinkIsL2OnlyAndUp) {
  std::string conf = fmt::format(
      R"({{"cniVersion":"1.0.0","name":"l2","type":"vfplane-macvlan","master":"{}"}})", kMaster);
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  Json r = add.json();
  EXPECT_FALSE(r.contains("ips"));
  ASSERT_EQ(r["interfaces"].size(), 1u);
  auto link = test::linkIn(pod_->path(), "net1");
  ASSERT_TRUE(link);
  EXPECT_TRUE(link->up());
  for (const auto& a : test::addressesIn(pod_->path(), link->ifindex)) {
    EXPECT_THAT(a, testing::StartsWith("fe80:"))
        << "only the kernel's link-local address belongs here";
  }
  EXPECT_EQ(cni("CHECK", test::withPrevResult(conf, add.out), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
}

TEST_F(CniMacvlanTest, MasterDefaultsToTheDefaultRouteLink) {
  auto rtnl = netlink::Rtnl::open();
  ASSERT_TRUE(rtnl);
  auto addr = netlink::IpPrefix::parse("192.168.77.1/24");
  auto gw = netlink::IpPrefix::parse("192.168.77.254");
  auto any = netlink::IpPrefix::parse("0.0.0.0/0");
  ASSERT_TRUE(rtnl->execute(netlink::buildAddress(masterIndex(), *addr, true), "address"));
  ASSERT_TRUE(rtnl->execute(netlink::buildRoute(*any, *gw, masterIndex(), true), "default route"));
  std::string conf = R"({"cniVersion":"1.0.0","name":"l2","type":"vfplane-macvlan"})";
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  EXPECT_EQ(test::linkIn(pod_->path(), "net1")->parentIndex, masterIndex());
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
}

TEST_F(CniMacvlanTest, MasterInsideThePodWithLinkInContainer) {
  // A link of the pod's own (say, a VF it already holds) as the master.
  ASSERT_TRUE(links_->addVethPair("podeth", "podpeer"));
  auto host = netlink::Rtnl::open();
  auto podNs = netlink::Netns::open(pod_->path());
  ASSERT_TRUE(host && podNs);
  auto l = host->link("podeth");
  ASSERT_TRUE(l && *l);
  netlink::LinkChange up;
  up.up = true;
  ASSERT_TRUE(
      host->execute(netlink::buildMoveLink((*l)->ifindex, podNs->fd(), "eth0", up), "move"));
  std::string conf =
      R"({"cniVersion":"1.0.0","name":"l2","type":"vfplane-macvlan","master":"eth0","linkInContainer":true})";
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  auto link = test::linkIn(pod_->path(), "net1");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->parentIndex, test::linkIn(pod_->path(), "eth0")->ifindex);
  EXPECT_EQ(link->linkNetnsId, -1) << "the master is in the pod, not in another namespace";
  EXPECT_EQ(cni("CHECK", test::withPrevResult(conf, add.out), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  // Without linkInContainer the same master name means a host link, and there is none.
  auto missing =
      cni("ADD", R"({"cniVersion":"1.0.0","name":"l2","type":"vfplane-macvlan","master":"eth0"})",
          pod_->path());
  EXPECT_EQ(missing.code(), 7) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("master: link eth0 not found"));
}

TEST_F(CniMacvlanTest, CheckNamesWhatDrifted) {
  std::string conf = config("1.0.0", false);
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  std::string withPrev = test::withPrevResult(conf, add.out);
  ASSERT_EQ(cni("CHECK", withPrev, pod_->path()).exitCode, 0);

  auto podNs = netlink::Netns::open(pod_->path());
  auto pod = netlink::Rtnl::openIn(*podNs);
  ASSERT_TRUE(pod);
  auto link = pod->link("net1");
  netlink::LinkChange change;
  change.mac = *netlink::MacAddress::parse("0a:de:ad:be:ef:01");
  ASSERT_TRUE(pod->execute(netlink::buildChangeLink((*link)->ifindex, change), "change MAC"));
  auto macDrift = cni("CHECK", withPrev, pod_->path());
  EXPECT_EQ(macDrift.code(), 100) << macDrift.out;
  EXPECT_THAT(macDrift.out, HasSubstr("MAC 0a:de:ad:be:ef:01"));

  // The config now asks for another mode than the link has.
  auto modeDrift =
      cni("CHECK", test::withPrevResult(config("1.0.0", false, R"(,"mode":"vepa")"), add.out),
          pod_->path());
  EXPECT_EQ(modeDrift.code(), 100) << modeDrift.out;
  EXPECT_THAT(modeDrift.out, HasSubstr("mode bridge"));

  // The address is gone.
  auto addr = netlink::IpPrefix::parse(add.json()["ips"][0]["address"].get<std::string>());
  ASSERT_TRUE(pod->execute(netlink::buildAddress((*link)->ifindex, *addr, false), "drop address"));
  change.mac = *netlink::MacAddress::parse(add.json()["interfaces"][0]["mac"].get<std::string>());
  ASSERT_TRUE(pod->execute(netlink::buildChangeLink((*link)->ifindex, change), "restore MAC"));
  auto addrDrift = cni("CHECK", withPrev, pod_->path());
  EXPECT_EQ(addrDrift.code(), 100) << addrDrift.out;
  EXPECT_THAT(addrDrift.out, HasSubstr("is missing"));
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
}

TEST_F(CniMacvlanTest, DelIsIdempotentAndWorksWithoutTheNetns) {
  std::string conf = config("1.0.0", false);
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);

  auto pod2 = test::newPod();
  ASSERT_TRUE(pod2);
  ASSERT_EQ(cni("ADD", conf, pod2->path(), "ctr2").exitCode, 0);
  EXPECT_EQ(reservations(), 1u);
  std::string gone = pod2->path();
  pod2->kill();
  auto del = cni("DEL", conf, gone, "ctr2");
  EXPECT_EQ(del.exitCode, 0) << del.out;
  EXPECT_EQ(reservations(), 0u) << "the address is released even though the netns is gone";
}

TEST_F(CniMacvlanTest, ANameTakenInThePodIsRefusedAndNothingIsLeft) {
  std::string conf = config("1.0.0", false);
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  auto again = cni("ADD", conf, pod_->path(), "ctr2");
  EXPECT_EQ(again.code(), 4) << again.out;
  EXPECT_THAT(again.out, HasSubstr("net1 already exists"));
  EXPECT_EQ(reservations(), 1u);
  // No temporary link was left behind.
  auto podNs = netlink::Netns::open(pod_->path());
  auto pod = netlink::Rtnl::openIn(*podNs);
  int links = 0;
  for (int i = 1; i < 64; ++i) {
    auto l = pod->link(i);
    if (l && *l && (*l)->name != "lo") {
      ++links;
      EXPECT_EQ((*l)->name, "net1");
    }
  }
  EXPECT_EQ(links, 1);
  // DEL of the refused attachment leaves the first one alone.
  EXPECT_EQ(cni("DEL", conf, pod_->path(), "ctr2", "net2").exitCode, 0);
  EXPECT_TRUE(test::linkIn(pod_->path(), "net1"));
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
}

TEST_F(CniMacvlanTest, IpamFailureRemovesTheLink) {
  // One address in the range: the second attachment cannot get one.
  std::string conf =
      config("1.0.0", false, "",
             R"([[{"subnet":"10.55.0.0/24","rangeStart":"10.55.0.9","rangeEnd":"10.55.0.9"}]])");
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  auto second = cni("ADD", conf, pod_->path(), "ctr2", "net2");
  EXPECT_NE(second.exitCode, 0);
  EXPECT_THAT(second.out,
              HasSubstr("no IP addresses available in range set 0: 10.55.0.9-10.55.0.9"));
  EXPECT_FALSE(test::linkIn(pod_->path(), "net2"));
  EXPECT_EQ(reservations(), 1u);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniMacvlanTest, ThirtyTwoParallelAddsGetDistinctAddresses) {
  std::string conf = config("1.0.0", false);
  constexpr int kN = 32;
  std::vector<CniOutcome> adds(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      adds[i] = cni("ADD", conf, pod_->path(), fmt::format("ctr{}", i), fmt::format("net{}", i));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> addresses;
  for (int i = 0; i < kN; ++i) {
    ASSERT_EQ(adds[i].exitCode, 0) << i << ": " << adds[i].out << adds[i].err;
    addresses.insert(adds[i].json()["ips"][0]["address"].get<std::string>());
  }
  EXPECT_EQ(addresses.size(), static_cast<size_t>(kN));
  EXPECT_EQ(reservations(), static_cast<size_t>(kN));
  threads.clear();
  std::vector<CniOutcome> dels(kN);
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      dels[i] = cni("DEL", conf, pod_->path(), fmt::format("ctr{}", i), fmt::format("net{}", i));
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kN; ++i) EXPECT_EQ(dels[i].exitCode, 0) << i << ": " << dels[i].out;
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniMacvlanTest, GcReleasesAddressesOfAttachmentsTheRuntimeNoLongerHas) {
  std::string conf = config("1.1.0", false);
  ASSERT_EQ(cni("ADD", conf, pod_->path(), "keep").exitCode, 0);
  ASSERT_EQ(cni("ADD", conf, pod_->path(), "lost", "net2").exitCode, 0);
  auto j = Json::parse(conf);
  j["cni.dev/valid-attachments"] = Json::array({Json{{"containerID", "keep"}, {"ifname", "net1"}}});
  auto gc = test::runCni(test::builtBinary("VFPLANE_MACVLAN_BIN").string(),
                         {{"CNI_COMMAND", "GC"}, {"CNI_PATH", kRefDir}}, j.dump());
  EXPECT_EQ(gc.exitCode, 0) << gc.out;
  EXPECT_EQ(reservations(), 1u);
  auto status = test::runCni(test::builtBinary("VFPLANE_MACVLAN_BIN").string(),
                             {{"CNI_COMMAND", "STATUS"}, {"CNI_PATH", kRefDir}}, conf);
  EXPECT_EQ(status.exitCode, 0) << status.out;
  EXPECT_EQ(cni("DEL", conf, pod_->path(), "keep").exitCode, 0);
}

struct BadMacvlan {
  const char* extra;  // appended to a valid config
  int code;
  const char* message;
};

class CniMacvlanBadConfigTest : public CniMacvlanTest,
                                public testing::WithParamInterface<BadMacvlan> {};

TEST_P(CniMacvlanBadConfigTest, RefusedWithTheKeyNamedAndNothingLeft) {
  const auto& p = GetParam();
  std::string conf = fmt::format(
      R"({{"cniVersion":"1.0.0","name":"bad","type":"vfplane-macvlan","master":"{}"{}}})", kMaster,
      p.extra);
  auto add = cni("ADD", conf, pod_->path());
  EXPECT_EQ(add.code(), p.code) << add.out;
  EXPECT_THAT(add.json().value("msg", ""), HasSubstr(p.message));
  EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, CniMacvlanBadConfigTest,
    testing::Values(
        BadMacvlan{R"(,"mode":"l2")", 7, "mode: \"l2\" must be bridge, private, vepa or passthru"},
        BadMacvlan{R"(,"mode":3)", 7, "mode: must be a string"},
        BadMacvlan{R"(,"mtu":9000)", 7, "mtu: 9000 is above master eno1's MTU 1500"},
        BadMacvlan{R"(,"mtu":-1)", 7, "mtu: -1 is out of range"},
        BadMacvlan{R"(,"mtu":"1500")", 7, "mtu: must be an integer"},
        BadMacvlan{R"(,"mac":"01:00:5e:00:00:01")", 7,
                   "mac: 01:00:5e:00:00:01 is a multicast address"},
        BadMacvlan{R"(,"mac":"zz")", 7, "mac:"},
        BadMacvlan{R"(,"linkInContainer":"yes")", 7, "linkInContainer: must be true or false"},
        BadMacvlan{R"(,"master":"nosuch0")", 7, "master: link nosuch0 not found"},
        BadMacvlan{R"(,"master":"a/b")", 7, "master:"},
        BadMacvlan{R"(,"ipam":{"type":"vfplane-ipam","ranges":[[{"subnet":"10.1.0.0/33"}]]})", 7,
                   "subnet"},
        BadMacvlan{R"(,"ipam":{"type":"no-such-ipam"})", 7, "no-such-ipam"}));

TEST_F(CniMacvlanTest, NoMasterAndNoDefaultRouteIsAConfigError) {
  auto add =
      cni("ADD", R"({"cniVersion":"1.0.0","name":"x","type":"vfplane-macvlan"})", pod_->path());
  EXPECT_EQ(add.code(), 7) << add.out;
  EXPECT_THAT(add.out, HasSubstr("master: not set, and there is no default route"));
}

}  // namespace
}  // namespace vfplane::cni
