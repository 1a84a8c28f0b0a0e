#include "vfplane/cni/spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vfplane::cni {
namespace {
using testing::HasSubstr;

std::map<std::string, std::string> addEnv() {
  return {{"CNI_COMMAND", "ADD"},
          {"CNI_CONTAINERID", "abc123"},
          {"CNI_NETNS", "/var/run/netns/p"},
          {"CNI_IFNAME", "net1"},
          {"CNI_PATH", "/opt/cni/bin::/usr/lib/cni"}};
}

TEST(CniVersions, SupportedListAndOrdering) {
  EXPECT_EQ(supportedVersions(),
            (std::vector<std::string>{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
  EXPECT_TRUE(isSupportedVersion("0.4.0"));
  EXPECT_FALSE(isSupportedVersion("0.2.0"));
  EXPECT_FALSE(isSupportedVersion("1.1"));
  EXPECT_LT(compareVersions("0.3.1", "0.4.0"), 0);
  EXPECT_GT(compareVersions("1.1.0", "1.0.0"), 0);
  EXPECT_EQ(compareVersions("1.0.0", "1.0.0"), 0);
  EXPECT_LT(compareVersions("junk", "0.1.0"), 0);
  auto info = versionInfo("0.4.0");
  EXPECT_EQ(info["cniVersion"], "0.4.0");
  EXPECT_EQ(info["supportedVersions"].size(), 5u);
}

TEST(CniError, JsonShape) {
  CniError e{ErrorCode::kTryAgainLater, "VF 0000:3b:01.0 is in use", "owner: pod a/b"};
  auto j = e.toJson("1.0.0");
  EXPECT_EQ(
      j.dump(),
      R"({"cniVersion":"1.0.0","code":11,"msg":"VF 0000:3b:01.0 is in use","details":"owner: pod a/b"})");
  CniError plain{ErrorCode::kIoFailure, "x", ""};
  EXPECT_FALSE(plain.toJson("1.1.0").contains("details"));
}

TEST(CniEnvironment, ParsesKubeletArgsLeniently) {
  auto env = addEnv();
  env["CNI_ARGS"] =
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;;K8S_POD_INFRA_CONTAINER_ID="
      "abc123;MAC=";
  auto e = parseEnvironment(env);
  ASSERT_TRUE(e) << e.error().msg;
  EXPECT_EQ(e->command, Command::kAdd);
  EXPECT_EQ(e->arg("K8S_POD_NAME"), "web-0");
  EXPECT_EQ(e->arg("MAC"), "");
  EXPECT_FALSE(e->arg("IP").has_value());
  EXPECT_EQ(e->path, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
}

TEST(CniEnvironment, DelWithoutNetnsIsFineAndVersionNeedsNothing) {
  auto env = addEnv();
  env["CNI_COMMAND"] = "DEL";
  env.erase("CNI_NETNS");
  EXPECT_TRUE(parseEnvironment(env));
  EXPECT_TRUE(parseEnvironment({{"CNI_COMMAND", "VERSION"}}));
  EXPECT_TRUE(parseEnvironment({{"CNI_COMMAND", "STATUS"}}));
  EXPECT_TRUE(parseEnvironment({{"CNI_COMMAND", "GC"}}));
}

struct BadEnv {
  const char* key;
  const char* value;  // nullptr: unset
  const char* message;
};

class CniEnvironmentRejects : public testing::TestWithParam<BadEnv> {};

TEST_P(CniEnvironmentRejects, WithCodeFourNamingTheVariable) {
  auto env = addEnv();
  if (GetParam().value == nullptr) {
    env.erase(GetParam().key);
  } else {
    env[GetParam().key] = GetParam().value;
  }
  auto e = parseEnvironment(env);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, ErrorCode::kInvalidEnvironment);
  EXPECT_THAT(e.error().msg, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    BadEnvironments, CniEnvironmentRejects,
    testing::Values(BadEnv{"CNI_COMMAND", nullptr, "CNI_COMMAND is not set"},
                    BadEnv{"CNI_COMMAND", "add", "CNI_COMMAND \"add\""},
                    BadEnv{"CNI_CONTAINERID", nullptr, "CNI_CONTAINERID is not set"},
                    BadEnv{"CNI_CONTAINERID", "-abc", "CNI_CONTAINERID \"-abc\""},
                    BadEnv{"CNI_CONTAINERID", "a/b", "CNI_CONTAINERID"},
                    BadEnv{"CNI_IFNAME", nullptr, "CNI_IFNAME is not set"},
                    BadEnv{"CNI_IFNAME", "", "CNI_IFNAME is empty"},
                    BadEnv{"CNI_IFNAME", "eth0123456789012", "longer than 15"},
                    BadEnv{"CNI_IFNAME", "..", "reserved"},
                    BadEnv{"CNI_IFNAME", "a/b", "contains '/'"},
                    BadEnv{"CNI_IFNAME", "a b", "whitespace"}, BadEnv{"CNI_IFNAME", "a:b", "':'"},
                    BadEnv{"CNI_NETNS", nullptr, "CNI_NETNS is not set"},
                    BadEnv{"CNI_ARGS", "K8S_POD_NAME",
                           "CNI_ARGS part \"K8S_POD_NAME\" is not KEY=VALUE"},
                    BadEnv{"CNI_ARGS", "=x", "is not KEY=VALUE"}));

NetResult sampleResult() {
  NetResult r;
  r.interfaces.push_back(
      {"net1", "02:00:00:00:00:01", 9000, "/var/run/netns/p", "", "0000:3b:01.0"});
  r.ips.push_back({"10.1.0.5/24", "10.1.0.1", 0});
  r.ips.push_back({"fd00::5/64", "", 0});
  r.routes.push_back({"0.0.0.0/0", "10.1.0.1", nlohmann::json{{"priority", 100}}});
  r.dns.nameservers = {"10.1.0.53"};
  return r;
}

TEST(CniResult, RenderedPerVersion) {
  auto r = sampleResult();
  auto v031 = renderResult(r, "0.3.1");
  EXPECT_EQ(v031["cniVersion"], "0.3.1");
  EXPECT_EQ(v031["ips"][0]["version"], "4");
  EXPECT_EQ(v031["ips"][1]["version"], "6");
  EXPECT_FALSE(v031["interfaces"][0].contains("mtu"));
  EXPECT_FALSE(v031["interfaces"][0].contains("pciID"));
  EXPECT_FALSE(v031["routes"][0].contains("priority"));
  EXPECT_EQ(renderResult(r, "0.4.0")["ips"][0]["version"], "4");

  auto v100 = renderResult(r, "1.0.0");
  EXPECT_FALSE(v100["ips"][0].contains("version"));
  EXPECT_FALSE(v100["interfaces"][0].contains("mtu"));

  auto v110 = renderResult(r, "1.1.0");
  EXPECT_EQ(
      v110.dump(),
      R"({"cniVersion":"1.1.0","interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","mtu":9000,)"
      R"("sandbox":"/var/run/netns/p","pciID":"0000:3b:01.0"}],"ips":[{"interface":0,"address":"10.1.0.5/24",)"
      R"("gateway":"10.1.0.1"},{"interface":0,"address":"fd00::5/64"}],"routes":[{"dst":"0.0.0.0/0",)"
      R"("gw":"10.1.0.1","priority":100}],"dns":{"nameservers":["10.1.0.53"]}})");
}

TEST(CniResult, KeysAsTheReferencePluginsPrintThem) {
  // Go's result types omit empty lists but always print "dns", as {} when empty.
  NetResult r;
  r.interfaces.push_back({"net1", "02:00:00:00:00:01", std::nullopt, "/var/run/netns/p", "", ""});
  for (const auto& v : supportedVersions()) {
    auto j = renderResult(r, v);
    EXPECT_FALSE(j.contains("ips")) << v;
    EXPECT_FALSE(j.contains("routes")) << v;
    ASSERT_TRUE(j.contains("dns")) << v;
    EXPECT_EQ(j["dns"], nlohmann::json::object()) << v;
  }
}

TEST(CniResult, ParsesAnyVersionAndRoundTrips) {
  auto r = sampleResult();
  for (const auto& v : supportedVersions()) {
    auto parsed = parseResult(nlohmann::json::parse(renderResult(r, v).dump()));
    ASSERT_TRUE(parsed) << v;
    EXPECT_EQ(renderResult(*parsed, v), renderResult(r, v)) << v;
  }
  // host-local's output, as Debian's plugin prints it for 0.4.0.
  auto hostLocal = parseResult(nlohmann::json::parse(
      R"({"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.1.0.2/24","gateway":"10.1.0.1"}],"dns":{}})"));
  ASSERT_TRUE(hostLocal);
  EXPECT_EQ(hostLocal->ips.at(0).address, "10.1.0.2/24");
  EXPECT_FALSE(hostLocal->ips[0].interface.has_value());
  EXPECT_FALSE(parseResult(nlohmann::json::parse(R"({"ips":[{"gateway":"x"}]})")));
  EXPECT_EQ(parseResult(nlohmann::json::parse("[]")).error().code, ErrorCode::kDecodeFailure);
}

}  // namespace
}  // namespace vfplane::cni
