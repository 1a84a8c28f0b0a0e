// IPAM delegation against Debian's reference plugins in /usr/lib/cni, run exactly as a runtime
// would run them: same CNI_* environment, the config on stdin.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "test_support.h"
#include "vfplane/cni/exec.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using testing::HasSubstr;

constexpr const char* kRefDir = "/usr/lib/cni";

class CniIpamTest : public testing::Test {
 protected:
  void SetUp() override {
    if (::access((std::string(kRefDir) + "/host-local").c_str(), X_OK) != 0) {
      GTEST_SKIP() << "Debian's containernetworking-plugins is not installed (" << kRefDir
                   << "/host-local); scripts/setup installs it";
    }
    env_.command = Command::kAdd;
    env_.containerId = "ctr-1";
    env_.netns = "/var/run/netns/none";  // host-local never enters it
    env_.ifname = "net1";
    env_.path = {(dir_.path() / "empty").string(), kRefDir};
  }
  std::string config(const std::string& version, const std::string& range = "10.77.0.0/29") {
    return fmt::format(R"({{"cniVersion": "{}", "name": "testnet", "type": "vfplane-sriov",
      "ipam": {{"type": "host-local", "dataDir": "{}", "ranges": [[{{"subnet": "{}"}}]],
                "routes": [{{"dst": "0.0.0.0/0"}}]}}}})",
                       version, (dir_.path() / "ipam").string(), range);
  }
  std::vector<std::string> reservations() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_.path() / "ipam/testnet")) {
      std::string n = e.path().filename().string();
      if (n != "lock" && !n.starts_with("last_reserved_ip")) out.push_back(n);
    }
    return out;
  }

  test::TempDir dir_;
  Environment env_;
};

TEST_F(CniIpamTest, AddAndDelThroughHostLocalInEveryVersion) {
  for (const auto& version : supportedVersions()) {
    SCOPED_TRACE(version);
    auto added = ipamAdd(env_, config(version), "host-local");
    ASSERT_TRUE(added) << added.error().msg;
    ASSERT_EQ(added->ips.size(), 1u);
    EXPECT_THAT(added->ips[0].address, testing::StartsWith("10.77.0."));
    EXPECT_EQ(added->ips[0].gateway, "10.77.0.1");
    EXPECT_EQ(added->routes.at(0).dst, "0.0.0.0/0");
    EXPECT_EQ(reservations().size(), 1u);
    ASSERT_TRUE(ipamDelegate(env_, Command::kDel, config(version), "host-local"));
    EXPECT_TRUE(reservations().empty()) << "DEL released the address";
  }
}

TEST_F(CniIpamTest, DelegateErrorsKeepTheirCodeAndName) {
  auto exhausted = [&] {
    // A /30 has one usable address besides the gateway.
    for (int i = 0; i < 3; ++i) {
      env_.containerId = "ctr-" + std::to_string(i);
      auto r = ipamAdd(env_, config("1.0.0", "10.78.0.0/30"), "host-local");
      if (!r) return r.error();
    }
    return CniError{ErrorCode::kIoFailure, "no error", ""};
  }();
  EXPECT_THAT(exhausted.msg, HasSubstr("host-local: "));
  EXPECT_THAT(exhausted.msg, HasSubstr("no IP addresses available"));

  auto missing = ipamAdd(env_, config("1.0.0"), "no-such-ipam");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(missing.error().msg, HasSubstr("failed to find plugin \"no-such-ipam\" in path"));

  auto traversal = ipamAdd(env_, config("1.0.0"), "../bin/sh");
  ASSERT_FALSE(traversal);
  EXPECT_EQ(traversal.error().code, ErrorCode::kInvalidConfig);
}

TEST_F(CniIpamTest, RunProcessPassesStdinAndEnvironment) {
  auto out = runProcess("/bin/sh", {{"A", "1"}, {"PATH", "/usr/bin:/bin"}}, "");
  ASSERT_TRUE(out);
  auto cat = runProcess("/bin/cat", {}, std::string(200000, 'x'));
  ASSERT_TRUE(cat);
  EXPECT_EQ(cat->out.size(), 200000u) << "large stdin and stdout both flow without deadlock";
  // A child that never reads its stdin (a plugin failing early) must not kill us with SIGPIPE.
  for (int i = 0; i < 20; ++i) {
    auto early = runProcess("/bin/true", {}, std::string(1 << 20, 'x'));
    ASSERT_TRUE(early);
    EXPECT_EQ(early->exitCode, 0);
  }
  auto missing = runProcess("/nonexistent/plugin", {}, "");
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().message(), HasSubstr("/nonexistent/plugin"));
}

}  // namespace
}  // namespace vfplane::cni
