// vfplane-host-device end to end, as a runtime runs it, on a simulated --veth node (its NIC and VF
// netdevs are real veth links, its sysfs tree is fake) in a throwaway network namespace, side by
// side with Debian's reference host-device + host-local where they should agree.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cni_test_support.h"
#include "test_support.h"
#include "vfplane/cni/spec.h"
#include "vfplane/dp/pod_resources_sim.h"
#include "vfplane/netlink/links.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;
using test::CniOutcome;
using testing::HasSubstr;

constexpr const char* kRefDir = "/usr/lib/cni";

class CniHostDeviceTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("VFPLANE_HOST_DEVICE_BIN"), nullptr)
        << "VFPLANE_HOST_DEVICE_BIN is not set (run via meson test)";
    if (auto why = test::enterFreshNetns())
      GTEST_SKIP() << "needs a throwaway network namespace: " << *why;
    auto links = netlink::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
    sriov::SimNodeSpec spec;
    spec.root = dir_.path() / "sim";
    spec.pfs = 1;
    spec.vfs = 3;
    spec.vfio = 1;
    spec.nics = 1;
    spec.virtio = 1;
    spec.veth = true;
    auto node = sriov::createSimNode(spec, links_.get());
    ASSERT_TRUE(node) << node.error().message();
    node_ = std::move(*node);
    pod_ = test::newPod();
    ASSERT_TRUE(pod_);
  }

  const sriov::SimVf& vf(int i) const { return node_.pfs.at(0).vfs.at(static_cast<size_t>(i)); }

  std::string config(const std::string& version, const std::string& selector,
                     bool reference = false, bool ipam = true,
                     const std::string& ranges = R"([[{"subnet":"10.44.0.0/24"}]])") const {
    std::string ipamPart =
        ipam ? fmt::format(R"(,"ipam":{{"type":"{}","dataDir":"{}","ranges":{}}})",
                           reference ? "host-local" : "vfplane-ipam", ipamDir(reference).string(),
                           ranges)
             : "";
    return fmt::format(R"({{"cniVersion":"{}","name":"hdnet","type":"{}",{}{}}})", version,
                       reference ? "host-device" : "vfplane-host-device", selector, ipamPart);
  }
  fs::path ipamDir(bool reference) const { return dir_.path() / (reference ? "ipam-ref" : "ipam"); }
  size_t reservations(bool reference = false) const {
    return test::ipamReservations(ipamDir(reference) / "hdnet");
  }
  size_t records() const {
    std::error_code ec;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         fs::directory_iterator(dir_.path() / "state/host-device", ec))
      ++n;
    return n;
  }

  CniOutcome cni(const std::string& command, const std::string& config, const std::string& netns,
                 const std::string& container = "ctr1", const std::string& ifname = "net1",
                 bool reference = false) const {
    std::map<std::string, std::string> env = {
        {"CNI_COMMAND", command},
        {"CNI_CONTAINERID", container},
        {"CNI_NETNS", netns},
        {"CNI_IFNAME", ifname},
        {"CNI_PATH", kRefDir},
        {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p"},
        {"VFPLANE_SYSFS_ROOT", (dir_.path() / "sim").string()},
        {"VFPLANE_STATE_DIR", (dir_.path() / "state").string()}};
    std::string binary = reference ? std::string(kRefDir) + "/host-device"
                                   : test::builtBinary("VFPLANE_HOST_DEVICE_BIN").string();
    return test::runCni(binary, env, config);
  }

  test::TempDir dir_;
  std::unique_ptr<netlink::NetlinkLinks> links_;
  sriov::SimNode node_;
  std::unique_ptr<test::PodNetns> pod_;
};

TEST_F(CniHostDeviceTest, SameResultShapeAsTheReferenceAndTheDeviceComesHome) {
  if (::access((std::string(kRefDir) + "/host-device").c_str(), X_OK) != 0) {
    GTEST_SKIP() << "Debian's containernetworking-plugins (host-device) is not installed";
  }
  auto refPod = test::newPod();
  ASSERT_TRUE(refPod);
  const std::string ours = *vf(0).netdev, theirs = *vf(1).netdev;
  for (const std::string version : {"0.3.0", "0.3.1", "0.4.0", "1.0.0"}) {
    SCOPED_TRACE(version);
    auto ourMac = test::linkIn("", ours)->mac;
    auto ref = cni("ADD", config(version, fmt::format(R"("device":"{}")", theirs), true),
                   refPod->path(), "ctr1", "net1", true);
    ASSERT_EQ(ref.exitCode, 0) << ref.out;
    auto add = cni("ADD", config(version, fmt::format(R"("device":"{}")", ours)), pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
    EXPECT_EQ(test::keyPaths(add.json()), test::keyPaths(ref.json())) << add.out << "\n" << ref.out;
    EXPECT_EQ(add.json()["interfaces"][0]["sandbox"], pod_->path());
    EXPECT_EQ(add.json()["interfaces"][0]["mac"], ourMac) << "the device keeps its MAC";
    EXPECT_EQ(add.json()["ips"][0]["gateway"], ref.json()["ips"][0]["gateway"]);

    auto inPod = test::linkIn(pod_->path(), "net1");
    ASSERT_TRUE(inPod);
    EXPECT_TRUE(inPod->up());
    EXPECT_EQ(inPod->alias, ours) << "the original name rides in the alias";
    EXPECT_FALSE(test::linkIn("", ours));
    if (version != "0.3.0" && version != "0.3.1") {
      auto check =
          cni("CHECK",
              test::withPrevResult(config(version, fmt::format(R"("device":"{}")", ours)), add.out),
              pod_->path());
      EXPECT_EQ(check.exitCode, 0) << check.out;
    }

    ASSERT_EQ(cni("DEL", config(version, fmt::format(R"("device":"{}")", theirs), true),
                  refPod->path(), "ctr1", "net1", true)
                  .exitCode,
              0);
    auto del = cni("DEL", config(version, fmt::format(R"("device":"{}")", ours)), pod_->path());
    ASSERT_EQ(del.exitCode, 0) << del.out;
    auto home = test::linkIn("", ours);
    ASSERT_TRUE(home) << "home under its own name";
    EXPECT_EQ(home->alias, "") << "alias cleared";
    EXPECT_EQ(home->mac, ourMac);
    EXPECT_TRUE(test::linkIn("", theirs)) << "the reference brings its device home too";
    EXPECT_EQ(reservations(), 0u);
    EXPECT_EQ(records(), 0u);
  }
}

TEST_F(CniHostDeviceTest, EverySelectorFindsTheDevice) {
  const auto& nic = node_.nics.at(0);
  auto mac = test::linkIn("", nic.netdev)->mac;
  const std::vector<std::string> selectors = {
      fmt::format(R"("device":"{}")", nic.netdev),
      fmt::format(R"("hwaddr":"{}")", mac),
      fmt::format(R"("kernelpath":"/{}")", nic.dir),
      fmt::format(R"("pciBusID":"{}")", nic.address.str()),
      fmt::format(R"("runtimeConfig":{{"deviceID":"{}"}})", nic.address.str()),
  };
  for (const auto& selector : selectors) {
    SCOPED_TRACE(selector);
    std::string conf = config("1.1.0", selector);
    auto add = cni("ADD", conf, pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
    EXPECT_EQ(test::linkIn(pod_->path(), "net1")->mac, mac);
    EXPECT_EQ(add.json()["interfaces"][0]["mtu"], 1500);
    ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
    EXPECT_TRUE(test::linkIn("", nic.netdev));
  }
}

// resourceName alone: the kubelet's allocation for the pod (a real gRPC PodResources server),
// one device per attachment in the kubelet's order, and a clear error when they are all taken.
TEST_F(CniHostDeviceTest, ResourceNameTakesThePodsNextDeviceFromTheKubelet) {
  auto sim = dp::PodResourcesSim::start({(dir_.path() / "kubelet").string(), /*serveGet=*/true});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  const std::string a = vf(1).address.str(), b = vf(0).address.str();
  kubelet.setPods({{"default", "p", {{"app", "intel.com/sriov_net_a", {a, b}}}}});
  std::string conf =
      config("1.1.0", fmt::format(R"("resourceName":"intel.com/sriov_net_a","kubeletRootDir":"{}")",
                                  (dir_.path() / "kubelet").string()));
  auto first = cni("ADD", conf, pod_->path(), "ctr1", "net1");
  ASSERT_EQ(first.exitCode, 0) << first.out << first.err;
  EXPECT_TRUE(test::linkIn(pod_->path(), "net1"));
  EXPECT_FALSE(test::linkIn("", *vf(1).netdev)) << a << " moved into the pod";
  auto second = cni("ADD", conf, pod_->path(), "ctr1", "net2");
  ASSERT_EQ(second.exitCode, 0) << second.out << second.err;
  EXPECT_FALSE(test::linkIn("", *vf(0).netdev)) << b << " moved into the pod";
  auto third = cni("ADD", conf, pod_->path(), "ctr1", "net3");
  EXPECT_EQ(third.code(), 7) << third.out;
  EXPECT_THAT(third.out, HasSubstr("all attached already"));
  EXPECT_THAT(third.out, HasSubstr(a + " as net1"));
  for (const char* ifname : {"net1", "net2"})
    ASSERT_EQ(cni("DEL", conf, pod_->path(), "ctr1", ifname).exitCode, 0);
  EXPECT_TRUE(test::linkIn("", *vf(0).netdev));
  EXPECT_TRUE(test::linkIn("", *vf(1).netdev));
  EXPECT_EQ(records(), 0u);
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniHostDeviceTest, AUserspaceDriverDeviceIsNotMovedOnlyAddressed) {
  const sriov::SimVf& dpdk = vf(2);
  ASSERT_FALSE(dpdk.netdev);
  std::string conf = config("1.1.0", fmt::format(R"("pciBusID":"{}")", dpdk.address.str()));
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  Json r = add.json();
  EXPECT_EQ(r["interfaces"][0]["pciID"], dpdk.address.str());
  EXPECT_FALSE(r["interfaces"][0].contains("mac"));
  EXPECT_EQ(r["ips"].size(), 1u);
  EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
  EXPECT_EQ(cni("CHECK", test::withPrevResult(conf, add.out), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
  EXPECT_EQ(records(), 0u);
}

TEST_F(CniHostDeviceTest, DelWithoutTheNetnsStillReleasesTheAddress) {
  const std::string dev = *vf(0).netdev;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev));
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(reservations(), 1u);
  std::string gone = pod_->path();
  pod_->kill();
  auto del = cni("DEL", conf, gone);
  EXPECT_EQ(del.exitCode, 0) << del.out;
  EXPECT_EQ(reservations(), 0u) << "the reference plugin leaks the address here";
  EXPECT_EQ(records(), 0u);
  EXPECT_EQ(cni("DEL", conf, gone).exitCode, 0) << "a second DEL succeeds";
}

TEST_F(CniHostDeviceTest, TheAliasBringsItHomeWhenTheRecordIsLost) {
  const std::string dev = *vf(0).netdev;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev), false, false);
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  fs::remove_all(dir_.path() / "state");
  ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_TRUE(test::linkIn("", dev));
}

TEST_F(CniHostDeviceTest, ATakenHomeNameGivesAFallbackInsteadOfAStuckDel) {
  const std::string dev = *vf(0).netdev;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev), false, false);
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  int podIndex = test::linkIn(pod_->path(), "net1")->ifindex;
  ASSERT_TRUE(links_->addVethPair(dev, "squatter"));
  auto del = cni("DEL", conf, pod_->path());
  EXPECT_EQ(del.exitCode, 0) << del.out;
  // The one fallback rule (netdev_move.h): a device with no PCI function (a veth here) comes home
  // after its index.
  EXPECT_TRUE(test::linkIn("", fmt::format("if{}", podIndex)));
  EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
}

TEST_F(CniHostDeviceTest, AnAltnameThatClashesInThePodIsDroppedAndGivenBackAtHome) {
  // The reference plugin fails the move with EEXIST here; vfplane-sriov has always handled it, and
  // both now share the routine.
  const std::string dev = *vf(0).netdev;
  ASSERT_EQ(test::run({"ip", "link", "property", "add", "dev", dev, "altname", "hdclash"}).exitCode,
            0);
  auto inPod = test::run({"nsenter", "--net=" + pod_->path(), "ip", "link", "property", "add",
                          "dev", "lo", "altname", "hdclash"});
  ASSERT_EQ(inPod.exitCode, 0) << inPod.err;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev), false, false);
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
  auto moved = test::linkIn(pod_->path(), "net1");
  ASSERT_TRUE(moved);
  EXPECT_THAT(moved->altnames, testing::Not(testing::Contains("hdclash")));
  ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  auto home = test::linkIn("", dev);
  ASSERT_TRUE(home);
  EXPECT_THAT(home->altnames, testing::Contains("hdclash"));
}

TEST_F(CniHostDeviceTest, FailuresLeaveTheDeviceHomeAndNothingReserved) {
  const std::string dev = *vf(0).netdev;
  // CNI_IFNAME taken in the pod: refused before the move.
  ASSERT_TRUE(links_->addVethPair("taken", "takenpeer"));
  {
    auto host = netlink::Rtnl::open();
    auto podNs = netlink::Netns::open(pod_->path());
    auto l = host->link("taken");
    ASSERT_TRUE(host->execute(netlink::buildMoveLink((*l)->ifindex, podNs->fd(), "net1"), "move"));
  }
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev));
  auto clash = cni("ADD", conf, pod_->path());
  EXPECT_EQ(clash.code(), 4) << clash.out;
  EXPECT_TRUE(test::linkIn("", dev));

  // IPAM exhausted after the move: the device comes back under its own name, alias cleared.
  std::string one =
      config("1.0.0", fmt::format(R"("device":"{}")", *vf(1).netdev), false, true,
             R"([[{"subnet":"10.44.0.0/24","rangeStart":"10.44.0.7","rangeEnd":"10.44.0.7"}]])");
  ASSERT_EQ(cni("ADD", one, pod_->path(), "ctr1", "eth1").exitCode, 0);
  std::string second =
      config("1.0.0", fmt::format(R"("device":"{}")", dev), false, true,
             R"([[{"subnet":"10.44.0.0/24","rangeStart":"10.44.0.7","rangeEnd":"10.44.0.7"}]])");
  auto exhausted = cni("ADD", second, pod_->path(), "ctr2", "eth2");
  EXPECT_NE(exhausted.exitCode, 0);
  EXPECT_THAT(exhausted.out, HasSubstr("no IP addresses available"));
  auto home = test::linkIn("", dev);
  ASSERT_TRUE(home);
  EXPECT_EQ(home->alias, "");
  EXPECT_FALSE(test::linkIn(pod_->path(), "eth2"));
  EXPECT_EQ(reservations(), 1u);
  EXPECT_EQ(cni("DEL", one, pod_->path(), "ctr1", "eth1").exitCode, 0);
  EXPECT_EQ(records(), 0u);
}

TEST_F(CniHostDeviceTest, ACorruptRecordIsNamedAndDelStillBringsTheDeviceHome) {
  const std::string dev = *vf(0).netdev;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev));
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  fs::path record = dir_.path() / "state/host-device/ctr1_net1.json";
  ASSERT_TRUE(fs::exists(record));
  test::writeFile(record, "{\"containerID\": tru");  // a torn write
  auto check = cni("CHECK", test::withPrevResult(conf, add.out), pod_->path());
  EXPECT_EQ(check.code(), 5) << check.out;
  EXPECT_THAT(check.json().value("msg", ""), HasSubstr(record.string()))
      << "the corrupt record is named";
  auto del = cni("DEL", conf, pod_->path());
  EXPECT_EQ(del.exitCode, 0) << del.out;
  EXPECT_THAT(del.err, HasSubstr(record.string()));
  EXPECT_TRUE(test::linkIn("", dev)) << "home by its alias all the same";
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniHostDeviceTest, CheckNoticesAChangedMac) {
  const std::string dev = *vf(0).netdev;
  std::string conf = config("1.0.0", fmt::format(R"("device":"{}")", dev));
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0);
  auto podNs = netlink::Netns::open(pod_->path());
  auto pod = netlink::Rtnl::openIn(*podNs);
  netlink::LinkChange change;
  change.mac = *netlink::MacAddress::parse("0a:de:ad:be:ef:02");
  ASSERT_TRUE(pod->execute(
      netlink::buildChangeLink(test::linkIn(pod_->path(), "net1")->ifindex, change), "mac"));
  auto check = cni("CHECK", test::withPrevResult(conf, add.out), pod_->path());
  EXPECT_EQ(check.code(), 100) << check.out;
  EXPECT_THAT(check.out, HasSubstr("0a:de:ad:be:ef:02"));
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
}

TEST_F(CniHostDeviceTest, GcDropsRecordsAndAddressesTheRuntimeNoLongerHas) {
  const auto& nic = node_.nics.at(0);
  std::string dpdk = config("1.1.0", fmt::format(R"("pciBusID":"{}")", vf(2).address.str()));
  ASSERT_EQ(cni("ADD", dpdk, pod_->path(), "lost").exitCode, 0);
  std::string keep = config("1.1.0", fmt::format(R"("device":"{}")", nic.netdev));
  ASSERT_EQ(cni("ADD", keep, pod_->path(), "keep", "net2").exitCode, 0);
  EXPECT_EQ(records(), 2u);
  auto j = Json::parse(keep);
  j["cni.dev/valid-attachments"] = Json::array({Json{{"containerID", "keep"}, {"ifname", "net2"}}});
  auto gc = test::runCni(test::builtBinary("VFPLANE_HOST_DEVICE_BIN").string(),
                         {{"CNI_COMMAND", "GC"},
                          {"CNI_PATH", kRefDir},
                          {"VFPLANE_STATE_DIR", (dir_.path() / "state").string()}},
                         j.dump());
  EXPECT_EQ(gc.exitCode, 0) << gc.out;
  EXPECT_EQ(records(), 1u);
  EXPECT_EQ(reservations(), 1u);
  EXPECT_EQ(cni("DEL", keep, pod_->path(), "keep", "net2").exitCode, 0);
}

TEST_F(CniHostDeviceTest, AVirtioNicIsFoundByItsPciAddress) {
  // A VM's NIC: its netdev is under <pci>/virtio0/net/, not <pci>/net/.
  const auto& nic = node_.virtioNics.at(0);
  auto mac = test::linkIn("", nic.netdev)->mac;
  for (const auto& selector : {fmt::format(R"("pciBusID":"{}")", nic.address.str()),
                               fmt::format(R"("kernelpath":"/{}")", nic.dir)}) {
    SCOPED_TRACE(selector);
    std::string conf = config("1.1.0", selector, false, false);
    auto add = cni("ADD", conf, pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
    if (selector.starts_with(R"("pciBusID")")) {
      EXPECT_EQ(add.json()["interfaces"][0]["pciID"], nic.address.str());
    }
    EXPECT_EQ(test::linkIn(pod_->path(), "net1")->mac, mac);
    ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
    EXPECT_TRUE(test::linkIn("", nic.netdev));
  }
}

TEST_F(CniHostDeviceTest, TheHostsDefaultRouteDeviceIsRefusedUnlessAllowed) {
  auto host = netlink::Rtnl::open();
  ASSERT_TRUE(host);
  // IPv4: the VM's virtio NIC, with the node's address and its default route through it.
  const auto& nic = node_.virtioNics.at(0);
  int v4 = test::linkIn("", nic.netdev)->ifindex;
  ASSERT_TRUE(host->execute(
      netlink::buildAddress(v4, *netlink::IpPrefix::parse("10.45.0.2/24"), true), "address"));
  ASSERT_TRUE(host->execute(netlink::buildRoute(*netlink::IpPrefix::parse("0.0.0.0/0"),
                                                *netlink::IpPrefix::parse("10.45.0.1"), v4, true),
                            "default route"));
  // IPv6 only: the plain NIC carries the IPv6 default route.
  const auto& eno = node_.nics.at(0);
  int v6 = test::linkIn("", eno.netdev)->ifindex;
  ASSERT_TRUE(
      host->execute(netlink::buildRoute(*netlink::IpPrefix::parse("::/0"), std::nullopt, v6, true),
                    "v6 default"));

  struct Case {
    std::string selector, netdev;
  };
  for (const auto& c : {Case{fmt::format(R"("pciBusID":"{}")", nic.address.str()), nic.netdev},
                        Case{fmt::format(R"("device":"{}")", eno.netdev), eno.netdev}}) {
    SCOPED_TRACE(c.selector);
    auto refused = cni("ADD", config("1.0.0", c.selector), pod_->path());
    EXPECT_EQ(refused.code(), 7) << refused.out;
    EXPECT_THAT(refused.json().value("msg", ""), HasSubstr(c.netdev + " "));
    EXPECT_THAT(refused.json().value("msg", ""), HasSubstr("carries the host's default route"));
    EXPECT_THAT(refused.json().value("msg", ""), HasSubstr("\"allowDefaultRouteDevice\": true"));
    EXPECT_TRUE(test::linkIn("", c.netdev)) << "the node keeps its NIC";
    EXPECT_FALSE(test::linkIn(pod_->path(), "net1"));
    EXPECT_EQ(reservations(), 0u);
    EXPECT_EQ(records(), 0u);

    std::string allowed = config("1.0.0", c.selector + R"(,"allowDefaultRouteDevice":true)");
    auto add = cni("ADD", allowed, pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
    EXPECT_TRUE(test::linkIn(pod_->path(), "net1"));
    ASSERT_EQ(cni("DEL", allowed, pod_->path()).exitCode, 0);
    EXPECT_TRUE(test::linkIn("", c.netdev));
  }
  // A device without a default route is moved as before.
  auto other =
      cni("ADD", config("1.0.0", fmt::format(R"("device":"{}")", *vf(0).netdev), false, false),
          pod_->path());
  EXPECT_EQ(other.exitCode, 0) << other.out;
  EXPECT_EQ(
      cni("DEL", config("1.0.0", fmt::format(R"("device":"{}")", *vf(0).netdev), false, false),
          pod_->path())
          .exitCode,
      0);
}

struct BadHostDevice {
  const char* selector;
  int code;
  const char* message;
};

class CniHostDeviceBadConfigTest : public CniHostDeviceTest,
                                   public testing::WithParamInterface<BadHostDevice> {};

TEST_P(CniHostDeviceBadConfigTest, RefusedWithTheKeyNamed) {
  const auto& p = GetParam();
  auto add = cni("ADD", config("1.0.0", p.selector), pod_->path());
  EXPECT_EQ(add.code(), p.code) << add.out;
  EXPECT_THAT(add.json().value("msg", ""), HasSubstr(p.message));
  EXPECT_EQ(reservations(), 0u);
  EXPECT_EQ(records(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, CniHostDeviceBadConfigTest,
    testing::Values(BadHostDevice{R"("mtu":1500)", 7, "name the device with one of"},
                    BadHostDevice{R"("device":"nosuch0")", 7, "device: link nosuch0 not found"},
                    BadHostDevice{R"("device":"a/b")", 7, "device:"},
                    BadHostDevice{R"("hwaddr":"0a:00:00:00:00:99")", 7,
                                  "hwaddr: no link in the host has MAC"},
                    BadHostDevice{R"("hwaddr":"nope")", 7, "hwaddr:"},
                    BadHostDevice{R"("pciBusID":"0000:00:1f.6/../../x")", 7, "pciBusID:"},
                    BadHostDevice{R"("pciBusID":"0000:7f:00.0")", 7, "does not exist"},
                    BadHostDevice{R"("kernelpath":"/sys/devices/../../etc")", 7, "kernelpath:"},
                    BadHostDevice{R"("kernelpath":"devices/pci0000:00")", 7,
                                  "must be an absolute path under /sys/devices/"},
                    BadHostDevice{R"("runtimeConfig":{"deviceID":7})", 7,
                                  "runtimeConfig.deviceID: must be a string"},
                    BadHostDevice{R"("device":"eno1","allowDefaultRouteDevice":"yes")", 7,
                                  "allowDefaultRouteDevice: must be true or false"}));

}  // namespace
}  // namespace vfplane::cni
