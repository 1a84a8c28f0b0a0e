// The `vfplane dp` operator commands: watch (the kubelet's side), allocate, preferred.
#pragma once

#include <CLI/CLI.hpp>

namespace vfplane::cli {

void addDpCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::cli
