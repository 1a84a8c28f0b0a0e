// vfplane: the operator's command-line tool. Each part of vfplane adds its own subcommands.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "vfplane/base/exit_code.h"
#include "vfplane/cni/cli.h"
#include "vfplane/dp/cli.h"
#include "vfplane/sriov/cli.h"

int main(int argc, char** argv) {
  // Results go to stdout, diagnostics to stderr, so `vfplane devices --json | jq` stays clean.
  auto logger = spdlog::stderr_color_mt("vfplane");
  logger->set_pattern("%^%l%$: %v");
  spdlog::set_default_logger(logger);

  CLI::App app("vfplane: SR-IOV device plugin, CNI and forwarding tools for Kubernetes nodes",
               "vfplane");
  app.require_subcommand(1);
  std::string logLevel = "info";
  app.add_option("--log-level", logLevel, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.parse_complete_callback([&] { spdlog::set_level(spdlog::level::from_str(logLevel)); });

  int exitCode = vfplane::kExitOk;
  vfplane::sriov::addCliCommands(app, exitCode);
  vfplane::dp::addCliCommands(app, exitCode);
  vfplane::cni::addCliCommands(app, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? vfplane::kExitOk : vfplane::kExitUsage;
  }
  return exitCode;
}
