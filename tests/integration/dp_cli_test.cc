// vfplane-device-plugin and `vfplane dp` as an operator runs them: exit codes and messages.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "test_support.h"
#include "vfplane/sriov/sim_node.h"

extern char** environ;

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
  for (
      auto c :
      {Case{R"({"resourceList": [{"resourceName": "a b", "selectors": {}}]})",
            "resourceList[0] (a b): resourceName"},
       Case{
           R"({"resourceList": [{"resourceName": "a", "selectors": {}}, {"resourceName": "a", "selectors": {}}]})",
           "already defined by resourceList[0]"},
       Case{R"({"resourceList": [{"resourceName": "a", "selectors": {"pfNames": ["p#x"]}}]})",
            "pfNames[0]"},
       Case{R"({"resourceList": [{"resourceName": "a", "deviceType": "fpga", "selectors": {}}]})",
            "deviceType"},
       // Not JSON at all is a config error too (it used to exit 1: its error had no errno).
       Case{R"({"resourceList": [)", "not valid JSON"}}) {
    test::writeFile(dir.path() / "config.json", c.json);
    auto r = run({plugin(), "--config", (dir.path() / "config.json").string(), "--kubelet-dir",
                  dir.path().string()});
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
  auto interval =
      run({plugin(), "--config", (dir.path() / "c.json").string(), "--rescan-interval", "soon"});
  EXPECT_EQ(interval.exitCode, 2);
  EXPECT_THAT(interval.err, HasSubstr("--rescan-interval soon"));
  EXPECT_EQ(run({plugin(), "--no-such-flag"}).exitCode, 2);
  auto help = run({plugin(), "--help"});
  EXPECT_EQ(help.exitCode, 0);
  for (const char* flag : {"--config", "--resource-prefix", "--kubelet-dir", "--sysfs-root",
                           "--devinfo-dir", "--metrics-address", "--rescan-interval", "--log-level",
                           "--allow-default-route-devices", "--use-cdi", "--cdi-dir"}) {
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

using test::freePort;
using test::httpGet;

TEST(DpCli, ServesMetricsAndHealthz) {
  test::TempDir dir;
  ASSERT_TRUE(sriov::createSimNode({.root = dir.path() / "node", .pfs = 1, .vfs = 3}, nullptr));
  test::writeFile(
      dir.path() / "config.json",
      R"({"resourceList": [{"resourceName": "a", "selectors": {"drivers": ["iavf"]}}]})");
  std::filesystem::create_directories(dir.path() / "kubelet/device-plugins");
  int port = freePort();
  pid_t pid = test::spawnProcess({plugin(), "--config", (dir.path() / "config.json").string(),
                                  "--kubelet-dir", (dir.path() / "kubelet").string(),
                                  "--sysfs-root", (dir.path() / "node").string(),
                                  "--metrics-address", "127.0.0.1:" + std::to_string(port)});
  ASSERT_GT(pid, 0);
  // Bounded wait for the process to come up; the assertions below do not depend on timing.
  std::string metrics = test::httpGetUntil(port, "/metrics", "vfplane_dp_devices{");
  // One good and one refused Allocate, counted under the resource.
  std::string sock = (dir.path() / "kubelet/device-plugins/intel.com_a.sock").string();
  EXPECT_EQ(run({vfplane(), "dp", "allocate", "--socket", sock, "0000:01:01.0"}).exitCode, 0);
  EXPECT_NE(run({vfplane(), "dp", "allocate", "--socket", sock, "0000:99:99.0"}).exitCode, 0);
  metrics = httpGet(port, "/metrics");
  // SIGHUP reloads the config even though the file did not change. A reload rescans too, so the
  // counts above are read before it.
  ::kill(pid, SIGHUP);
  std::string reloaded = test::httpGetUntil(port, "/metrics", "vfplane_dp_reloads_total 1");
  std::string healthz = httpGet(port, "/healthz");
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_THAT(metrics, HasSubstr("200 OK"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(vfplane_dp_devices{health="Healthy",resource="intel.com/a"} 3)"));
  EXPECT_THAT(metrics, HasSubstr("vfplane_dp_rescans_total 1"));
  EXPECT_THAT(metrics, HasSubstr(R"(vfplane_dp_allocate_total{resource="intel.com/a"} 2)"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(vfplane_dp_allocate_failures_total{resource="intel.com/a"} 1)"));
  EXPECT_THAT(metrics, HasSubstr("vfplane_dp_reloads_total 0"));
  EXPECT_THAT(reloaded, HasSubstr("vfplane_dp_reloads_total 1"));
  EXPECT_THAT(reloaded, HasSubstr("vfplane_dp_reload_errors_total 0"));
  EXPECT_THAT(healthz, HasSubstr("200 OK"));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM is a clean shutdown";
}

}  // namespace
}  // namespace vfplane
