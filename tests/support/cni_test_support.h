// Helpers for the CNI plugin tests: run a plugin as a runtime does and look at what it left in a
// namespace.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "test_support.h"
#include "vfplane/cni/plugin.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::test {

// A plugin run: exit code, stdout, stderr.
struct CniOutcome {
  int exitCode = -1;
  std::string out;
  std::string err;
  nlohmann::json json() const { return nlohmann::json::parse(out, nullptr, false); }
  // The error JSON's code, -1 when stdout is not an error.
  int code() const;
};

// Execs `binary` with exactly `env` and `config` on stdin.
CniOutcome runCni(const std::string& binary, const std::map<std::string, std::string>& env,
                  const std::string& config);

// The config with "prevResult" set to `result` (a plugin's ADD output), for CHECK and chained DEL.
std::string withPrevResult(const std::string& config, const std::string& result);

// Link `name` in the namespace at nsPath ("" for the caller's own); nullopt when it is not there.
std::optional<netlink::LinkInfo> linkIn(const std::string& nsPath, const std::string& name);
// Link ifindex's addresses there, as "10.1.0.5/24".
std::vector<std::string> addressesIn(const std::string& nsPath, int ifindex);
// The main table's routes there, one family, as "dst via gw dev <ifindex>" ("via" only with a gw).
std::vector<std::string> routesIn(const std::string& nsPath, int family);

// Every key of a JSON value as a path ("interfaces[].mac"), so two plugins' results compare by
// shape.
std::set<std::string> keyPaths(const nlohmann::json& j, const std::string& prefix = "");

// A pod namespace for a test; on failure the test fails with the reason and nullptr comes back.
std::unique_ptr<PodNetns> newPod();

// host-local's reservations in one network's directory: every file but "lock" and
// "last_reserved_ip.*".
size_t ipamReservations(const std::filesystem::path& networkDir);

// A request as runPlugin would hand it to a plugin, for unit tests that call the plugin directly:
// container ID, CNI_IFNAME net1, the config parsed, and CNI_NETNS this process's own namespace
// (which a fake kernel stands in for).
cni::Request pluginRequest(cni::Command command, const std::string& containerId,
                           const std::string& config);

}  // namespace vfplane::test
