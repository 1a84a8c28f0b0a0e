#include "vfplane/sriov/sim_node.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include "test_support.h"

namespace vfplane::sriov {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using testing::HasSubstr;

// Records what the builder asks of the kernel and can be told to fail at one step.
class FakeLinks : public netlink::LinkOps {
 public:
  Result<void> addVethPair(std::string_view name, std::string_view peer) override {
    if (auto r = step("veth " + std::string(name)); !r) return r;
    links_[std::string(name)] = std::string(peer);
    links_[std::string(peer)] = std::string(name);
    return {};
  }
  Result<void> addBridge(std::string_view name) override {
    if (auto r = step("bridge " + std::string(name)); !r) return r;
    links_[std::string(name)] = "";
    return {};
  }
  Result<void> setMaster(std::string_view name, std::string_view master) override {
    masters_[std::string(name)] = std::string(master);
    return step("master " + std::string(name));
  }
  Result<void> setUp(std::string_view name, bool up) override {
    up_[std::string(name)] = up;
    return {};
  }
  Result<void> remove(std::string_view name) override {
    auto it = links_.find(std::string(name));
    if (it == links_.end()) return fail("no such link", ENODEV);
    std::string peer = it->second;
    links_.erase(it);
    if (!peer.empty()) links_.erase(peer);
    return {};
  }
  bool exists(std::string_view name) override { return links_.contains(std::string(name)); }

  std::map<std::string, std::string> links_;
  std::map<std::string, std::string> masters_;
  std::map<std::string, bool> up_;
  std::string failAt;
  int steps = 0;

 private:
  Result<void> step(const std::string& what) {
    ++steps;
    if (what == failAt) return fail(what + ": File exists", EEXIST);
    return {};
  }
};

TEST(SimNode, ValidatesEachFieldByName) {
  auto check = [](SimNodeSpec spec, const char* field) {
    spec.root = "/tmp/unused";
    auto ok = validateSimNodeSpec(spec);
    ASSERT_FALSE(ok) << field;
    EXPECT_THAT(ok.error().message(), HasSubstr(field));
  };
  check({.pfs = -1}, "pfs");
  check({.vfs = 249}, "vfs");
  check({.vfs = 2, .vfio = 3}, "vfio");
  check({.numaNodes = 0}, "numa-nodes");
  check({.numaNodes = 5}, "numa-nodes");
  check({.nics = 100}, "nics");
  check({.accelerators = -1}, "accelerators");
  check({.accelVfs = 300}, "accel-vfs");
  check({.pfs = 60, .nics = 2, .accelerators = 2}, "accelerators");
  check({.virtio = -1}, "virtio");
  check({.pfs = 60, .nics = 2, .virtio = 2}, "virtio");
  check({.pfPrefix = "averyveryverylongprefix"}, "pf-prefix");
  check({.pfPrefix = "a/b"}, "pf-prefix");
  EXPECT_FALSE(validateSimNodeSpec({}));  // no root
}

TEST(SimNode, BuildsTreeWithRelativeLinksAndManifest) {
  TempDir dir;
  auto node = createSimNode({.root = dir.path() / "n", .pfs = 2, .vfs = 2, .vfio = 1}, nullptr);
  ASSERT_TRUE(node) << node.error().message();
  fs::path root = dir.path() / "n";
  const auto& pf = node->pfs[0];
  for (const auto& link :
       {"sys/bus/pci/devices/" + pf.address.str(), pf.dir + "/driver", pf.dir + "/virtfn0",
        pf.vfs[0].dir + "/physfn", pf.dir + "/iommu_group", std::string("sys/class/net/ens1f0")}) {
    ASSERT_TRUE(fs::is_symlink(root / link)) << link;
    EXPECT_TRUE(fs::path(fs::read_symlink(root / link)).is_relative()) << link;
    EXPECT_TRUE(fs::exists(root / link)) << link << " dangles";
  }
  EXPECT_EQ(fs::read_symlink(root / pf.dir / "virtfn1").filename(), pf.vfs[1].address.str());
  EXPECT_FALSE(pf.vfs[1].netdev.has_value());
  EXPECT_TRUE(fs::exists(root / "sys/bus/pci/drivers/vfio-pci" / pf.vfs[1].address.str()));

  auto loaded = loadSimNode(root);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->pfs.size(), 2u);
  EXPECT_EQ(loaded->pfs[1].vfs[0].netdev, "ens1f1v0");
  EXPECT_EQ(loaded->pfs[1].vfs[0].address, node->pfs[1].vfs[0].address);
  EXPECT_TRUE(loaded->links.empty());

  ASSERT_TRUE(destroySimNode(root, nullptr));
  EXPECT_FALSE(fs::exists(root));
}

TEST(SimNode, AcceleratorCardsAreClass0x12WithVfioVfsAndSurviveTheManifest) {
  TempDir dir;
  auto node = createSimNode({.root = dir.path() / "n",
                             .pfs = 2,
                             .vfs = 1,
                             .numaNodes = 2,
                             .nics = 1,
                             .accelerators = 2,
                             .accelVfs = 2,
                             .noIommu = true},
                            nullptr);
  ASSERT_TRUE(node) << node.error().message();
  fs::path root = dir.path() / "n";
  ASSERT_EQ(node->accelerators.size(), 2u);
  EXPECT_EQ(node->accelerators[0].numaNode, 0);
  EXPECT_EQ(node->accelerators[1].numaNode, 1);
  const auto& acc = node->accelerators[0];
  EXPECT_EQ(test::readFile(root / acc.dir / "class"), "0x120000\n");
  EXPECT_EQ(fs::read_symlink(root / acc.dir / "driver").filename(), "pci-pf-stub");
  const auto& vf = acc.vfs[1];
  EXPECT_EQ(fs::read_symlink(root / vf.dir / "driver").filename(), "vfio-pci");
  EXPECT_EQ(test::readFile(root / vf.dir / "iommu_group/name"), "vfio-noiommu\n");
  EXPECT_FALSE(fs::exists(root / vf.dir / "net"));
  EXPECT_EQ(fs::read_symlink(root / acc.dir / "virtfn1").filename(), vf.address.str());
  // Accelerators come after the PFs and NICs, so the network devices keep their addresses.
  auto plain = createSimNode(
      {.root = dir.path() / "p", .pfs = 2, .vfs = 1, .numaNodes = 2, .nics = 1}, nullptr);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->nics[0].address, node->nics[0].address);
  EXPECT_EQ(plain->pfs[1].address, node->pfs[1].address);

  auto loaded = loadSimNode(root);
  ASSERT_TRUE(loaded) << loaded.error().message();
  ASSERT_EQ(loaded->accelerators.size(), 2u);
  EXPECT_EQ(loaded->accelerators[1].vfs[0].address, node->accelerators[1].vfs[0].address);
  EXPECT_EQ(loaded->spec.accelVfs, 2);
}

TEST(SimNode, VirtioNicsAreShapedLikeAKvmGuestsAndSurviveTheManifest) {
  TempDir dir;
  auto node = createSimNode(
      {.root = dir.path() / "n", .pfs = 1, .vfs = 1, .nics = 1, .accelerators = 1, .virtio = 2},
      nullptr);
  ASSERT_TRUE(node) << node.error().message();
  fs::path root = dir.path() / "n";
  ASSERT_EQ(node->virtioNics.size(), 2u);
  const auto& nic = node->virtioNics[1];
  EXPECT_EQ(nic.netdev, fmt::format("enp{}s0", int{nic.address.bus()}));
  EXPECT_EQ(test::readFile(root / nic.dir / "vendor"), "0x1af4\n");
  EXPECT_EQ(test::readFile(root / nic.dir / "device"), "0x1041\n");
  EXPECT_EQ(test::readFile(root / nic.dir / "class"), "0x020000\n");
  EXPECT_EQ(fs::read_symlink(root / nic.dir / "driver").filename(), "virtio-pci");
  EXPECT_FALSE(fs::exists(root / nic.dir / "net"))
      << "virtio-pci puts no netdev under the PCI function";
  EXPECT_EQ(fs::read_symlink(root / nic.dir / "virtio1/driver").filename(), "virtio_net");
  EXPECT_EQ(fs::canonical(root / "sys/class/net" / nic.netdev),
            fs::canonical(root / nic.dir / "virtio1/net" / nic.netdev));
  EXPECT_EQ(fs::canonical(root / "sys/bus/virtio/devices/virtio1"),
            fs::canonical(root / nic.dir / "virtio1"));
  // Virtio NICs come last, so every other device keeps its address.
  auto plain = createSimNode(
      {.root = dir.path() / "p", .pfs = 1, .vfs = 1, .nics = 1, .accelerators = 1}, nullptr);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->nics[0].address, node->nics[0].address);
  EXPECT_EQ(plain->accelerators[0].address, node->accelerators[0].address);

  auto loaded = loadSimNode(root);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->spec.virtio, 2);
  ASSERT_EQ(loaded->virtioNics.size(), 2u);
  EXPECT_EQ(loaded->virtioNics[1].netdev, nic.netdev);
  EXPECT_EQ(loaded->virtioNics[1].address, nic.address);
  ASSERT_TRUE(destroySimNode(root, nullptr));
}

TEST(SimNode, RefusesNonEmptyRootAndForeignDirectories) {
  TempDir dir;
  test::writeFile(dir.path() / "precious", "keep me");
  auto node = createSimNode({.root = dir.path()}, nullptr);
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().sysErrno(), EEXIST);
  auto destroyed = destroySimNode(dir.path(), nullptr);
  ASSERT_FALSE(destroyed);
  EXPECT_THAT(destroyed.error().message(), HasSubstr("vfplane sim create"));
  EXPECT_TRUE(fs::exists(dir.path() / "precious"));
}

TEST(SimNode, VethLinksAreBridgedPerPf) {
  TempDir dir;
  FakeLinks links;
  auto node = createSimNode(
      {.root = dir.path() / "n", .pfs = 2, .vfs = 3, .vfio = 1, .nics = 1, .veth = true}, &links);
  ASSERT_TRUE(node) << node.error().message();
  // bridge + PF veth + 2 netdev VF veths, per PF; one veth for the NIC
  EXPECT_EQ(node->links.size(), 9u);
  EXPECT_TRUE(links.exists("eno1_rep"));
  EXPECT_TRUE(links.up_["eno1"]);
  EXPECT_EQ(links.masters_["ens1f0_rep"], "ens1f0_esw");
  EXPECT_EQ(links.masters_["ens1f0v1_rep"], "ens1f0_esw");
  EXPECT_EQ(links.masters_["ens1f1v0_rep"], "ens1f1_esw");
  EXPECT_FALSE(links.exists("ens1f0v2")) << "vfio-pci VFs have no netdev";
  EXPECT_TRUE(links.up_["ens1f0"]);
  EXPECT_FALSE(links.up_.contains("ens1f0v0")) << "VF ends stay down until a pod takes them";

  ASSERT_TRUE(destroySimNode(dir.path() / "n", &links));
  EXPECT_TRUE(links.links_.empty());
}

TEST(SimNode, DestroyFallsBackToTheRepresentorWhenAVfWasMoved) {
  TempDir dir;
  FakeLinks links;
  auto node = createSimNode({.root = dir.path() / "n", .pfs = 1, .vfs = 1, .veth = true}, &links);
  ASSERT_TRUE(node);
  // A pod took ens1f0v0 into its namespace: only the _rep end is visible here.
  links.links_.erase("ens1f0v0");
  links.links_["ens1f0v0_rep"] = "";
  ASSERT_TRUE(destroySimNode(dir.path() / "n", &links));
  EXPECT_TRUE(links.links_.empty());
}

TEST(SimNode, FailureRollsBackLinksAndTree) {
  TempDir dir;
  FakeLinks links;
  links.failAt = "veth ens1f1v0";
  auto node = createSimNode({.root = dir.path() / "n", .pfs = 2, .vfs = 2, .veth = true}, &links);
  ASSERT_FALSE(node);
  EXPECT_THAT(node.error().message(), HasSubstr("veth ens1f1v0"));
  EXPECT_GT(links.steps, 3);
  EXPECT_TRUE(links.links_.empty()) << "links made before the failure are removed";
  EXPECT_FALSE(fs::exists(dir.path() / "n"));
}

}  // namespace
}  // namespace vfplane::sriov
