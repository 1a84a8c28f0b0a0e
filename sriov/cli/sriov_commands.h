// The `vfplane devices` and `vfplane sim` operator commands.
#pragma once

#include <CLI/CLI.hpp>

namespace vfplane::cli {

// Exit codes shared by every vfplane command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command was right but the work failed
inline constexpr int kExitUsage = 2;    // bad arguments: fix the command line

// Adds the subcommands to app. When one of them runs, its exit code is stored in exitCode.
void addSriovCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::cli
