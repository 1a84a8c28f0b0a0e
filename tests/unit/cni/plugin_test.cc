// The plugin skeleton: what every vfplane plugin answers before its own code runs, and how its
// answers are rendered.
#include "vfplane/cni/plugin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "vfplane/cni/exec.h"

namespace vfplane::cni {
namespace {
using testing::HasSubstr;
using Json = nlohmann::json;

class RecordingPlugin : public Plugin {
 public:
  CniExpected<NetResult> add(Request& req) override {
    calls.push_back("ADD");
    sawNetns = req.netns.has_value();
    NetResult r;
    r.interfaces.push_back({.name = req.env.ifname,
                            .mac = "02:00:00:00:00:01",
                            .mtu = 1500,
                            .sandbox = req.env.netns,
                            .socketPath = "",
                            .pciID = "0000:01:01.0"});
    r.ips.push_back({.address = "10.0.0.2/24", .gateway = "10.0.0.1", .interface = 0});
    return r;
  }
  CniExpected<void> del(Request& req) override {
    calls.push_back("DEL");
    sawNetns = req.netns.has_value();
    return {};
  }
  CniExpected<void> check(Request& req) override {
    calls.push_back("CHECK");
    logger = req.env.log;
    base = req.env.base;
    if (logger) logger->info("CHECK logged through the request's logger");
    return {};
  }
  CniExpected<void> gc(Request& req) override {
    calls.push_back("GC");
    valid = req.validAttachments;
    return {};
  }
  CniExpected<void> status(Request&) override {
    calls.push_back("STATUS");
    return cniFail(ErrorCode::kNotAvailable, "not ready");
  }
  std::vector<std::string> calls;
  std::vector<AttachmentId> valid;
  bool sawNetns = false;
  std::shared_ptr<spdlog::logger> logger;
  std::map<std::string, std::string> base;
};

std::map<std::string, std::string> env(const std::string& command,
                                       const std::string& netns = "/proc/self/ns/net") {
  return {{"CNI_COMMAND", command},
          {"CNI_CONTAINERID", "ctr1"},
          {"CNI_NETNS", netns},
          {"CNI_IFNAME", "net1"},
          {"CNI_PATH", "/usr/lib/cni"}};
}

std::string conf(const std::string& version, const std::string& extra = "") {
  return R"({"cniVersion":")" + version + R"(","name":"n","type":"vfplane-test")" + extra + "}";
}

int codeOf(const RunOutcome& o) { return Json::parse(o.out).at("code").get<int>(); }

const RunOptions kAllowOwn{.allowOwnNetns = true};

TEST(PluginSkeletonTest, VersionListsEverySupportedVersion) {
  RecordingPlugin p;
  auto o = runPlugin(p, {{"CNI_COMMAND", "VERSION"}}, R"({"cniVersion":"0.4.0"})");
  EXPECT_EQ(o.exitCode, 0);
  auto j = Json::parse(o.out);
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["supportedVersions"], Json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
  EXPECT_TRUE(p.calls.empty());
}

TEST(PluginSkeletonTest, ResultInTheRequestedVersion) {
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    SCOPED_TRACE(v);
    RecordingPlugin p;
    auto o = runPlugin(p, env("ADD"), conf(v), kAllowOwn);
    ASSERT_EQ(o.exitCode, 0) << o.out;
    auto j = Json::parse(o.out);
    EXPECT_EQ(j["cniVersion"], v);
    bool old = std::string(v) < "1.0.0";
    EXPECT_EQ(j["ips"][0].contains("version"), old);
    bool v11 = std::string(v) == "1.1.0";
    EXPECT_EQ(j["interfaces"][0].contains("pciID"), v11);
    EXPECT_EQ(j["interfaces"][0].contains("mtu"), v11);
    EXPECT_TRUE(p.sawNetns);
  }
}

TEST(PluginSkeletonTest, CheckNeeds040AndGcStatusNeed110) {
  RecordingPlugin p;
  auto check = runPlugin(p, env("CHECK"), conf("0.3.1"), kAllowOwn);
  EXPECT_EQ(check.exitCode, 1);
  EXPECT_EQ(codeOf(check), 1);
  EXPECT_THAT(check.out, HasSubstr("0.4.0"));
  for (const char* cmd : {"GC", "STATUS"}) {
    auto o = runPlugin(p, env(cmd), conf("1.0.0"), kAllowOwn);
    EXPECT_EQ(codeOf(o), 1) << cmd;
  }
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(runPlugin(p, env("CHECK"), conf("0.4.0"), kAllowOwn).exitCode, 0);
}

TEST(PluginSkeletonTest, ErrorsAreJsonOnStdoutWithTheSpecCode) {
  RecordingPlugin p;
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), "{not json", kAllowOwn)), 6);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), "[1,2]", kAllowOwn)), 6);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), conf("9.9.9"), kAllowOwn)), 1);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), R"({"cniVersion":"1.0.0","type":"x"})", kAllowOwn)), 7);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), conf("1.0.0", R"(,"ipam":{"subnet":"10.0.0.0/8"})"),
                             kAllowOwn)),
            7);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD"), conf("1.0.0", R"(,"logLevel":"chatty")"), kAllowOwn)),
            7);
  auto badEnv = env("ADD");
  badEnv["CNI_IFNAME"] = "this-name-is-too-long";
  auto o = runPlugin(p, badEnv, conf("1.0.0"), kAllowOwn);
  EXPECT_EQ(codeOf(o), 4);
  EXPECT_THAT(o.out, HasSubstr("CNI_IFNAME"));
  auto noCommand = env("ADD");
  noCommand.erase("CNI_COMMAND");
  EXPECT_EQ(codeOf(runPlugin(p, noCommand, conf("1.0.0"), kAllowOwn)), 4);
  EXPECT_TRUE(p.calls.empty());
}

TEST(PluginSkeletonTest, NetnsMustBeANetworkNamespace) {
  RecordingPlugin p;
  test::TempDir dir;
  test::writeFile(dir.path() / "plain", "");
  auto o = runPlugin(p, env("ADD", (dir.path() / "plain").string()), conf("1.0.0"));
  EXPECT_EQ(codeOf(o), 4);
  EXPECT_THAT(o.out, HasSubstr("CNI_NETNS"));
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD", "/proc/self/ns/uts"), conf("1.0.0"))), 4);
  EXPECT_EQ(codeOf(runPlugin(p, env("ADD", (dir.path() / "missing").string()), conf("1.0.0"))), 4);
  EXPECT_TRUE(p.calls.empty());
}

TEST(PluginSkeletonTest, OwnNetnsIsCode8UnlessAllowed) {
  RecordingPlugin p;
  auto o = runPlugin(p, env("ADD", "/proc/self/ns/net"), conf("1.0.0"));
  EXPECT_EQ(codeOf(o), 8);
  EXPECT_THAT(o.out, HasSubstr("own network namespace"));
  EXPECT_TRUE(p.calls.empty());
  EXPECT_EQ(runPlugin(p, env("ADD", "/proc/self/ns/net"), conf("1.0.0"), kAllowOwn).exitCode, 0);
}

TEST(PluginSkeletonTest, DelWithAGoneNetnsStillRuns) {
  RecordingPlugin p;
  auto o = runPlugin(p, env("DEL", "/var/run/netns/vfplane-no-such-ns"), conf("1.0.0"));
  EXPECT_EQ(o.exitCode, 0) << o.out;
  EXPECT_EQ(p.calls, std::vector<std::string>{"DEL"});
  EXPECT_FALSE(p.sawNetns);
  auto noNetns = env("DEL");
  noNetns.erase("CNI_NETNS");
  EXPECT_EQ(runPlugin(p, noNetns, conf("1.0.0")).exitCode, 0);
}

TEST(PluginSkeletonTest, GcGetsTheValidAttachments) {
  RecordingPlugin p;
  auto o = runPlugin(
      p, env("GC"),
      conf("1.1.0", R"(,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"net1"}])"));
  EXPECT_EQ(o.exitCode, 0) << o.out;
  ASSERT_EQ(p.valid.size(), 1u);
  EXPECT_EQ(p.valid[0].containerId, "a");
  auto bad =
      runPlugin(p, env("GC"), conf("1.1.0", R"(,"cni.dev/valid-attachments":[{"containerID":1}])"));
  EXPECT_EQ(codeOf(bad), 7);
}

TEST(PluginSkeletonTest, StatusErrorCodePassesThrough) {
  RecordingPlugin p;
  auto o = runPlugin(p, env("STATUS"), conf("1.1.0"));
  EXPECT_EQ(o.exitCode, 1);
  EXPECT_EQ(codeOf(o), 50);
}

TEST(PluginSkeletonTest, TheHandlerLogsThroughTheRequestNotAGlobalLogger) {
  test::TempDir dir;
  auto before = spdlog::default_logger();
  RecordingPlugin p;
  std::string logFile = (dir.path() / "plugin.log").string();
  auto o =
      runPlugin(p, env("CHECK"),
                conf("1.0.0", R"(,"logLevel":"debug","logFile":")" + logFile + R"(")"), kAllowOwn);
  EXPECT_EQ(o.exitCode, 0) << o.out;
  EXPECT_EQ(spdlog::default_logger(), before) << "runPlugin must not replace the process's logger";
  ASSERT_NE(p.logger, nullptr);
  EXPECT_EQ(p.logger->level(), spdlog::level::debug);
  EXPECT_THAT(test::readFile(logFile), HasSubstr("CHECK logged through the request's logger"));
  EXPECT_EQ(p.base.at("CNI_IFNAME"), "net1") << "the request's own environment rides along";
}

TEST(PluginSkeletonTest, DelegatesRunWithTheRequestsEnvironmentNotTheProcesses) {
  test::TempDir dir;
  // A delegate that answers ADD with a result naming the marker it was started with.
  std::filesystem::path delegate = dir.path() / "env-ipam";
  test::writeFile(delegate,
                  "#!/bin/sh\nprintf '{\"cniVersion\":\"1.0.0\",\"ips\":[],\"marker\":\"%s\"}' "
                  "\"$VFPLANE_MARK\"\n");
  std::filesystem::permissions(delegate, std::filesystem::perms::owner_all);
  ::setenv("VFPLANE_MARK", "process", 1);
  Environment e;
  e.command = Command::kAdd;
  e.containerId = "ctr1";
  e.ifname = "net1";
  e.netns = "/proc/self/ns/net";
  e.path = {dir.path().string()};
  e.base = {{"PATH", "/usr/bin:/bin"}, {"VFPLANE_MARK", "request"}};
  auto j = invokePlugin(delegate.string(), e, Command::kAdd, conf("1.0.0"));
  ::unsetenv("VFPLANE_MARK");
  ASSERT_TRUE(j) << j.error().msg;
  EXPECT_EQ((*j)["marker"], "request");
}

TEST(PluginSkeletonTest, ACapabilityProbeThatCannotAskSaysWhy) {
  test::TempDir dir;
  Environment e;
  e.path = {dir.path().string()};
  e.base = {{"PATH", "/usr/bin:/bin"}};
  auto missing = pluginSupports(e, "no-such-ipam", "1.1.0");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(missing.error().msg, HasSubstr("no-such-ipam"));

  std::filesystem::path broken = dir.path() / "broken-ipam";
  test::writeFile(
      broken, "#!/bin/sh\nprintf '{\"code\":3,\"msg\":\"cannot read its own config\"}'\nexit 1\n");
  std::filesystem::permissions(broken, std::filesystem::perms::owner_all);
  auto failed = pluginSupports(e, "broken-ipam", "1.1.0");
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().msg, HasSubstr("cannot read its own config"));

  std::filesystem::path old = dir.path() / "old-ipam";
  test::writeFile(old,
                  "#!/bin/sh\nprintf "
                  "'{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}'\n");
  std::filesystem::permissions(old, std::filesystem::perms::owner_all);
  auto answer = pluginSupports(e, "old-ipam", "1.1.0");
  ASSERT_TRUE(answer) << answer.error().msg;
  EXPECT_FALSE(*answer) << "a delegate that speaks no 1.1.0 is a plain no, not an error";
}

}  // namespace
}  // namespace vfplane::cni
