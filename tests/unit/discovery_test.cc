// Discovery on fake sysfs trees: the simulated node builder makes a well-formed tree, and each test
// bends it into one of the shapes real nodes come in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "test_support.h"
#include "vfplane/sriov/inventory.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::sriov {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using test::writeFile;
using testing::HasSubstr;

class DiscoveryTest : public testing::Test {
 protected:
  SimNode build(SimNodeSpec spec) {
    spec.root = dir_.path() / "node";
    auto node = createSimNode(spec, nullptr);
    if (!node) ADD_FAILURE() << node.error().message();
    return *node;
  }
  NodeInventory discover() {
    auto inv = discoverNode(Sysfs(dir_.path() / "node"));
    if (!inv) ADD_FAILURE() << inv.error().message();
    return inv ? *inv : NodeInventory{};
  }
  fs::path abs(const std::string& rel) { return dir_.path() / "node" / rel; }

  TempDir dir_;
};

TEST_F(DiscoveryTest, FindsPfsVfsAndNicsWithAttributes) {
  auto node = build({.pfs = 2, .vfs = 3, .vfio = 1, .nics = 1});
  auto inv = discover();
  ASSERT_EQ(inv.pfs.size(), 2u);
  ASSERT_EQ(inv.nics.size(), 1u);
  const auto& pf = inv.pfs[0];
  EXPECT_EQ(pf.address, node.pfs[0].address);
  EXPECT_EQ(pf.primaryNetdev()->name, "ens1f0");
  EXPECT_EQ(pf.driver, "ice");
  EXPECT_EQ(pf.vendor, "8086");
  EXPECT_EQ(pf.device, "1592");
  EXPECT_EQ(pf.totalVfs, 3);
  EXPECT_EQ(pf.numVfs, 3);
  EXPECT_EQ(pf.acpiIndex, 1);
  EXPECT_EQ(pf.linkType(), "ether");
  ASSERT_EQ(pf.vfs.size(), 3u);
  const auto& vf = pf.vfs[0];
  EXPECT_EQ(vf.index, 0);
  EXPECT_EQ(vf.address, node.pfs[0].vfs[0].address);
  EXPECT_EQ(vf.primaryNetdev()->name, "ens1f0v0");
  EXPECT_EQ(vf.primaryNetdev()->operstate, "down");
  EXPECT_EQ(vf.driver, "iavf");
  EXPECT_EQ(vf.device, "1889");
  EXPECT_EQ(vf.mode, VfMode::kNetdev);
  EXPECT_TRUE(vf.iommuGroup.has_value());
  EXPECT_EQ(inv.nics[0].primaryNetdev()->name, "eno1");
  EXPECT_EQ(inv.nics[0].driver, "igb");
  EXPECT_TRUE(inv.allWarnings().empty()) << testing::PrintToString(inv.allWarnings());

  const PhysicalFunction* parent = nullptr;
  EXPECT_EQ(inv.findVf(vf.address, &parent), &pf.vfs[0]);
  EXPECT_EQ(parent, &inv.pfs[0]);
  EXPECT_EQ(inv.findPf(pf.address), &inv.pfs[0]);
  EXPECT_EQ(inv.findPf(vf.address), nullptr);
}

TEST_F(DiscoveryTest, PfWithZeroVfs) {
  build({.pfs = 1, .vfs = 0});
  auto inv = discover();
  ASSERT_EQ(inv.pfs.size(), 1u);
  EXPECT_TRUE(inv.pfs[0].vfs.empty());
  EXPECT_EQ(inv.pfs[0].totalVfs, 0);
  EXPECT_TRUE(inv.nics.empty()) << "a PF without VFs is still a PF";
}

TEST_F(DiscoveryTest, VfsOnVfioPciAreDpdkModeWithoutNetdev) {
  build({.pfs = 1, .vfs = 4, .vfio = 2});
  auto inv = discover();
  const auto& vfs = inv.pfs.at(0).vfs;
  ASSERT_EQ(vfs.size(), 4u);
  EXPECT_EQ(vfs[1].mode, VfMode::kNetdev);
  for (int i : {2, 3}) {
    EXPECT_EQ(vfs[i].mode, VfMode::kDpdk);
    EXPECT_EQ(vfs[i].driver, "vfio-pci");
    EXPECT_TRUE(vfs[i].netdevs.empty());
    EXPECT_TRUE(vfs[i].iommuGroup.has_value());
    EXPECT_FALSE(vfs[i].noIommu);
  }
  EXPECT_TRUE(inv.allWarnings().empty());
}

TEST_F(DiscoveryTest, UnboundVf) {
  auto node = build({.pfs = 1, .vfs = 2});
  fs::remove(abs(node.pfs[0].vfs[1].dir + "/driver"));
  fs::remove_all(abs(node.pfs[0].vfs[1].dir + "/net"));
  auto inv = discover();
  const auto& vf = inv.pfs.at(0).vfs.at(1);
  EXPECT_EQ(vf.mode, VfMode::kUnbound);
  EXPECT_FALSE(vf.driver.has_value());
  EXPECT_TRUE(vf.warnings.empty()) << "unbound is a normal state, not a fault";
}

TEST_F(DiscoveryTest, MissingNumaNodeIsNullWithWarning) {
  auto node = build({.pfs = 1, .vfs = 1});
  fs::remove(abs(node.pfs[0].dir + "/numa_node"));
  auto inv = discover();
  const auto& pf = inv.pfs.at(0);
  EXPECT_FALSE(pf.numaNode.has_value());
  ASSERT_EQ(pf.warnings.size(), 1u);
  EXPECT_THAT(pf.warnings[0], HasSubstr("numa_node"));
  EXPECT_EQ(pf.vfs.at(0).numaNode, 0) << "the VF's own numa_node is still read";
}

TEST_F(DiscoveryTest, NumaNodeMinusOneIsNullWithoutWarning) {
  auto node = build({.pfs = 1, .vfs = 0});
  writeFile(abs(node.pfs[0].dir + "/numa_node"), "-1\n");
  auto inv = discover();
  EXPECT_FALSE(inv.pfs.at(0).numaNode.has_value());
  EXPECT_TRUE(inv.pfs.at(0).warnings.empty());
}

TEST_F(DiscoveryTest, NoIommuGroup) {
  build({.pfs = 1, .vfs = 2, .vfio = 1, .noIommu = true});
  auto inv = discover();
  EXPECT_FALSE(inv.pfs.at(0).vfs.at(0).noIommu);
  EXPECT_TRUE(inv.pfs.at(0).vfs.at(1).noIommu);
}

TEST_F(DiscoveryTest, InfinibandLinkTypeAndRdmaDevices) {
  auto node = build({.pfs = 1, .vfs = 1});
  writeFile(abs(node.pfs[0].dir + "/net/ens1f0/type"), "32\n");
  fs::create_directories(abs(node.pfs[0].dir + "/infiniband/mlx5_0"));
  fs::create_directories(abs(node.pfs[0].dir + "/infiniband_verbs/uverbs0"));
  fs::create_directories(abs(node.pfs[0].dir + "/infiniband_mad/umad0"));
  fs::create_directories(abs(node.pfs[0].dir + "/infiniband_mad/issm0"));
  writeFile(abs(node.pfs[0].vfs[0].dir + "/net/ens1f0v0/type"), "772\n");
  auto inv = discover();
  EXPECT_EQ(inv.pfs.at(0).linkType(), "infiniband");
  EXPECT_EQ(inv.pfs.at(0).rdmaDevices, std::vector<std::string>{"mlx5_0"});
  EXPECT_EQ(inv.pfs.at(0).rdmaCharDevices, (std::vector<std::string>{"issm0", "umad0", "uverbs0"}));
  EXPECT_TRUE(inv.pfs.at(0).vfs.at(0).rdmaCharDevices.empty());
  EXPECT_EQ(inv.pfs.at(0).vfs.at(0).linkType(), "arphrd-772");
}

TEST_F(DiscoveryTest, PfsOnTwoNumaNodes) {
  build({.pfs = 4, .vfs = 1, .numaNodes = 2});
  auto inv = discover();
  ASSERT_EQ(inv.pfs.size(), 4u);
  EXPECT_EQ(inv.pfs[0].numaNode, 0);
  EXPECT_EQ(inv.pfs[1].numaNode, 0);
  EXPECT_EQ(inv.pfs[2].numaNode, 1);
  EXPECT_EQ(inv.pfs[3].numaNode, 1);
  EXPECT_EQ(inv.pfs[3].vfs.at(0).numaNode, 1);
}

TEST_F(DiscoveryTest, DanglingVirtfnLinkKeepsTheVfWithWarning) {
  auto node = build({.pfs = 1, .vfs = 3});
  fs::remove_all(abs(node.pfs[0].vfs[1].dir));
  auto inv = discover();
  const auto& vfs = inv.pfs.at(0).vfs;
  ASSERT_EQ(vfs.size(), 3u);
  EXPECT_EQ(vfs[1].address, node.pfs[0].vfs[1].address);
  EXPECT_EQ(vfs[1].mode, VfMode::kUnbound);
  ASSERT_EQ(vfs[1].warnings.size(), 1u);
  EXPECT_THAT(vfs[1].warnings[0], HasSubstr("virtfn1: link to missing device"));
  EXPECT_TRUE(vfs[2].warnings.empty());
}

TEST_F(DiscoveryTest, DanglingDriverLinkStillNamesTheDriver) {
  build({.pfs = 1, .vfs = 1});
  fs::remove_all(abs("sys/bus/pci/drivers/iavf"));
  auto inv = discover();
  EXPECT_EQ(inv.pfs.at(0).vfs.at(0).driver, "iavf");
}

TEST_F(DiscoveryTest, UnreadableFileGivesWarningNotFailure) {
  auto node = build({.pfs = 2, .vfs = 1});
  // Root reads mode-000 files, so make the attribute unreadable for everyone: a directory.
  fs::remove(abs(node.pfs[0].dir + "/vendor"));
  fs::create_directory(abs(node.pfs[0].dir + "/vendor"));
  if (::geteuid() != 0) fs::permissions(abs(node.pfs[1].dir + "/device"), fs::perms::none);
  auto inv = discover();
  ASSERT_EQ(inv.pfs.size(), 2u);
  EXPECT_FALSE(inv.pfs[0].vendor.has_value());
  EXPECT_EQ(inv.pfs[0].device, "1592");
  ASSERT_EQ(inv.pfs[0].warnings.size(), 1u);
  EXPECT_THAT(inv.pfs[0].warnings[0], HasSubstr("vendor"));
  EXPECT_THAT(inv.pfs[0].warnings[0], HasSubstr("Is a directory"));
  EXPECT_EQ(inv.pfs[0].vfs.size(), 1u);
  auto all = inv.allWarnings();
  ASSERT_FALSE(all.empty());
  EXPECT_THAT(all[0], testing::StartsWith(inv.pfs[0].address.str() + ": "));
}

TEST_F(DiscoveryTest, SkipsNonNetworkDevicesAndSortsVfsNumerically) {
  auto node = build({.pfs = 1, .vfs = 12});
  fs::path nvme = abs("sys/devices/pci0000:00/0000:00:1d.0/0000:3c:00.0");
  fs::create_directories(nvme);
  writeFile(nvme / "class", "0x010802\n");
  fs::create_directory_symlink("../../../devices/pci0000:00/0000:00:1d.0/0000:3c:00.0",
                               abs("sys/bus/pci/devices/0000:3c:00.0"));
  auto inv = discover();
  EXPECT_EQ(inv.pfs.size(), 1u);
  EXPECT_TRUE(inv.nics.empty());
  ASSERT_EQ(inv.pfs[0].vfs.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(inv.pfs[0].vfs[i].index, i);
}

TEST_F(DiscoveryTest, AcceleratorsAreListedApartFromNetworkDevices) {
  auto node = build({.pfs = 1, .vfs = 1, .numaNodes = 2, .accelerators = 2, .accelVfs = 3});
  // One plain (non-SR-IOV) accelerator too: an AI inference card, class 0x1201.
  fs::path card = abs("sys/devices/pci0000:00/0000:00:1d.0/0000:3c:00.0");
  fs::create_directories(card);
  writeFile(card / "class", "0x120100\n");
  writeFile(card / "vendor", "0x1e52\n");
  writeFile(card / "device", "0x0100\n");
  writeFile(card / "numa_node", "-1\n");
  fs::create_directory_symlink("../../../devices/pci0000:00/0000:00:1d.0/0000:3c:00.0",
                               abs("sys/bus/pci/devices/0000:3c:00.0"));
  auto inv = discover();
  ASSERT_EQ(inv.pfs.size(), 1u) << "accelerators are not network PFs";
  EXPECT_TRUE(inv.nics.empty());
  ASSERT_EQ(inv.accelPfs.size(), 2u);
  const auto& acc = inv.accelPfs[1];
  EXPECT_EQ(acc.address, node.accelerators[1].address);
  EXPECT_EQ(acc.device, "0d5c");
  EXPECT_EQ(acc.driver, "pci-pf-stub");
  EXPECT_EQ(acc.numaNode, 1);
  EXPECT_TRUE(acc.netdevs.empty());
  ASSERT_EQ(acc.vfs.size(), 3u);
  EXPECT_EQ(acc.vfs[2].device, "0d5d");
  EXPECT_EQ(acc.vfs[2].mode, VfMode::kDpdk);
  EXPECT_TRUE(acc.vfs[2].iommuGroup.has_value());
  ASSERT_EQ(inv.accelerators.size(), 1u);
  EXPECT_EQ(inv.accelerators[0].address.str(), "0000:3c:00.0");
  EXPECT_EQ(inv.accelerators[0].vendor, "1e52");
  EXPECT_EQ(inv.findVf(acc.vfs[0].address), nullptr) << "findVf is for network VFs";
  size_t functions = 0;
  inv.forEachFunction([&](const PciFunction&) { ++functions; });
  EXPECT_EQ(functions, 1u + 1u + 2u * (1u + 3u) + 1u);
}

TEST_F(DiscoveryTest, VfThatNoPfListsIsShownAsNicWithWarning) {
  auto node = build({.pfs = 1, .vfs = 2});
  fs::remove(abs(node.pfs[0].dir + "/virtfn1"));
  auto inv = discover();
  EXPECT_EQ(inv.pfs.at(0).vfs.size(), 1u);
  ASSERT_EQ(inv.nics.size(), 1u);
  EXPECT_EQ(inv.nics[0].address, node.pfs[0].vfs[1].address);
  ASSERT_EQ(inv.nics[0].warnings.size(), 1u);
  EXPECT_THAT(inv.nics[0].warnings[0], HasSubstr(node.pfs[0].address.str()));
}

TEST_F(DiscoveryTest, KernelDriverWithoutNetdevIsWarned) {
  auto node = build({.pfs = 1, .vfs = 1});
  fs::remove_all(abs(node.pfs[0].vfs[0].dir + "/net"));
  auto inv = discover();
  const auto& vf = inv.pfs.at(0).vfs.at(0);
  EXPECT_EQ(vf.mode, VfMode::kNetdev);
  ASSERT_EQ(vf.warnings.size(), 1u);
  EXPECT_THAT(vf.warnings[0], HasSubstr("no netdev"));
}

TEST_F(DiscoveryTest, VirtioNicsNetdevIsFoundUnderItsVirtioDevice) {
  // A KVM guest's NIC: virtio-pci makes virtio0 under the PCI function, and the netdev hangs off
  // that, so <pci>/net/ does not exist.
  auto node = build({.pfs = 1, .vfs = 1, .nics = 1, .virtio = 2});
  ASSERT_EQ(node.virtioNics.size(), 2u);
  const auto& sim = node.virtioNics[1];
  ASSERT_FALSE(fs::exists(abs(sim.dir + "/net")));
  ASSERT_TRUE(fs::exists(abs(sim.dir + "/virtio1/net/" + sim.netdev + "/type")));
  auto inv = discover();
  EXPECT_EQ(inv.pfs.size(), 1u);
  ASSERT_EQ(inv.nics.size(), 3u) << "a virtio NIC is a plain NIC";
  const PciFunction& nic = inv.nics[2];
  EXPECT_EQ(nic.address, sim.address);
  EXPECT_EQ(nic.vendor, "1af4");
  EXPECT_EQ(nic.device, "1041");
  EXPECT_EQ(nic.driver, "virtio-pci");
  ASSERT_NE(nic.primaryNetdev(), nullptr);
  EXPECT_EQ(nic.primaryNetdev()->name, sim.netdev);
  EXPECT_EQ(nic.primaryNetdev()->operstate, "up");
  EXPECT_EQ(nic.linkType(), "ether");
  EXPECT_EQ(inv.nics[0].primaryNetdev()->name, "eno1") << "the other NICs are read as before";
  EXPECT_TRUE(inv.allWarnings().empty()) << testing::PrintToString(inv.allWarnings());
}

TEST_F(DiscoveryTest, VirtioDeviceDirectoriesAreReadOnlyForVirtioPci) {
  auto node = build({.pfs = 0, .vfs = 0, .nics = 1, .virtio = 1});
  // The same layout under an igb NIC is not where igb puts netdevs, so it is not looked at.
  fs::create_directories(abs(node.nics[0].dir + "/virtio9/net/stray0"));
  // A virtio NIC whose netdev entry cannot be read: a warning names it, the NIC is still listed.
  const auto& sim = node.virtioNics[0];
  fs::remove(abs(sim.dir + "/virtio0/net/" + sim.netdev + "/operstate"));
  auto inv = discover();
  ASSERT_EQ(inv.nics.size(), 2u);
  ASSERT_EQ(inv.nics[0].netdevs.size(), 1u);
  EXPECT_EQ(inv.nics[0].netdevs[0].name, "eno1");
  const PciFunction& nic = inv.nics[1];
  EXPECT_EQ(nic.primaryNetdev()->name, sim.netdev);
  EXPECT_FALSE(nic.primaryNetdev()->operstate.has_value());
  ASSERT_EQ(nic.warnings.size(), 1u);
  EXPECT_THAT(nic.warnings[0], HasSubstr("virtio0/net/" + sim.netdev + "/operstate"));
}

TEST_F(DiscoveryTest, VirtioNicWithoutItsNetDriverHasNoNetdevAndNoWarning) {
  // virtio_net unbound from virtio0: the virtio device stays, its net/ goes.
  auto node = build({.pfs = 0, .vfs = 0, .virtio = 1});
  fs::remove_all(abs(node.virtioNics[0].dir + "/virtio0/net"));
  auto inv = discover();
  ASSERT_EQ(inv.nics.size(), 1u);
  EXPECT_TRUE(inv.nics[0].netdevs.empty());
  EXPECT_TRUE(inv.allWarnings().empty()) << testing::PrintToString(inv.allWarnings());
}

TEST_F(DiscoveryTest, MissingPciDirectoryFailsWithPath) {
  auto inv = discoverNode(Sysfs(dir_.path() / "empty"));
  ASSERT_FALSE(inv);
  EXPECT_THAT(inv.error().message(),
              HasSubstr((dir_.path() / "empty/sys/bus/pci/devices").string()));
}

}  // namespace
}  // namespace vfplane::sriov
