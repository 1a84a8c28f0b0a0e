// vfplane-ipam and Debian's host-local on one network's state: either can release what the other
// allocated, and neither hands out an address the other holds. Both run as a runtime runs them.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "vfplane/cni/exec.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kHostLocal = "/usr/lib/cni/host-local";

class IpamInteropTest : public testing::Test {
 protected:
  void SetUp() override {
    if (::access(kHostLocal, X_OK) != 0)
      GTEST_SKIP() << kHostLocal << " is missing; scripts/setup installs it";
  }
  Json run(const std::string& binary, const std::string& type, const std::string& command,
           const std::string& id) {
    std::string config = fmt::format(
        R"({{"cniVersion":"1.0.0","name":"shared","type":"vfplane-sriov",
            "ipam":{{"type":"{}","dataDir":"{}","ranges":[[{{"subnet":"10.44.0.0/29"}}]]}}}})",
        type, dir_.path().string());
    std::map<std::string, std::string> env = {{"CNI_COMMAND", command},
                                              {"CNI_CONTAINERID", id},
                                              {"CNI_NETNS", "/proc/self/ns/net"},
                                              {"CNI_IFNAME", "net1"},
                                              {"CNI_PATH", "/usr/lib/cni"}};
    auto r = runProcess(binary, env, config);
    EXPECT_TRUE(r);
    if (!r) return Json();
    EXPECT_EQ(r->exitCode, 0) << r->out << r->err;
    return r->out.empty() ? Json::object() : Json::parse(r->out, nullptr, false);
  }
  Json ours(const std::string& command, const std::string& id) {
    return run(test::builtBinary("VFPLANE_IPAM_BIN").string(), "vfplane-ipam", command, id);
  }
  Json theirs(const std::string& command, const std::string& id) {
    return run(kHostLocal, "host-local", command, id);
  }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_.path() / "shared")) {
      std::string n = e.path().filename().string();
      if (n != "lock" && !n.starts_with("last_reserved_ip")) out.push_back(n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  test::TempDir dir_;
};

TEST_F(IpamInteropTest, NeitherHandsOutWhatTheOtherHolds) {
  std::set<std::string> seen;
  for (int i = 0; i < 5; ++i) {  // .2-.6: the whole range, alternating allocators
    Json r = i % 2 == 0 ? ours("ADD", fmt::format("c{}", i)) : theirs("ADD", fmt::format("c{}", i));
    std::string a = r["ips"][0]["address"];
    EXPECT_TRUE(seen.insert(a).second) << a << " handed out twice";
  }
  EXPECT_EQ(seen.size(), 5u);
}

TEST_F(IpamInteropTest, EitherReleasesWhatTheOtherAllocated) {
  std::string a = theirs("ADD", "by-host-local")["ips"][0]["address"];
  std::string b = ours("ADD", "by-vfplane")["ips"][0]["address"];
  EXPECT_NE(a, b);
  EXPECT_EQ(files().size(), 2u);
  ours("DEL", "by-host-local");
  theirs("DEL", "by-vfplane");
  EXPECT_TRUE(files().empty()) << "no reservation file is left behind";
}

TEST(CniExecCliTest, RunsAPluginAsARuntimeDoes) {
  test::TempDir dir;
  std::string cniPath = test::builtBinary("VFPLANE_IPAM_BIN").parent_path().string();
  test::writeFile(
      dir.path() / "net.json",
      R"({"cniVersion":"1.1.0","name":"clinet","type":"x","ipam":{"type":"vfplane-ipam","dataDir":")" +
          dir.path().string() + R"(","subnet":"10.45.0.0/24"}})");
  auto run = [&](const std::string& command) {
    return test::run({test::builtBinary("VFPLANE_BIN").string(), "cni", "exec", "--plugin",
                      "vfplane-ipam", "--command", command, "--cni-path", cniPath, "--netns",
                      "/proc/self/ns/net", "--container-id", "cli1", "--config",
                      (dir.path() / "net.json").string()});
  };
  auto add = run("ADD");
  ASSERT_EQ(add.exitCode, 0) << add.out << add.err;
  EXPECT_EQ(Json::parse(add.out)["ips"][0]["address"], "10.45.0.2/24");
  EXPECT_EQ(test::readFile(dir.path() / "clinet/10.45.0.2"), "cli1\r\nnet1");
  EXPECT_EQ(run("DEL").exitCode, 0);
  EXPECT_FALSE(fs::exists(dir.path() / "clinet/10.45.0.2"));
  // The plugin's error JSON and exit status come through unchanged.
  auto bad = test::run({test::builtBinary("VFPLANE_BIN").string(), "cni", "exec", "--plugin",
                        "vfplane-ipam", "--cni-path", cniPath, "--netns", "/proc/self/ns/net",
                        "--config", "/dev/null"});
  EXPECT_EQ(bad.exitCode, 1);
  EXPECT_EQ(Json::parse(bad.out)["code"], 6);
  auto unknown = test::run({test::builtBinary("VFPLANE_BIN").string(), "cni", "exec", "--plugin",
                            "no-such-plugin", "--cni-path", cniPath, "--config", "/dev/null"});
  EXPECT_EQ(unknown.exitCode, 2);
  EXPECT_THAT(unknown.err, testing::HasSubstr("no-such-plugin"));
}

}  // namespace
}  // namespace vfplane::cni
