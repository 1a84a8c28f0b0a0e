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
    if (::access(kHostLocal, X_OK) != 0) GTEST_SKIP() << kHostLocal << " is missing; scripts/setup installs it";
  }
  Json run(const std::string& binary, const std::string& type, const std::string& command, const std::string& id) {
    std::string config = fmt::format(
        R"({{"cniVersion":"1.0.0","name":"shared","type":"vfplane-sriov",
            "ipam":{{"type":"{}","dataDir":"{}","ranges":[[{{"subnet":"10.44.0.0/29"}}]]}}}})",
        type, dir_.path().string());
    std::map<std::string, std::string> env = {{"CNI_COMMAND", command}, {"CNI_CONTAINERID", id},
                                              {"CNI_NETNS", "/proc/self/ns/net"}, {"CNI_IFNAME", "net1"},
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
  Json theirs(const std::string& command, const std::string& id) { return run(kHostLocal, "host-local", command, id); }
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

}  // namespace
}  // namespace vfplane::cni
