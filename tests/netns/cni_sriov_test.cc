// vfplane-sriov end to end, as a runtime runs it: the built binary exec'd with CNI_* and the config
// on stdin, on a simulated --veth SR-IOV node (VF netdevs are real veth links) inside a throwaway
// network namespace, with pods as real network namespaces and Debian's host-local as the IPAM
// delegate.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "cni_test_support.h"
#include "test_support.h"
#include "vfplane/cni/exec.h"
#include "vfplane/dp/pod_resources_sim.h"
#include "vfplane/netlink/links.h"
#include "vfplane/netlink/netns.h"
#include "vfplane/netlink/rtnl.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;
using testing::HasSubstr;

constexpr const char* kHostLocal = "/usr/lib/cni/host-local";

using Outcome = test::CniOutcome;

class CniSriovTest : public testing::Test {
 protected:
  void SetUp() override {
    // Checked here because a throw from a racing thread below would abort the whole binary.
    ASSERT_NE(std::getenv("VFPLANE_SRIOV_BIN"), nullptr)
        << "VFPLANE_SRIOV_BIN is not set (run via meson test)";
    if (auto why = test::enterFreshNetns())
      GTEST_SKIP() << "needs a throwaway network namespace: " << *why;
    if (::access(kHostLocal, X_OK) != 0) {
      GTEST_SKIP()
          << kHostLocal
          << " is missing (Debian's containernetworking-plugins; scripts/setup installs it)";
    }
    auto links = netlink::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
    sriov::SimNodeSpec spec;
    spec.root = dir_.path() / "sim";
    spec.pfs = 1;
    spec.vfs = 4;
    spec.vfio = 1;
    spec.veth = true;
    auto node = sriov::createSimNode(spec, links_.get());
    ASSERT_TRUE(node) << node.error().message();
    node_ = std::move(*node);
    pod_ = test::newPod();
  }

  const sriov::SimVf& vf(int i) const { return node_.pfs.at(0).vfs.at(static_cast<size_t>(i)); }
  std::string dev(int i) const { return vf(i).address.str(); }

  std::string config(const std::string& version, const std::string& device,
                     const std::string& extra = "",
                     const std::string& subnet = "10.66.0.0/24") const {
    return fmt::format(
        R"({{"cniVersion":"{}","name":"sriovnet","type":"vfplane-sriov","deviceID":"{}",
      "ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"{}"}}]],
               "routes":[{{"dst":"0.0.0.0/0"}}]}}{}}})",
        version, device, (dir_.path() / "ipam").string(), subnet, extra);
  }

  Outcome cni(const std::string& command, const std::string& config, const std::string& netns,
              const std::string& container = "ctr1", const std::string& ifname = "net1",
              const std::map<std::string, std::string>& extra = {}) const {
    std::map<std::string, std::string> env = {
        {"CNI_COMMAND", command},
        {"CNI_CONTAINERID", container},
        {"CNI_NETNS", netns},
        {"CNI_IFNAME", ifname},
        {"CNI_PATH", "/usr/lib/cni"},
        {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p"},
        {"VFPLANE_SYSFS_ROOT", (dir_.path() / "sim").string()},
        {"VFPLANE_STATE_DIR", (dir_.path() / "state").string()}};
    for (const auto& [k, v] : extra) env[k] = v;
    return test::runCni(test::builtBinary("VFPLANE_SRIOV_BIN").string(), env, config);
  }

  static std::string withPrev(const std::string& config, const std::string& result) {
    return test::withPrevResult(config, result);
  }
  static std::optional<netlink::LinkInfo> hostLink(const std::string& name) {
    return test::linkIn("", name);
  }
  static std::optional<netlink::LinkInfo> podLink(const std::string& path,
                                                  const std::string& name) {
    return test::linkIn(path, name);
  }
  static std::vector<std::string> podAddresses(const std::string& path, int ifindex) {
    return test::addressesIn(path, ifindex);
  }
  size_t reservations() const { return test::ipamReservations(dir_.path() / "ipam/sriovnet"); }
  size_t files(const std::string& sub) const {
    std::error_code ec;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_.path() / "state" / sub, ec))
      ++n;
    return n;
  }
  Json journal(const std::string& container, const std::string& ifname = "net1") const {
    return Json::parse(
        test::readFile(dir_.path() / "state/attachments" / (container + "_" + ifname + ".json")));
  }

  test::TempDir dir_;
  std::unique_ptr<netlink::NetlinkLinks> links_;
  sriov::SimNode node_;
  std::unique_ptr<test::PodNetns> pod_;
};

TEST_F(CniSriovTest, AddCheckDelInEveryVersion) {
  const std::string hostName = *vf(0).netdev;
  auto before = hostLink(hostName);
  ASSERT_TRUE(before);
  for (const auto& version : supportedVersions()) {
    SCOPED_TRACE(version);
    std::string conf = config(version, dev(0), R"(,"mtu":1400)");
    auto add = cni("ADD", conf, pod_->path());
    ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
    Json r = add.json();
    EXPECT_EQ(r["cniVersion"], version);
    ASSERT_EQ(r["interfaces"].size(), 1u);
    const Json& iface = r["interfaces"][0];
    EXPECT_EQ(iface["name"], "net1");
    EXPECT_EQ(iface["sandbox"], pod_->path());
    EXPECT_EQ(iface["mac"], before->mac);
    bool v11 = version == "1.1.0";
    EXPECT_EQ(iface.contains("mtu"), v11);
    EXPECT_EQ(iface.contains("pciID"), v11);
    if (v11) {
      EXPECT_EQ(iface["mtu"], 1400);
      EXPECT_EQ(iface["pciID"], dev(0));
    }
    ASSERT_EQ(r["ips"].size(), 1u);
    EXPECT_EQ(r["ips"][0]["interface"], 0);
    EXPECT_EQ(r["ips"][0]["gateway"], "10.66.0.1");
    EXPECT_EQ(r["ips"][0].contains("version"), compareVersions(version, "1.0.0") < 0);
    EXPECT_EQ(r["routes"][0]["dst"], "0.0.0.0/0");

    // The VF left the host and is in the pod, configured.
    EXPECT_FALSE(hostLink(hostName));
    auto inPod = podLink(pod_->path(), "net1");
    ASSERT_TRUE(inPod);
    EXPECT_TRUE(inPod->up());
    EXPECT_EQ(inPod->mtu, 1400);
    EXPECT_THAT(podAddresses(pod_->path(), inPod->ifindex),
                testing::Contains(r["ips"][0]["address"].get<std::string>()));
    EXPECT_EQ(reservations(), 1u);

    if (compareVersions(version, "0.4.0") >= 0) {
      auto check = cni("CHECK", withPrev(conf, add.out), pod_->path());
      EXPECT_EQ(check.exitCode, 0) << check.out << check.err;
    } else {
      EXPECT_EQ(cni("CHECK", withPrev(conf, add.out), pod_->path()).code(), 1);
    }

    auto del = cni("DEL", withPrev(conf, add.out), pod_->path());
    ASSERT_EQ(del.exitCode, 0) << del.out << del.err;
    auto home = hostLink(hostName);
    ASSERT_TRUE(home) << "VF did not come home as " << hostName;
    EXPECT_EQ(home->mac, before->mac);
    EXPECT_EQ(home->mtu, before->mtu);
    EXPECT_FALSE(podLink(pod_->path(), "net1"));
    EXPECT_EQ(reservations(), 0u);
    EXPECT_EQ(files("attachments"), 0u);
    EXPECT_EQ(files("owners"), 0u);
    // DEL is idempotent.
    auto again = cni("DEL", conf, pod_->path());
    EXPECT_EQ(again.exitCode, 0) << again.out;
  }
}

TEST_F(CniSriovTest, VfplaneIpamRunsInProcess) {
  // CNI_PATH holds no vfplane-ipam binary: only the in-process allocator can answer.
  std::string conf = config("1.1.0", dev(0));
  auto j = Json::parse(conf);
  j["ipam"]["type"] = "vfplane-ipam";
  conf = j.dump();
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
  std::string address = add.json()["ips"][0]["address"];
  EXPECT_EQ(address, "10.66.0.2/24");
  EXPECT_EQ(test::readFile(dir_.path() / "ipam/sriovnet/10.66.0.2"), "ctr1\r\nnet1");
  auto inPod = podLink(pod_->path(), "net1");
  ASSERT_TRUE(inPod);
  EXPECT_THAT(podAddresses(pod_->path(), inPod->ifindex), testing::Contains(address));
  EXPECT_EQ(cni("CHECK", withPrev(conf, add.out), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("STATUS", conf, "", "", "").exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniSriovTest, CheckDetectsAChangedMac) {
  std::string conf = config("1.0.0", dev(0));
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out;
  auto link = podLink(pod_->path(), "net1");
  ASSERT_TRUE(link);
  {
    auto ns = netlink::Netns::open(pod_->path());
    auto rtnl = netlink::Rtnl::openIn(*ns);
    netlink::LinkChange change;
    change.mac = *netlink::MacAddress::parse("02:de:ad:be:ef:01");
    ASSERT_TRUE(rtnl->execute(netlink::buildChangeLink(link->ifindex, change), "test: change MAC"));
  }
  auto check = cni("CHECK", withPrev(conf, add.out), pod_->path());
  EXPECT_EQ(check.code(), 100) << check.out;
  EXPECT_THAT(check.out, HasSubstr("02:de:ad:be:ef:01"));
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  // DEL restored the host MAC, not the pod's.
  EXPECT_NE(hostLink(*vf(0).netdev)->mac, "02:de:ad:be:ef:01");
}

TEST_F(CniSriovTest, DpdkModeRunsOnlyIpamAndRemembersTheMode) {
  const sriov::SimVf& vfio = vf(3);
  ASSERT_FALSE(vfio.netdev) << "VF 3 should be on vfio-pci";
  std::string conf = config("1.1.0", vfio.address.str());
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
  Json r = add.json();
  EXPECT_EQ(r["interfaces"][0]["name"], "net1");
  EXPECT_EQ(r["interfaces"][0]["pciID"], vfio.address.str());
  EXPECT_EQ(r["ips"].size(), 1u);
  EXPECT_EQ(journal("ctr1")["mode"], "dpdk");
  EXPECT_FALSE(podLink(pod_->path(), "net1"));  // no netdev work in DPDK mode
  EXPECT_EQ(reservations(), 1u);
  EXPECT_EQ(cni("CHECK", withPrev(conf, add.out), pod_->path()).exitCode, 0);
  EXPECT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
  EXPECT_EQ(files("attachments"), 0u);
}

TEST_F(CniSriovTest, IpamFailureRollsEverythingBack) {
  const std::string hostName = *vf(0).netdev;
  auto before = hostLink(hostName);
  // host-local accepts the config shape but cannot parse the subnet: it fails after the move.
  std::string conf = config("1.0.0", dev(0), R"(,"mtu":1300)", "10.66.0.0/33");
  auto add = cni("ADD", conf, pod_->path());
  EXPECT_NE(add.exitCode, 0);
  EXPECT_NE(add.code(), -1) << "error JSON on stdout: " << add.out;
  auto home = hostLink(hostName);
  ASSERT_TRUE(home) << "VF not back in the host after rollback";
  EXPECT_EQ(home->mtu, before->mtu);
  EXPECT_FALSE(podLink(pod_->path(), "net1"));
  EXPECT_EQ(files("attachments"), 0u);
  EXPECT_EQ(files("owners"), 0u);
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniSriovTest, PodNetnsDeletedBeforeDel) {
  std::string conf = config("1.0.0", dev(1));
  auto add = cni("ADD", conf, pod_->path(), "ctr-gone");
  ASSERT_EQ(add.exitCode, 0) << add.out;
  EXPECT_EQ(reservations(), 1u);
  std::string path = pod_->path();
  pod_->kill();
  auto del = cni("DEL", conf, path, "ctr-gone");
  EXPECT_EQ(del.exitCode, 0) << del.out << del.err;
  EXPECT_EQ(reservations(), 0u) << "the IP must be released even without the netns";
  // A veth VF dies with its namespace, so it cannot come home: the journal keeps it for GC
  // instead of forgetting it, and DEL did not fail on it.
  ASSERT_EQ(files("attachments"), 1u);
  Json j = journal("ctr-gone");
  EXPECT_TRUE(j["stranded"].get<bool>());
  EXPECT_THAT(j["strandedReason"].get<std::string>(), HasSubstr("gone"));
  // The owner record stays with the VF until it is home; the pod is dead, so it blocks nobody.
  EXPECT_EQ(files("owners"), 1u);
  EXPECT_EQ(cni("DEL", conf, path, "ctr-gone").exitCode, 0);
}

TEST_F(CniSriovTest, NameClashOnTheWayHome) {
  const std::string hostName = *vf(0).netdev;
  std::string conf = config("1.0.0", dev(0));
  ASSERT_EQ(cni("ADD", conf, pod_->path()).exitCode, 0);
  // Something else took the VF's name meanwhile (udev, another plugin).
  ASSERT_TRUE(links_->addVethPair(hostName, "squatter"));
  auto del = cni("DEL", conf, pod_->path());
  ASSERT_EQ(del.exitCode, 0) << del.out << del.err;
  // The one fallback rule (netdev_move.h): after the PCI function, "pci" and 9 hex digits.
  std::string fallback =
      fmt::format("pci{:04x}{:02x}{:02x}{:x}", vf(0).address.domain(), vf(0).address.bus(),
                  vf(0).address.device(), vf(0).address.function());
  EXPECT_TRUE(hostLink(fallback)) << "VF should be home as " << fallback;
  EXPECT_FALSE(podLink(pod_->path(), "net1"));
  EXPECT_EQ(files("attachments"), 0u);
}

TEST_F(CniSriovTest, AltnameThatClashesInThePodIsDroppedAndRestored) {
  const std::string hostName = *vf(0).netdev;
  auto ip = [](std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    return test::run(args);
  };
  ASSERT_EQ(ip({"link", "property", "add", "dev", hostName, "altname", "vfpclash"}).exitCode, 0);
  auto inPod = test::run({"nsenter", "--net=" + pod_->path(), "ip", "link", "property", "add",
                          "dev", "lo", "altname", "vfpclash"});
  ASSERT_EQ(inPod.exitCode, 0) << inPod.err;
  std::string conf = config("1.0.0", dev(0));
  auto add = cni("ADD", conf, pod_->path());
  ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
  auto moved = podLink(pod_->path(), "net1");
  ASSERT_TRUE(moved);
  EXPECT_THAT(moved->altnames, testing::Not(testing::Contains("vfpclash")));
  EXPECT_THAT(journal("ctr1")["removedAltnames"], testing::Contains("vfpclash"));
  ASSERT_EQ(cni("DEL", conf, pod_->path()).exitCode, 0);
  auto home = hostLink(hostName);
  ASSERT_TRUE(home);
  EXPECT_THAT(home->altnames, testing::Contains("vfpclash"));
}

TEST_F(CniSriovTest, TwoAddsRacingForOneVfOneWinsOneGetsCode11) {
  auto pod2 = test::newPod();
  ASSERT_TRUE(pod2);
  std::string conf = config("1.0.0", dev(2));
  Outcome a, b;
  std::thread ta([&] { a = cni("ADD", conf, pod_->path(), "ctr-a"); });
  std::thread tb([&] { b = cni("ADD", conf, pod2->path(), "ctr-b"); });
  ta.join();
  tb.join();
  ASSERT_EQ((a.exitCode == 0) + (b.exitCode == 0), 1) << a.out << "\n" << b.out;
  const Outcome& loser = a.exitCode == 0 ? b : a;
  EXPECT_EQ(loser.code(), 11) << loser.out;
  EXPECT_THAT(loser.out, HasSubstr(a.exitCode == 0 ? "ctr-a" : "ctr-b")) << "the owner is named";
  EXPECT_EQ(reservations(), 1u);
  std::string winner = a.exitCode == 0 ? "ctr-a" : "ctr-b";
  EXPECT_EQ(cni("DEL", conf, a.exitCode == 0 ? pod_->path() : pod2->path(), winner).exitCode, 0);
  // The loser's DEL (the runtime always sends one) must not touch the winner's VF.
  EXPECT_EQ(cni("DEL", conf, a.exitCode == 0 ? pod2->path() : pod_->path(),
                a.exitCode == 0 ? "ctr-b" : "ctr-a")
                .exitCode,
            0);
  EXPECT_EQ(reservations(), 0u);
}

// resourceName with no deviceID, as without Multus: the plugin asks the kubelet (a real gRPC
// PodResources server here) which VFs the pod was given and takes them in the kubelet's order,
// one per attachment; with all of them attached the next ADD is code 7 naming who holds them,
// and a DEL frees its VF for the next.
TEST_F(CniSriovTest, ResourceNameTakesThePodsNextVfFromTheKubelet) {
  auto sim = dp::PodResourcesSim::start({(dir_.path() / "kubelet").string(), /*serveGet=*/false});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  kubelet.setPods({{"default", "p", {{"app", "intel.com/sriov_net_a", {dev(1), dev(0)}}}}});
  Json conf = Json::parse(config("1.1.0", dev(0)));
  conf.erase("deviceID");
  conf["resourceName"] = "intel.com/sriov_net_a";
  conf["kubeletRootDir"] = (dir_.path() / "kubelet").string();
  std::string c = conf.dump();
  auto first = cni("ADD", c, pod_->path(), "ctr1", "net1");
  ASSERT_EQ(first.exitCode, 0) << first.out << first.err;
  EXPECT_EQ(first.json()["interfaces"][0]["pciID"], dev(1)) << "the kubelet's first";
  EXPECT_TRUE(podLink(pod_->path(), "net1"));
  EXPECT_EQ(journal("ctr1", "net1")["resourceName"], "intel.com/sriov_net_a");
  auto second = cni("ADD", c, pod_->path(), "ctr1", "net2");
  ASSERT_EQ(second.exitCode, 0) << second.out << second.err;
  EXPECT_EQ(second.json()["interfaces"][0]["pciID"], dev(0)) << "the next one not attached";
  auto third = cni("ADD", c, pod_->path(), "ctr1", "net3");
  EXPECT_EQ(third.code(), 7) << third.out;
  EXPECT_THAT(third.out, HasSubstr("pod default/p has 2 devices of intel.com/sriov_net_a"));
  EXPECT_THAT(third.out, HasSubstr(dev(1) + " as net1"));
  EXPECT_FALSE(podLink(pod_->path(), "net3"));
  ASSERT_EQ(cni("DEL", c, pod_->path(), "ctr1", "net1").exitCode, 0);
  EXPECT_TRUE(hostLink(*vf(1).netdev)) << "home";
  auto again = cni("ADD", c, pod_->path(), "ctr1", "net3");
  ASSERT_EQ(again.exitCode, 0) << again.out;
  EXPECT_EQ(again.json()["interfaces"][0]["pciID"], dev(1));
  for (const char* ifname : {"net2", "net3"})
    EXPECT_EQ(cni("DEL", c, pod_->path(), "ctr1", ifname).exitCode, 0);
  EXPECT_EQ(reservations(), 0u);
  EXPECT_EQ(files("attachments"), 0u);

  // A pod that requests none, and a call without the pod's name.
  kubelet.setPods({{"default", "p", {}}});
  auto none = cni("ADD", c, pod_->path(), "ctr2", "net1");
  EXPECT_EQ(none.code(), 7);
  EXPECT_THAT(none.out, HasSubstr("it requests none: add intel.com/sriov_net_a"));
  auto anonymous = cni("ADD", c, pod_->path(), "ctr2", "net1", {{"CNI_ARGS", "IgnoreUnknown=1"}});
  EXPECT_EQ(anonymous.code(), 7);
  EXPECT_THAT(anonymous.out, HasSubstr("no K8S_POD_NAMESPACE or K8S_POD_NAME"));
  EXPECT_EQ(reservations(), 0u);
}

TEST_F(CniSriovTest, GcCleansAMissedDel) {
  std::string conf = config("1.1.0", dev(0));
  ASSERT_EQ(cni("ADD", conf, pod_->path(), "ctr-missed").exitCode, 0);
  ASSERT_EQ(cni("ADD", config("1.1.0", dev(1)), pod_->path(), "ctr-kept", "net2").exitCode, 0);
  EXPECT_EQ(reservations(), 2u);
  auto j = Json::parse(conf);
  j["cni.dev/valid-attachments"] = Json::array({{{"containerID", "ctr-kept"}, {"ifname", "net2"}}});
  auto gc = cni("GC", j.dump(), "", "", "");
  ASSERT_EQ(gc.exitCode, 0) << gc.out << gc.err;
  EXPECT_TRUE(hostLink(*vf(0).netdev)) << "the missed attachment's VF is home";
  EXPECT_FALSE(podLink(pod_->path(), "net1"));
  EXPECT_TRUE(podLink(pod_->path(), "net2")) << "a valid attachment is left alone";
  EXPECT_EQ(reservations(), 1u);
  EXPECT_EQ(files("attachments"), 1u);
  EXPECT_EQ(cni("DEL", config("1.1.0", dev(1)), pod_->path(), "ctr-kept", "net2").exitCode, 0);
}

TEST_F(CniSriovTest, StatusSaysWhetherThePluginCanWork) {
  auto ok = cni("STATUS", config("1.1.0", dev(0)), "", "", "");
  EXPECT_EQ(ok.exitCode, 0) << ok.out;
  test::writeFile(dir_.path() / "not-a-dir", "");
  auto broken = cni("STATUS", config("1.1.0", dev(0)), "", "", "",
                    {{"VFPLANE_STATE_DIR", (dir_.path() / "not-a-dir/state").string()}});
  EXPECT_EQ(broken.code(), 50) << broken.out;
  EXPECT_EQ(cni("STATUS", config("1.0.0", dev(0)), "", "", "").code(), 1);
}

TEST_F(CniSriovTest, BadConfigsAndEnvironmentsGetTheRightCodeAndChangeNothing) {
  const std::string hostName = *vf(0).netdev;
  struct Case {
    std::string name;
    std::string config;
    std::map<std::string, std::string> env;
    int code;
    std::string mentions;
  };
  test::writeFile(dir_.path() / "plain-file", "");
  const std::vector<Case> cases = {
      {"vlan out of range", config("1.0.0", dev(0), R"(,"vlan":5000)"), {}, 7, "vlan"},
      {"qos without vlan", config("1.0.0", dev(0), R"(,"vlanQoS":2)"), {}, 7, "vlanQoS"},
      {"path trick in deviceID", config("1.0.0", "../../../../etc"), {}, 7, "deviceID"},
      {"missing device", config("1.0.0", "0000:99:00.0"), {}, 7, "0000:99:00.0"},
      {"a PF, not a VF", config("1.0.0", node_.pfs[0].address.str()), {}, 7, "not a VF"},
      {"PF-side attribute on a PF without VF info",
       config("1.0.0", dev(0), R"(,"vlan":10,"spoofchk":"off")"),
       {},
       7,
       "vlan, spoofchk"},
      {"unsupported version", config("9.9.9", dev(0)), {}, 1, "9.9.9"},
      {"not JSON", "{", {}, 6, "JSON"},
      {"IPAM plugin missing",
       R"({"cniVersion":"1.0.0","name":"sriovnet","type":"vfplane-sriov","deviceID":")" + dev(0) +
           R"(","ipam":{"type":"no-such-ipam"}})",
       {},
       7,
       "no-such-ipam"},
      {"netns is a plain file",
       config("1.0.0", dev(0)),
       {{"CNI_NETNS", (dir_.path() / "plain-file").string()}},
       4,
       "CNI_NETNS"},
      {"netns is the plugin's own",
       config("1.0.0", dev(0)),
       {{"CNI_NETNS", "/proc/self/ns/net"}},
       8,
       "own"},
      {"bad container ID",
       config("1.0.0", dev(0)),
       {{"CNI_CONTAINERID", "-bad/id"}},
       4,
       "CNI_CONTAINERID"},
      {"ifname too long",
       config("1.0.0", dev(0)),
       {{"CNI_IFNAME", "a-very-long-ifname"}},
       4,
       "CNI_IFNAME"},
      {"ifname taken in the pod", config("1.0.0", dev(0)), {{"CNI_IFNAME", "lo"}}, 4, "lo"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::map<std::string, std::string> env = c.env;
    std::string netns = env.contains("CNI_NETNS") ? env["CNI_NETNS"] : pod_->path();
    std::string container = env.contains("CNI_CONTAINERID") ? env["CNI_CONTAINERID"] : "ctr1";
    std::string ifname = env.contains("CNI_IFNAME") ? env["CNI_IFNAME"] : "net1";
    auto r = cni("ADD", c.config, netns, container, ifname);
    EXPECT_NE(r.exitCode, 0);
    EXPECT_EQ(r.code(), c.code) << r.out << r.err;
    EXPECT_THAT(r.json().value("msg", ""), HasSubstr(c.mentions));
    EXPECT_TRUE(hostLink(hostName)) << "the VF must stay home";
    EXPECT_EQ(files("attachments"), 0u);
    EXPECT_EQ(files("owners"), 0u);
    EXPECT_EQ(reservations(), 0u);
  }
}

}  // namespace
}  // namespace vfplane::cni
