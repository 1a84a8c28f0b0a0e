// Running CNI plugins as a runtime does: find the binary on CNI_PATH, pass the CNI_* environment
// and the config on stdin, read the result or the error JSON from stdout. Used for IPAM
// delegation inside plugins, by the test runner, and by `vfplane cni exec`.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/cni/spec.h"

namespace vfplane::cni {

struct ExecOutput {
  int exitCode = -1;  // -1: killed by a signal
  std::string out;
  std::string err;
};

// The first executable `type` in the path directories. A type with '/' or ".." is refused (code 7):
// plugin names come from untrusted configs.
CniExpected<std::string> findPlugin(std::string_view type, const std::vector<std::string>& path);

// Runs binary with exactly `env` as its environment and `stdinData` on stdin.
Result<ExecOutput> runProcess(const std::string& binary,
                              const std::map<std::string, std::string>& env,
                              std::string_view stdinData);

// The calling process's environment as a map.
std::map<std::string, std::string> currentEnvironment();
// One variable of it; `fallback` when unset or empty (the plugins' VFPLANE_* settings).
std::string environmentOr(const char* name, const char* fallback);

// The CNI_* variables for a call, over `base` (usually the current environment).
std::map<std::string, std::string> cniEnvironment(const Environment& e, Command command,
                                                  std::map<std::string, std::string> base);

// Invokes a plugin the way libcni does, with env.base under env's CNI_* variables, and decodes its
// answer: a result for ADD (and VERSION's
// JSON as a result is not expected), nothing for DEL/CHECK/GC/STATUS. A non-zero exit becomes the
// plugin's own error JSON when it printed one, else code 999-free I/O error naming the plugin.
CniExpected<nlohmann::json> invokePlugin(const std::string& binary, const Environment& env,
                                         Command command, std::string_view config);

// IPAM delegation: `ipam.type` from the config, found on CNI_PATH, run with the same environment
// and stdin, as the spec asks.
CniExpected<NetResult> ipamAdd(const Environment& env, std::string_view config,
                               std::string_view ipamType);
CniExpected<void> ipamDelegate(const Environment& env, Command command, std::string_view config,
                               std::string_view ipamType);

// Whether the plugin `type` on the path answers VERSION with `version` among its supported ones.
// GC and STATUS are forwarded only to delegates that speak 1.1.0. Errors say why it could not be
// asked: not on the path (code 7), or its VERSION failed or was not JSON (its own code, or 5).
CniExpected<bool> pluginSupports(const Environment& env, std::string_view type,
                                 std::string_view version);

}  // namespace vfplane::cni
