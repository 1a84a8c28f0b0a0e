// `vfplane devices` and `vfplane sim` as an operator runs them: the real binary, real exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_support.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane {
namespace {
namespace fs = std::filesystem;
using test::run;
using test::TempDir;
using testing::HasSubstr;

std::string vfplane() { return test::builtBinary("VFPLANE_BIN").string(); }

// The golden node: two PFs on two NUMA nodes, one vfio-pci VF each in a noiommu group, one
// plain NIC whose numa_node the kernel reports as -1, so that nulls show up in the output too,
// and one accelerator card with two vfio-pci VFs.
fs::path buildGoldenNode(const TempDir& dir) {
  fs::path root = dir.path() / "node";
  auto node = sriov::createSimNode({.root = root,
                                    .pfs = 2,
                                    .vfs = 3,
                                    .vfio = 1,
                                    .numaNodes = 2,
                                    .nics = 1,
                                    .accelerators = 1,
                                    .accelVfs = 2,
                                    .noIommu = true},
                                   nullptr);
  if (!node) throw std::runtime_error(node.error().message());
  test::writeFile(root / node->nics[0].dir / "numa_node", "-1\n");
  fs::remove(root / node->nics[0].dir / "iommu_group");
  return root;
}

TEST(DevicesCli, JsonMatchesGolden) {
  TempDir dir;
  fs::path root = buildGoldenNode(dir);
  auto r = run({vfplane(), "devices", "--sysfs-root", root.string(), "--json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  fs::path golden = test::fixturesDir() / "devices-golden.json";
  if (std::getenv("VFPLANE_UPDATE_GOLDEN")) test::writeFile(golden, r.out);
  EXPECT_EQ(r.out, test::readFile(golden))
      << "rerun with VFPLANE_UPDATE_GOLDEN=1 only if the change to the stable JSON is intended";
  EXPECT_EQ(r.err, "") << "a clean node gives no warnings";
}

TEST(DevicesCli, TableShowsPfsVfsAndNics) {
  TempDir dir;
  fs::path root = buildGoldenNode(dir);
  auto r = run({vfplane(), "devices", "--sysfs-root", root.string()});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("PF 0000:01:00.0  netdev ens1f0  driver ice"));
  EXPECT_THAT(r.out, HasSubstr("VFs 3/3"));
  EXPECT_THAT(r.out, testing::ContainsRegex("2  0000:01:01.2  -  +vfio-pci  +dpdk +[0-9]+\\*"));
  EXPECT_THAT(r.out, HasSubstr("eno1"));
  EXPECT_THAT(r.out, HasSubstr("vfio-noiommu"));
}

TEST(DevicesCli, WarningsGoToStderrAndDoNotFailTheCommand) {
  TempDir dir;
  fs::path root = buildGoldenNode(dir);
  fs::remove(root / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/numa_node");
  auto r = run({vfplane(), "devices", "--sysfs-root", root.string(), "--json"});
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("warning: 0000:01:00.0: read "));
  EXPECT_THAT(r.err, HasSubstr("numa_node: No such file or directory"));
  EXPECT_THAT(r.out, HasSubstr("\"numa_node\": null"));
}

TEST(DevicesCli, MissingSysfsRootIsUsageError) {
  TempDir dir;
  auto r = run({vfplane(), "devices", "--sysfs-root", (dir.path() / "absent").string()});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_THAT(r.err, HasSubstr("--sysfs-root"));
  EXPECT_THAT(r.err, HasSubstr("absent"));
  EXPECT_EQ(r.out, "");

  auto notSysfs = run({vfplane(), "devices", "--sysfs-root", dir.path().string()});
  EXPECT_EQ(notSysfs.exitCode, 2);
  EXPECT_THAT(notSysfs.err, HasSubstr("has no sys/bus/pci/devices"));
}

TEST(DevicesCli, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(run({vfplane(), "devices", "--bogus"}).exitCode, 2);
  EXPECT_EQ(run({vfplane()}).exitCode, 2);
  auto help = run({vfplane(), "devices", "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_THAT(help.out, HasSubstr("--sysfs-root"));
}

TEST(SimCli, CreateListDestroy) {
  TempDir dir;
  std::string root = (dir.path() / "n").string();
  auto created = run({vfplane(), "sim", "create", "--root", root, "--pfs", "3", "--vfs", "5",
                      "--vfio", "2", "--numa-nodes", "2"});
  ASSERT_EQ(created.exitCode, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("3 PFs, 15 VFs"));
  auto listed = run({vfplane(), "devices", "--sysfs-root", root, "--json"});
  ASSERT_EQ(listed.exitCode, 0) << listed.err;
  EXPECT_THAT(listed.out, HasSubstr("\"pci\": \"0000:41:00.0\""));

  auto again = run({vfplane(), "sim", "create", "--root", root});
  EXPECT_NE(again.exitCode, 0);
  EXPECT_THAT(again.err, HasSubstr("not empty"));

  auto destroyed = run({vfplane(), "sim", "destroy", "--root", root});
  ASSERT_EQ(destroyed.exitCode, 0) << destroyed.err;
  EXPECT_FALSE(fs::exists(root));
}

TEST(SimCli, BadSpecNamesTheFlag) {
  TempDir dir;
  auto r = run({vfplane(), "sim", "create", "--root", (dir.path() / "n").string(), "--vfs", "4",
                "--vfio", "9"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_THAT(r.err, HasSubstr("--vfio: 9 is out of range 0-4"));
  EXPECT_FALSE(fs::exists(dir.path() / "n"));

  auto notNode = run({vfplane(), "sim", "destroy", "--root", dir.path().string()});
  EXPECT_EQ(notNode.exitCode, 2);
  EXPECT_THAT(notNode.err, HasSubstr("vfplane-sim.json"));
}

}  // namespace
}  // namespace vfplane
