// The `vfplane devices` and `vfplane sim` operator commands, for the vfplane tool to mount.
#pragma once

namespace CLI {
class App;
}

namespace vfplane::sriov {

// Adds the subcommands to app. When one of them runs, its exit code (vfplane/base/exit_code.h)
// is stored in exitCode.
void addCliCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::sriov
