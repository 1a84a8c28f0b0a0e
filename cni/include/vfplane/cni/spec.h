// The CNI protocol as the runtime (containerd, CRI-O, Multus) speaks it, spec 0.3.0 to 1.1.0:
// versions, error codes, the environment, and results rendered in exactly the requested version.
// Everything here is pure: parsing and rendering, no I/O.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"

namespace spdlog {
class logger;
}

namespace vfplane::cni {

// Spec error codes. Plugin-specific codes start at 100.
enum class ErrorCode : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kNotAvailable = 50,         // STATUS: the plugin cannot serve ADD now
  kLimitedConnectivity = 51,  // STATUS
};

// What a plugin prints on stdout (libcni reads stdout, not stderr) with a non-zero exit.
struct CniError {
  ErrorCode code;
  std::string msg;
  std::string details;
  nlohmann::ordered_json toJson(std::string_view cniVersion) const;
};

inline std::unexpected<CniError> cniFail(ErrorCode code, std::string msg,
                                         std::string details = "") {
  return std::unexpected<CniError>(CniError{code, std::move(msg), std::move(details)});
}
// Code 5 with the library error's message, prefixed by `what` when given.
std::unexpected<CniError> ioError(const Error& e, std::string_view what = "");
template <class T>
using CniExpected = std::expected<T, CniError>;

// ---- versions -------------------------------------------------------------------------------

// Oldest first.
const std::vector<std::string>& supportedVersions();
bool isSupportedVersion(std::string_view v);
// Semver comparison of "a.b.c" strings: <0, 0, >0. Unparseable versions sort first.
int compareVersions(std::string_view a, std::string_view b);
// {"cniVersion": <requested>, "supportedVersions": [...]}, the answer to VERSION.
nlohmann::ordered_json versionInfo(std::string_view requested);

// ---- environment ----------------------------------------------------------------------------

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };
std::optional<Command> parseCommand(std::string_view s);
const char* commandName(Command c);

struct Environment {
  Command command = Command::kVersion;
  std::string containerId;
  std::string netns;
  std::string ifname;
  // CNI_ARGS as given, in order; later keys win in `arg()`.
  std::vector<std::pair<std::string, std::string>> args;
  std::vector<std::string> path;  // CNI_PATH split on ':'
  // The whole environment the call came with (PATH, proxies, ...): what a delegate is run with,
  // under its own CNI_* variables, as the spec asks.
  std::map<std::string, std::string> base;
  // Where this call's log lines go: the config's logFile or stderr, at its logLevel. Set by
  // runPlugin; logger() is a logger that drops everything until then.
  std::shared_ptr<spdlog::logger> log;

  std::optional<std::string> arg(std::string_view key) const;
  spdlog::logger& logger() const;
};

// Validates what each command needs (ADD/DEL/CHECK: container ID, ifname; ADD/CHECK: netns;
// GC/STATUS/VERSION: nothing) with code 4 and the variable named; env itself becomes `base`.
// CNI_ARGS is parsed leniently: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" and empty
// parts are fine.
CniExpected<Environment> parseEnvironment(const std::map<std::string, std::string>& env);
// The spec's rules: 1-15 bytes, not "." or "..", no '/', ':' or whitespace.
std::optional<std::string> ifNameProblem(std::string_view name);
// The spec's pattern: alphanumeric first, then alphanumerics, '_', '.', '-'.
bool validContainerId(std::string_view id);

// ---- results --------------------------------------------------------------------------------

struct Interface {
  std::string name;
  std::string mac;
  std::optional<int> mtu;  // rendered from 1.1.0
  std::string sandbox;     // netns path; empty for host interfaces
  std::string socketPath;  // 1.1.0
  std::string pciID;       // 1.1.0
};

struct IpConfig {
  std::string address;           // CIDR, "10.1.0.5/24"
  std::string gateway;           // may be empty
  std::optional<int> interface;  // index into interfaces
  bool isV6() const { return address.find(':') != std::string::npos; }
};

struct Route {
  std::string dst;
  std::string gw;
  nlohmann::json extra = nlohmann::json::object();  // 1.1.0 mtu/advmss/priority/table/scope
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
};

struct NetResult {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<Route> routes;
  Dns dns;
};

// Reads a result of any supported version (e.g. prevResult, or an IPAM plugin's output).
CniExpected<NetResult> parseResult(const nlohmann::json& j);
// Renders in exactly `version`: 0.3.x and 0.4.0 give each IP a "version"; 1.1.0 adds interface
// mtu, socketPath and pciID. Empty lists are left out and "dns" is always there ({} when empty),
// exactly as the reference plugins' Go types render a result.
nlohmann::ordered_json renderResult(const NetResult& r, std::string_view version);

}  // namespace vfplane::cni
