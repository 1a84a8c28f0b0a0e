// The `vfplane cni` operator commands: exec (run a CNI plugin exactly as a runtime does).
#pragma once

#include <CLI/CLI.hpp>

namespace vfplane::cli {

void addCniCommands(CLI::App& app, int& exitCode);

}  // namespace vfplane::cli
