// The `vfplane cni` operator commands: exec (run a CNI plugin exactly as a runtime does) and
// install (put the plugins into a node's CNI bin dir, atomically, as the DaemonSet does).
#pragma once

namespace CLI {
class App;
}

namespace vfplane::cni {

// Adds `cni` and its subcommands to app. When one of them runs, its exit code is stored in
// exitCode: the plugin's own for `exec`, else one of vfplane/base/exit_code.h.
void addCliCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::cni
