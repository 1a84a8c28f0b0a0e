// The `vfplane dp` operator commands: watch (the kubelet's side), allocate, preferred.
#pragma once

namespace CLI {
class App;
}

namespace vfplane::dp {

// Adds `dp` and its subcommands to app. When one of them runs, its exit code
// (vfplane/base/exit_code.h) is stored in exitCode.
void addCliCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::dp
