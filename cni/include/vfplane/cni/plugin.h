// The skeleton every vfplane CNI plugin runs in: read the environment and the network config,
// check them as the spec asks, call the plugin's handler for the command, and turn its answer
// into exactly what the runtime reads (a result in the requested version, or error JSON on
// stdout with a non-zero exit).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/cni/spec.h"
#include "vfplane/netlink/netns.h"

namespace vfplane::cni {

// The keys every network config has, plus the spec's runtime-supplied sections. Plugin-specific
// keys are read by each plugin from `raw`.
struct NetConf {
  std::string cniVersion;
  std::string name;
  std::string type;
  nlohmann::json ipam;  // null when absent
  std::optional<NetResult> prevResult;
  nlohmann::json runtimeConfig = nlohmann::json::object();
  nlohmann::json args = nlohmann::json::object();  // "args", e.g. {"cni": {"ips": [...]}}
  std::string logLevel;                            // "" when not set: the plugin's default
  std::string logFile;
  nlohmann::json raw;

  std::string ipamType() const;  // "" without IPAM
};

// Decodes stdin (code 6 when it is not a JSON object) and checks the common keys (code 7 naming
// the key; code 1 for a cniVersion this library does not speak).
CniExpected<NetConf> parseNetConf(std::string_view stdinData);

// An attachment the runtime still holds, from GC's cni.dev/valid-attachments.
struct AttachmentId {
  std::string containerId;
  std::string ifname;
  auto operator<=>(const AttachmentId&) const = default;
};

struct Request {
  Environment env;
  std::string config;  // stdin as received, for IPAM delegation
  NetConf conf;
  // CNI_NETNS, opened and checked. Always set for ADD and CHECK; for DEL only when the
  // namespace still exists.
  std::optional<netlink::Netns> netns;
  std::vector<AttachmentId> validAttachments;  // GC only
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual CniExpected<NetResult> add(Request& req) = 0;
  virtual CniExpected<void> del(Request& req) = 0;
  virtual CniExpected<void> check(Request& req) = 0;
  virtual CniExpected<void> gc(Request& req) = 0;
  virtual CniExpected<void> status(Request& req) = 0;
};

struct RunOptions {
  // Allows CNI_NETNS to be the plugin's own namespace. Off: a config mistake there would move the
  // host's devices around.
  bool allowOwnNetns = false;
};

struct RunOutcome {
  int exitCode = 0;
  std::string out;  // for stdout
};

// Everything a plugin binary does between reading its inputs and printing: VERSION, strict
// environment and config checks (CHECK needs 0.4.0, GC and STATUS need 1.1.0), the netns checks
// (code 4 when CNI_NETNS is not a network namespace, code 8 when it is our own), the handler, and
// the rendering. Pure with respect to the process: no printing, no exit, no global logger (the
// handler logs through req.env.logger()), and delegates see env, not the process environment.
RunOutcome runPlugin(Plugin& plugin, const std::map<std::string, std::string>& env,
                     std::string_view stdinData, const RunOptions& options = {});

// The whole main() of a plugin binary: "--help"/"-h" prints `help`; otherwise stdin and the
// process environment go through runPlugin and its answer to stdout. Returns the exit code.
int pluginMain(int argc, char** argv, std::string_view help, Plugin& plugin,
               const RunOptions& options = {});

// CNI code 8 is not in the spec's table; vfplane uses it for "CNI_NETNS is the plugin's own
// network namespace".
inline constexpr ErrorCode kNetnsIsOwn = static_cast<ErrorCode>(8);
// Plugin-specific (the spec reserves 100 and up): CHECK found the attachment not as ADD left it.
inline constexpr ErrorCode kCheckMismatch = static_cast<ErrorCode>(100);

// A plugin's logger for one call: stderr, or logFile when given, at logLevel ("panic", "error",
// "warning", "info", "debug"; sriov-cni's names). Unknown levels and unwritable files are code 7.
CniExpected<std::shared_ptr<spdlog::logger>> makePluginLogger(std::string_view plugin,
                                                              const NetConf& conf);

}  // namespace vfplane::cni
