// vfplane-device-plugin and `vfplane dp` as an operator runs them: exit codes and messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.h"

namespace vfplane {
namespace {
using test::run;
using testing::HasSubstr;

std::string plugin() { return test::builtBinary("VFPLANE_DP_BIN").string(); }
std::string vfplane() { return test::builtBinary("VFPLANE_BIN").string(); }

TEST(DpCli, BadConfigExitsTwoNamingEntryAndField) {
  test::TempDir dir;
  struct Case {
    const char* json;
    const char* message;
  };
  for (auto c : {Case{R"({"resourceList": [{"resourceName": "a b", "selectors": {}}]})", "resourceList[0] (a b): resourceName"},
                 Case{R"({"resourceList": [{"resourceName": "a", "selectors": {}}, {"resourceName": "a", "selectors": {}}]})",
                      "already defined by resourceList[0]"},
                 Case{R"({"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["p#x"]}}]})", "pfNames[0]"},
                 Case{R"({"resourceList": [{"resourceName": "a", "deviceType": "fpga", "selectors": {}}]})", "deviceType"}}) {
    test::writeFile(dir.path() / "config.json", c.json);
    auto r = run({plugin(), "--config", (dir.path() / "config.json").string(), "--kubelet-dir", dir.path().string()});
    EXPECT_EQ(r.exitCode, 2) << c.json << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_THAT(r.err, HasSubstr("config.json"));
  }
}

TEST(DpCli, MissingConfigAndBadFlagsExitTwo) {
  test::TempDir dir;
  auto missing = run({plugin(), "--config", (dir.path() / "nope.json").string()});
  EXPECT_EQ(missing.exitCode, 2);
  EXPECT_THAT(missing.err, HasSubstr("nope.json"));
  test::writeFile(dir.path() / "c.json", R"({"resourceList": []})");
  auto interval = run({plugin(), "--config", (dir.path() / "c.json").string(), "--rescan-interval", "soon"});
  EXPECT_EQ(interval.exitCode, 2);
  EXPECT_THAT(interval.err, HasSubstr("--rescan-interval soon"));
  EXPECT_EQ(run({plugin(), "--no-such-flag"}).exitCode, 2);
  auto help = run({plugin(), "--help"});
  EXPECT_EQ(help.exitCode, 0);
  for (const char* flag : {"--config", "--resource-prefix", "--kubelet-dir", "--sysfs-root", "--devinfo-dir",
                           "--metrics-address", "--rescan-interval", "--log-level", "--allow-default-route-devices"}) {
    EXPECT_THAT(help.out, HasSubstr(flag));
  }
}

TEST(DpCli, ClientCommandsNameAMissingSocket) {
  auto r = run({vfplane(), "dp", "allocate", "--socket", "/nonexistent/x.sock", "0000:01:01.0"});
  EXPECT_EQ(r.exitCode, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/x.sock: not a socket"));
  auto p = run({vfplane(), "dp", "preferred", "--socket", "/nonexistent/x.sock", "--size", "0"});
  EXPECT_EQ(p.exitCode, 2);
}

}  // namespace
}  // namespace vfplane
