#include "cni_test_support.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "vfplane/cni/exec.h"
#include "vfplane/netlink/netns.h"

namespace vfplane::test {
namespace fs = std::filesystem;

int CniOutcome::code() const {
  auto j = json();
  return j.is_object() && j.contains("code") && j["code"].is_number_integer() ? j["code"].get<int>()
                                                                              : -1;
}

CniOutcome runCni(const std::string& binary, const std::map<std::string, std::string>& env,
                  const std::string& config) {
  auto r = cni::runProcess(binary, env, config);
  if (!r) return CniOutcome{-1, "", r.error().message()};
  return CniOutcome{r->exitCode, r->out, r->err};
}

std::string withPrevResult(const std::string& config, const std::string& result) {
  auto j = nlohmann::json::parse(config);
  j["prevResult"] = nlohmann::json::parse(result);
  return j.dump();
}

namespace {

std::optional<netlink::Rtnl> rtnlIn(const std::string& nsPath) {
  if (nsPath.empty()) {
    auto r = netlink::Rtnl::open();
    return r ? std::optional<netlink::Rtnl>(std::move(*r)) : std::nullopt;
  }
  auto ns = netlink::Netns::open(nsPath);
  if (!ns) return std::nullopt;
  auto r = netlink::Rtnl::openIn(*ns);
  return r ? std::optional<netlink::Rtnl>(std::move(*r)) : std::nullopt;
}

}  // namespace

std::optional<netlink::LinkInfo> linkIn(const std::string& nsPath, const std::string& name) {
  auto rtnl = rtnlIn(nsPath);
  if (!rtnl) return std::nullopt;
  auto l = rtnl->link(name);
  return l ? *l : std::nullopt;
}

std::vector<std::string> addressesIn(const std::string& nsPath, int ifindex) {
  std::vector<std::string> out;
  auto rtnl = rtnlIn(nsPath);
  if (!rtnl) return out;
  auto addresses = rtnl->addresses(ifindex);
  if (!addresses) return out;
  for (const auto& a : *addresses) out.push_back(a.str());
  return out;
}

std::vector<std::string> routesIn(const std::string& nsPath, int family) {
  std::vector<std::string> out;
  auto rtnl = rtnlIn(nsPath);
  if (!rtnl) return out;
  auto routes = rtnl->routes(family);
  if (!routes) return out;
  for (const auto& r : *routes) {
    out.push_back(fmt::format("{}{} dev {}", r.dst.str(),
                              r.gateway ? " via " + r.gateway->addressStr() : "", r.oif));
  }
  return out;
}

std::set<std::string> keyPaths(const nlohmann::json& j, const std::string& prefix) {
  std::set<std::string> out;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      std::string p = prefix.empty() ? k : prefix + "." + k;
      out.insert(p);
      out.merge(keyPaths(v, p));
    }
  } else if (j.is_array()) {
    for (const auto& v : j) out.merge(keyPaths(v, prefix + "[]"));
  }
  return out;
}

std::unique_ptr<PodNetns> newPod() {
  std::string why;
  auto pod = PodNetns::create(&why);
  if (!pod) ADD_FAILURE() << why;
  return pod ? std::make_unique<PodNetns>(std::move(*pod)) : nullptr;
}

size_t ipamReservations(const fs::path& networkDir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(networkDir, ec)) {
    std::string f = e.path().filename().string();
    if (f != "lock" && !f.starts_with("last_reserved_ip")) ++n;
  }
  return n;
}

cni::Request pluginRequest(cni::Command command, const std::string& containerId,
                           const std::string& config) {
  cni::Request req;
  req.env.command = command;
  req.env.containerId = containerId;
  req.env.ifname = "net1";
  req.env.netns = "/proc/self/ns/net";
  req.config = config;
  auto conf = cni::parseNetConf(config);
  EXPECT_TRUE(conf) << conf.error().msg;
  if (conf) req.conf = std::move(*conf);
  auto ns = netlink::Netns::open(req.env.netns);
  EXPECT_TRUE(ns) << ns.error().message();
  if (ns) req.netns.emplace(std::move(*ns));
  return req;
}

}  // namespace vfplane::test
