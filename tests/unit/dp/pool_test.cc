#include "vfplane/dp/pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::dp {
namespace {
namespace fs = std::filesystem;
using testing::HasSubstr;

// A node with 2 PFs (ens1f0 on NUMA 0, ens1f1 on NUMA 1), 4 VFs each, the last on vfio-pci, and
// one plain NIC eno1.
class PoolTest : public testing::Test {
 protected:
  void SetUp() override {
    auto node = sriov::createSimNode(
        {.root = dir_.path() / "n", .pfs = 2, .vfs = 4, .vfio = 1, .numaNodes = 2, .nics = 1},
        nullptr);
    ASSERT_TRUE(node) << node.error().message();
    node_ = *node;
    auto inv = sriov::discoverNode(sriov::Sysfs(dir_.path() / "n"));
    ASSERT_TRUE(inv) << inv.error().message();
    inventory_ = *inv;
  }
  PoolPlan plan(const std::string& json, PoolOptions options = {}) {
    auto config = parseConfig(json, "config.json", "intel.com");
    EXPECT_TRUE(config) << config.error().message();
    return buildPools(*config, inventory_, options);
  }
  static std::vector<std::string> ids(const ResourcePool& p) {
    std::vector<std::string> out;
    for (const auto& d : p.devices) out.push_back(d.id);
    return out;
  }
  bool logged(const PoolPlan& p, const std::string& needle) {
    for (const auto& l : p.log) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  test::TempDir dir_;
  sriov::SimNode node_;
  sriov::NodeInventory inventory_;
};

TEST_F(PoolTest, DriversSplitNetdevAndDpdkVfs) {
  auto p = plan(R"({"resourceList": [
      {"resourceName": "net", "selectors": {"vendors": ["8086"], "drivers": ["iavf"]}},
      {"resourceName": "dpdk", "selectors": {"drivers": ["vfio-pci"]}}]})");
  ASSERT_EQ(p.pools.size(), 2u);
  EXPECT_EQ(p.pools[0].name, "intel.com/net");
  EXPECT_EQ(p.pools[0].devices.size(), 6u);
  EXPECT_EQ(ids(p.pools[1]), (std::vector<std::string>{"0000:01:01.3", "0000:41:01.3"}));
  const PoolDevice* d = p.pools[0].find("0000:41:01.1");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->pf->str(), "0000:41:00.0");
  EXPECT_EQ(d->pfNetdev, "ens1f1");
  EXPECT_EQ(d->vfIndex, 1);
  EXPECT_EQ(d->numaNode(), 1);
  EXPECT_TRUE(logged(p, "0000:01:00.0: excluded: PF with 4 VFs enabled"));
}

TEST_F(PoolTest, PfNamesWithRangesAndRootDevices) {
  auto p = plan(R"({"resourceList": [
      {"resourceName": "a", "selectors": {"pfNames": ["ens1f0#0,2"]}},
      {"resourceName": "b", "selectors": {"rootDevices": ["0000:41:00.0#1-2"]}}]})");
  EXPECT_EQ(ids(p.pools[0]), (std::vector<std::string>{"0000:01:01.0", "0000:01:01.2"}));
  EXPECT_EQ(ids(p.pools[1]), (std::vector<std::string>{"0000:41:01.1", "0000:41:01.2"}));
}

TEST_F(PoolTest, SelectorObjectsAreOredAndFieldsAnded) {
  auto p = plan(R"({"resourceList": [{"resourceName": "a", "selectors": [
      {"pfNames": ["ens1f0"], "drivers": ["vfio-pci"]},
      {"pciAddresses": ["0000:41:01.0"]}]}]})");
  EXPECT_EQ(ids(p.pools[0]), (std::vector<std::string>{"0000:01:01.3", "0000:41:01.0"}));
}

TEST_F(PoolTest, FirstPoolKeepsADeviceAndTheLogSaysSo) {
  auto p = plan(R"({"resourceList": [
      {"resourceName": "first", "selectors": {"pfNames": ["ens1f0"]}},
      {"resourceName": "second", "selectors": {"vendors": ["8086"], "drivers": ["iavf"]}}]})");
  EXPECT_EQ(p.pools[0].devices.size(), 4u);
  EXPECT_EQ(p.pools[1].devices.size(), 3u);
  EXPECT_TRUE(
      logged(p, "0000:01:01.0: matches intel.com/second too, but stays in intel.com/first"));
}

TEST_F(PoolTest, EmptyPoolSaysWhy) {
  auto p = plan(R"({"resourceList": [
      {"resourceName": "typo", "selectors": {"pfNames": ["ens9f0"]}},
      {"resourceName": "taken", "selectors": {"drivers": ["iavf"]}},
      {"resourceName": "again", "selectors": {"drivers": ["iavf"]}},
      {"resourceName": "ddp", "selectors": {"ddpProfiles": ["GTP"]}},
      {"resourceName": "acc", "deviceType": "accelerator", "selectors": {}},
      {"resourceName": "sf", "deviceType": "auxNetDevice", "selectors": {}}]})");
  EXPECT_TRUE(p.pools[0].devices.empty());
  EXPECT_THAT(p.pools[0].emptyReason, HasSubstr("fail on \"pfNames\""));
  EXPECT_THAT(p.pools[2].emptyReason, HasSubstr("in earlier pools"));
  EXPECT_THAT(p.pools[3].emptyReason, HasSubstr("ddpProfiles"));
  EXPECT_THAT(p.pools[4].emptyReason, HasSubstr("the node has no accelerator (PCI class 0x12)"));
  EXPECT_THAT(p.pools[5].emptyReason, HasSubstr("auxNetDevice"));
  EXPECT_TRUE(logged(p, "intel.com/typo: empty: "));
}

// Accelerator pools draw from accelerators only, and network pools never take an accelerator,
// however wide their selectors.
TEST(AcceleratorPoolTest, AcceleratorAndNetworkPoolsNeverMix) {
  test::TempDir dir;
  auto node = sriov::createSimNode({.root = dir.path() / "n",
                                    .pfs = 1,
                                    .vfs = 2,
                                    .numaNodes = 2,
                                    .accelerators = 2,
                                    .accelVfs = 3},
                                   nullptr);
  ASSERT_TRUE(node) << node.error().message();
  auto inv = sriov::discoverNode(sriov::Sysfs(dir.path() / "n"));
  ASSERT_TRUE(inv);
  auto config = parseConfig(R"({"resourceList": [
      {"resourceName": "all_intel", "selectors": {"vendors": ["8086"]}},
      {"resourceName": "fec", "deviceType": "accelerator",
       "selectors": {"vendors": ["8086"], "devices": ["0d5d"], "drivers": ["vfio-pci"]}},
      {"resourceName": "fec_pf", "deviceType": "accelerator", "selectors": {"devices": ["0d5c"]}}]})",
                            "c", "intel.com");
  ASSERT_TRUE(config) << config.error().message();
  auto p = buildPools(*config, *inv, {});
  ASSERT_EQ(p.pools.size(), 3u);
  std::vector<std::string> netIds;
  for (const auto& d : p.pools[0].devices) netIds.push_back(d.id);
  EXPECT_EQ(netIds, (std::vector<std::string>{node->pfs[0].vfs[0].address.str(),
                                              node->pfs[0].vfs[1].address.str()}));

  const auto& fec = p.pools[1];
  ASSERT_EQ(fec.devices.size(), 6u);
  const PoolDevice* last = fec.find(node->accelerators[1].vfs[2].address.str());
  ASSERT_NE(last, nullptr);
  EXPECT_EQ(last->pf, node->accelerators[1].address);
  EXPECT_EQ(last->vfIndex, 2);
  EXPECT_EQ(last->numaNode(), 1);
  EXPECT_TRUE(last->pfNetdev.empty());

  EXPECT_TRUE(p.pools[2].devices.empty()) << "a PF with VFs enabled is not offered";
  EXPECT_THAT(p.pools[2].emptyReason, HasSubstr("fail on \"device\""));
  bool logged = false;
  for (const auto& l : p.log) {
    logged |=
        l.find(node->accelerators[0].address.str() + ": excluded: accelerator PF with 3 VFs") == 0;
  }
  EXPECT_TRUE(logged) << testing::PrintToString(p.log);
}

TEST_F(PoolTest, DefaultRouteDeviceIsExcludedUnlessAllowed) {
  std::string json =
      R"({"resourceList": [{"resourceName": "nic", "selectors": {"drivers": ["igb"]}}]})";
  auto excluded = plan(json, {.defaultRouteLinks = {"eno1"}});
  EXPECT_TRUE(excluded.pools[0].devices.empty());
  EXPECT_TRUE(logged(excluded, "its netdev eno1 carries a default route"));
  auto allowed = plan(json, {.excludeDefaultRoute = false, .defaultRouteLinks = {"eno1"}});
  EXPECT_EQ(ids(allowed.pools[0]), std::vector<std::string>{node_.nics[0].address.str()});
}

TEST_F(PoolTest, AVirtioNicWithTheDefaultRouteIsExcludedUnlessAllowed) {
  // A KVM guest's own NIC: its netdev is under virtio0/net/, so only a discovery that finds it
  // there lets the default-route rule see it.
  test::TempDir dir;
  auto node =
      sriov::createSimNode({.root = dir.path() / "n", .pfs = 0, .vfs = 0, .virtio = 1}, nullptr);
  ASSERT_TRUE(node) << node.error().message();
  auto inv = sriov::discoverNode(sriov::Sysfs(dir.path() / "n"));
  ASSERT_TRUE(inv) << inv.error().message();
  inventory_ = *inv;
  const auto& nic = node->virtioNics[0];
  std::string json =
      R"({"resourceList": [{"resourcePrefix": "example.com", "resourceName": "virtio_nics",
      "selectors": {"vendors": ["1af4"]}}]})";
  auto excluded = plan(json, {.defaultRouteLinks = {nic.netdev}});
  EXPECT_TRUE(excluded.pools[0].devices.empty());
  EXPECT_TRUE(logged(excluded, nic.address.str() + ": excluded: its netdev " + nic.netdev +
                                   " carries a default route"))
      << testing::PrintToString(excluded.log);
  EXPECT_THAT(excluded.pools[0].emptyReason, HasSubstr("its selectors match " + nic.address.str() +
                                                       ", which is excluded: its netdev " +
                                                       nic.netdev + " carries a default route"));
  auto allowed = plan(json, {.excludeDefaultRoute = false, .defaultRouteLinks = {nic.netdev}});
  EXPECT_EQ(ids(allowed.pools[0]), std::vector<std::string>{nic.address.str()});
}

TEST_F(PoolTest, PfWithoutVfsIsOfferedItself) {
  test::TempDir dir;
  auto node = sriov::createSimNode({.root = dir.path() / "n", .pfs = 1, .vfs = 0}, nullptr);
  ASSERT_TRUE(node);
  auto inv = sriov::discoverNode(sriov::Sysfs(dir.path() / "n"));
  auto config = parseConfig(
      R"({"resourceList": [{"resourceName": "pf", "selectors": {"pfNames": ["ens1f0"]}}]})", "c",
      "intel.com");
  auto p = buildPools(*config, *inv, {});
  EXPECT_EQ(ids(p.pools[0]), std::vector<std::string>{"0000:01:00.0"});
}

TEST_F(PoolTest, LinkTypeRdmaAndAcpiSelectors) {
  fs::path root = dir_.path() / "n";
  test::writeFile(root / node_.pfs[0].vfs[0].dir / "net/ens1f0v0/type", "32\n");
  fs::create_directories(root / node_.pfs[0].vfs[1].dir / "infiniband/mlx5_3");
  auto inv = sriov::discoverNode(sriov::Sysfs(root));
  inventory_ = *inv;
  auto p = plan(R"({"resourceList": [
      {"resourceName": "ib", "selectors": {"linkTypes": ["infiniband"]}},
      {"resourceName": "rdma", "selectors": {"isRdma": true}},
      {"resourceName": "acpi", "selectors": {"acpiIndexes": ["2"]}}]})");
  EXPECT_EQ(ids(p.pools[0]), std::vector<std::string>{"0000:01:01.0"});
  EXPECT_EQ(ids(p.pools[1]), std::vector<std::string>{"0000:01:01.1"});
  EXPECT_TRUE(p.pools[1].isRdma);
  // acpi_index 2 belongs to the second PF, which has VFs and so is not offered.
  EXPECT_TRUE(p.pools[2].devices.empty());
}

}  // namespace
}  // namespace vfplane::dp
