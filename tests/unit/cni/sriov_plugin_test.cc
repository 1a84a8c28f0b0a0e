// vfplane-sriov's logic without a kernel: a fake kernel (tests/support/fake_kernel.h) answers its
// netlink requests and a simulated node's sysfs tree names the VFs. The plan decides everything
// and changes nothing; ADD and DEL move the netdev as the journal says; failures roll back. The
// netns suite runs the same plugin against the real kernel.
#include "vfplane/cni/sriov_plugin.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>

#include <filesystem>

#include "cni_test_support.h"
#include "fake_kernel.h"
#include "test_support.h"
#include "vfplane/cni/sriov_config.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using test::FakeKernel;
using testing::HasSubstr;

// The PF side: by default a PF that reports no VF attributes, as on the simulated node; with
// `reports`, one that does and remembers what was applied.
class FakePf final : public sriov::VfConfigurator {
 public:
  Result<std::optional<sriov::VfState>> snapshot(std::string_view, int vf) override {
    if (!reports) return std::optional<sriov::VfState>();
    state.vf = vf;
    return std::optional<sriov::VfState>(state);
  }
  Result<void> apply(std::string_view, int, const sriov::VfSettings& s,
                     const sriov::VfState&) override {
    if (!reports) return fail("not expected", EIO);
    if (s.mac) state.mac = *s.mac;
    applied.push_back(s);
    return {};
  }
  bool reports = false;
  sriov::VfState state;
  std::vector<sriov::VfSettings> applied;
};

class SriovPluginTest : public testing::Test {
 protected:
  void SetUp() override {
    auto node = sriov::createSimNode({.root = dir_.path() / "node", .pfs = 1, .vfs = 3, .vfio = 1},
                                     nullptr);
    ASSERT_TRUE(node) << node.error().message();
    node_ = *node;
    for (int i = 0; i < 2; ++i) {
      kernel_.addLink(FakeKernel::kHost, {.name = *vf(i).netdev,
                                          .mac = fmt::format("02:00:00:00:00:1{}", i),
                                          .mtu = 1500,
                                          .parentDevice = vf(i).address.str()});
    }
    kernel_.addLink(FakeKernel::kPod, {.name = "lo", .mac = "", .mtu = 65536});
    auto ns = netlink::Netns::open("/proc/self/ns/net");
    ASSERT_TRUE(ns) << ns.error().message();
    podNs_.emplace(std::move(*ns));
    kernel_.setPodFd(podNs_->fd());
    plugin_.emplace(SriovPluginOptions{.sysfsRoot = dir_.path() / "node",
                                       .stateDir = dir_.path() / "state",
                                       .lockTimeout = std::chrono::milliseconds(1000),
                                       .clients = kernel_.factory()},
                    &pf_);
  }
  const sriov::SimVf& vf(int i) const { return node_.pfs.at(0).vfs.at(static_cast<size_t>(i)); }

  Request request(Command command, const std::string& extra,
                  const std::string& container = "ctr1") {
    Request req = test::pluginRequest(
        command, container,
        R"({"cniVersion":"1.0.0","name":"sriovnet","type":"vfplane-sriov")" + extra + "}");
    kernel_.setPodFd(req.netns->fd());
    return req;
  }
  std::string device(int i) const {
    return fmt::format(R"(,"deviceID":"{}")", vf(i).address.str());
  }
  size_t files(const char* sub) const {
    std::error_code ec;
    size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_.path() / "state" / sub, ec))
      ++n;
    return n;
  }
  CniExpected<SriovAddPlan> plan(Request& req) {
    auto cfg = parseSriovConfig(req.conf, req.env);
    if (!cfg) return std::unexpected(cfg.error());
    NamespaceClients ns(kernel_.factory(), &*req.netns);
    return plugin_->planAdd(req, *cfg, ns);
  }

  test::TempDir dir_;
  sriov::SimNode node_;
  FakeKernel kernel_;
  FakePf pf_;
  std::optional<netlink::Netns> podNs_;
  std::optional<SriovPlugin> plugin_;
};

TEST_F(SriovPluginTest, ThePlanSaysWhatWillBeDoneAndDoesNothing) {
  kernel_.addLink(FakeKernel::kPod,
                  {.name = "eth9", .mac = "02:00:00:00:00:99", .altnames = {"vfpclash"}});
  auto host = kernel_.find(FakeKernel::kHost, *vf(0).netdev);
  {
    // Give the VF's netdev an altname that names a link in the pod.
    auto factory = kernel_.factory();
    auto c = factory(nullptr);
    ASSERT_TRUE((*c)->execute(netlink::buildAltname(host->ifindex, "vfpclash", true), "altname"));
  }
  pf_.reports = true;
  size_t before = kernel_.requests().size();
  auto req = request(Command::kAdd, device(0) + R"(,"mtu":9000,"mac":"02:aa:00:00:00:01")");
  auto p = plan(req);
  ASSERT_TRUE(p) << p.error().msg;
  ASSERT_TRUE(p->hostLink);
  EXPECT_EQ(p->hostLink->name, *vf(0).netdev);
  EXPECT_EQ(p->attachment.pf, "ens1f0");
  EXPECT_EQ(p->attachment.vfIndex, 0);
  EXPECT_FALSE(p->attachment.dpdk);
  EXPECT_EQ(p->attachment.hostMac, "02:00:00:00:00:10");
  EXPECT_EQ(p->attachment.hostMtu, 1500);
  EXPECT_EQ(p->attachment.removedAltnames, std::vector<std::string>{"vfpclash"});
  EXPECT_EQ(p->podChange.mtu, 9000);
  EXPECT_EQ(p->podChange.mac->str(), "02:aa:00:00:00:01");
  EXPECT_EQ(p->podChange.up, true);
  ASSERT_TRUE(p->attachment.pfSnapshot) << "the PF-side state to put back";
  EXPECT_EQ(p->attachment.pfSettings.mac->str(), "02:aa:00:00:00:01");
  EXPECT_TRUE(pf_.applied.empty()) << "and nothing set on the PF yet";
  EXPECT_EQ(kernel_.requests().size(), before) << "the plan sends nothing that changes the kernel";
  EXPECT_EQ(files("attachments"), 0u) << "and writes no journal";
  EXPECT_TRUE(kernel_.find(FakeKernel::kHost, *vf(0).netdev));
}

TEST_F(SriovPluginTest, ThePlanOfADpdkVfHasNoNetdev) {
  auto req = request(Command::kAdd, device(2));
  auto p = plan(req);
  ASSERT_TRUE(p) << p.error().msg;
  EXPECT_TRUE(p->attachment.dpdk);
  EXPECT_FALSE(p->hostLink);
}

TEST_F(SriovPluginTest, ThePlanRefusesWithTheSpecsCodes) {
  fs::remove(dir_.path() / "node" / vf(1).dir / "driver");
  auto unbound = request(Command::kAdd, device(1));
  auto u = plan(unbound);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(u.error().msg, HasSubstr("no driver bound"));

  kernel_.addLink(FakeKernel::kPod, {.name = "net1", .mac = "02:00:00:00:00:77"});
  auto clash = request(Command::kAdd, device(0));
  auto c = plan(clash);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::kInvalidEnvironment);
  EXPECT_THAT(c.error().msg, HasSubstr("CNI_IFNAME net1 already exists"));

  auto vlan = request(Command::kAdd, device(0) + R"(,"vlan":100)");
  auto v = plan(vlan);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(v.error().msg, HasSubstr("reports no VF attributes"));
}

TEST_F(SriovPluginTest, ANetdevNotBackInTheHostIsTryAgainLater) {
  // ens1f0v2 is on vfio-pci in sysfs; make VF 1's netdev vanish from the host instead.
  auto gone = kernel_.find(FakeKernel::kHost, *vf(1).netdev);
  auto c = kernel_.factory()(nullptr);
  ASSERT_TRUE((*c)->execute(netlink::buildDeleteLink(gone->ifindex), "delete"));
  auto req = request(Command::kAdd, device(1));
  auto p = plan(req);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kTryAgainLater);
  EXPECT_THAT(p.error().msg, HasSubstr("no netdev in the host namespace"));
}

TEST_F(SriovPluginTest, AddMovesTheNetdevAndDelBringsItHomeAsItWas) {
  pf_.reports = true;
  auto add = request(Command::kAdd, device(0) + R"(,"mtu":9000,"mac":"02:aa:00:00:00:01")");
  auto result = plugin_->add(add);
  ASSERT_TRUE(result) << result.error().msg;
  ASSERT_EQ(result->interfaces.size(), 1u);
  EXPECT_EQ(result->interfaces[0].mac, "02:aa:00:00:00:01");
  EXPECT_EQ(result->interfaces[0].pciID, vf(0).address.str());
  auto inPod = kernel_.find(FakeKernel::kPod, "net1");
  ASSERT_TRUE(inPod);
  EXPECT_EQ(inPod->mtu, 9000);
  EXPECT_TRUE(inPod->flags & IFF_UP);
  EXPECT_FALSE(kernel_.find(FakeKernel::kHost, *vf(0).netdev));
  EXPECT_EQ(files("attachments"), 1u);
  ASSERT_EQ(pf_.applied.size(), 1u) << "the admin MAC on the PF side";

  auto del = request(Command::kDel, device(0));
  ASSERT_TRUE(plugin_->del(del));
  EXPECT_TRUE(pf_.state.mac.isZero()) << "and the PF side's admin MAC put back";
  auto home = kernel_.find(FakeKernel::kHost, *vf(0).netdev);
  ASSERT_TRUE(home);
  EXPECT_EQ(home->mac, "02:00:00:00:00:10") << "its own MAC back";
  EXPECT_EQ(home->mtu, 1500) << "and its MTU";
  EXPECT_FALSE(kernel_.find(FakeKernel::kPod, "net1"));
  EXPECT_EQ(files("attachments"), 0u);
  EXPECT_EQ(files("owners"), 0u);
}

TEST_F(SriovPluginTest, AHomeNameTakenMeanwhileGivesTheFallbackName) {
  auto add = request(Command::kAdd, device(0));
  ASSERT_TRUE(plugin_->add(add));
  kernel_.addLink(FakeKernel::kHost, {.name = *vf(0).netdev, .mac = "02:00:00:00:00:55"});
  auto del = request(Command::kDel, device(0));
  ASSERT_TRUE(plugin_->del(del));
  EXPECT_TRUE(kernel_.find(
      FakeKernel::kHost,
      fmt::format("pci{:04x}{:02x}{:02x}{:x}", vf(0).address.domain(), vf(0).address.bus(),
                  vf(0).address.device(), vf(0).address.function())));
  EXPECT_EQ(files("attachments"), 0u);
}

TEST_F(SriovPluginTest, AMoveTheKernelRefusesRollsBackAndLeavesNoRecord) {
  kernel_.failNext(RTM_NEWLINK, EBUSY);
  auto add = request(Command::kAdd, device(0));
  auto r = plugin_->add(add);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIoFailure);
  EXPECT_THAT(r.error().msg, HasSubstr("Device or resource busy"));
  EXPECT_TRUE(kernel_.find(FakeKernel::kHost, *vf(0).netdev)) << "never left home";
  EXPECT_EQ(files("attachments"), 0u);
  EXPECT_EQ(files("owners"), 0u);
  // And the VF is free for the next ADD.
  auto again = request(Command::kAdd, device(0), "ctr2");
  EXPECT_TRUE(plugin_->add(again));
}

TEST_F(SriovPluginTest, AnAddressTheKernelRefusesBringsTheVfHomeAndReleasesIt) {
  std::string ipam = fmt::format(
      R"(,"ipam":{{"type":"vfplane-ipam","dataDir":"{}","ranges":[[{{"subnet":"10.9.0.0/24"}}]]}})",
      (dir_.path() / "ipam").string());
  kernel_.failNext(RTM_NEWADDR, EACCES);
  auto add = request(Command::kAdd, device(0) + ipam);
  auto r = plugin_->add(add);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().msg, HasSubstr("Permission denied"));
  auto home = kernel_.find(FakeKernel::kHost, *vf(0).netdev);
  ASSERT_TRUE(home) << "moved back by the rollback";
  EXPECT_FALSE(kernel_.find(FakeKernel::kPod, "net1"));
  size_t reserved = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_.path() / "ipam/sriovnet", ec)) {
    reserved += e.path().filename().string().starts_with("10.") ? 1 : 0;
  }
  EXPECT_EQ(reserved, 0u) << "the address was released";
  EXPECT_EQ(files("attachments"), 0u);
}

TEST_F(SriovPluginTest, CheckComparesThePodsLinkWithWhatAddLeft) {
  auto add = request(Command::kAdd, device(0) + R"(,"mtu":9000)");
  auto result = plugin_->add(add);
  ASSERT_TRUE(result) << result.error().msg;
  auto check = request(Command::kCheck, device(0) + R"(,"mtu":9000)");
  EXPECT_TRUE(plugin_->check(check));
  // Someone changes the MTU inside the pod: CHECK says what differs.
  auto inPod = kernel_.find(FakeKernel::kPod, "net1");
  netlink::LinkChange mtu;
  mtu.mtu = 1400;
  auto pod = kernel_.factory()(&*check.netns);
  ASSERT_TRUE((*pod)->execute(netlink::buildChangeLink(inPod->ifindex, mtu), "mtu"));
  auto changed = plugin_->check(check);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, kCheckMismatch);
  EXPECT_THAT(changed.error().msg, HasSubstr("MTU 1400, expected 9000"));
  // And with nothing recorded for the container, CHECK is code 3.
  auto unknown = request(Command::kCheck, device(0), "ctr9");
  auto u = plugin_->check(unknown);
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, ErrorCode::kUnknownContainer);
}

}  // namespace
}  // namespace vfplane::cni
