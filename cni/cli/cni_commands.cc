#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "vfplane/base/exit_code.h"
#include "vfplane/cni/cli.h"
#include "vfplane/cni/exec.h"
#include "vfplane/cni/spec.h"

namespace vfplane::cni {
namespace {

struct ExecArgs {
  std::string plugin;
  std::string command = "ADD";
  std::string config = "-";
  std::string netns;
  std::string ifname = "net1";
  std::string containerId = "vfplane-cli";
  std::string args;
  std::string cniPath;
};

std::vector<std::string> splitPath(const std::string& p) {
  std::vector<std::string> out;
  std::stringstream ss(p);
  for (std::string part; std::getline(ss, part, ':');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

int runExec(const ExecArgs& a) {
  std::string config;
  if (a.config == "-") {
    config.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(a.config);
    if (!in) {
      spdlog::error("--config {}: cannot open", a.config);
      return kExitUsage;
    }
    config.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto command = parseCommand(a.command);
  if (!command) {
    spdlog::error("--command {}: not one of ADD, DEL, CHECK, GC, STATUS, VERSION", a.command);
    return kExitUsage;
  }
  Environment env;
  env.command = *command;
  env.containerId = a.containerId;
  env.netns = a.netns;
  env.ifname = a.ifname;
  env.path = splitPath(a.cniPath);
  auto binary = findPlugin(a.plugin, env.path);
  if (!binary) {
    spdlog::error("--plugin: {}", binary.error().msg);
    return kExitUsage;
  }
  auto vars = cniEnvironment(env, *command, currentEnvironment());
  vars["CNI_ARGS"] = a.args;
  auto out = runProcess(*binary, vars, config);
  if (!out) {
    spdlog::error("run {}: {}", *binary, out.error().message());
    return kExitFailure;
  }
  // Exactly what the runtime would read, unchanged: the result or error JSON, and the exit code.
  std::fwrite(out->out.data(), 1, out->out.size(), stdout);
  std::fwrite(out->err.data(), 1, out->err.size(), stderr);
  spdlog::debug("{} {} exited with {}", a.plugin, a.command, out->exitCode);
  return out->exitCode < 0 ? kExitFailure : out->exitCode;
}

}  // namespace

void addCliCommands(CLI::App& app, int& exitCode) {
  auto* cni = app.add_subcommand("cni", "Run CNI plugins as a container runtime does");
  cni->require_subcommand(1);
  auto args = std::make_shared<ExecArgs>();
  const char* path = std::getenv("CNI_PATH");
  args->cniPath = path != nullptr ? path : "/opt/cni/bin:/usr/lib/cni";
  auto* exec = cni->add_subcommand(
      "exec",
      "Run one plugin command with the CNI_* environment and the config on stdin; print its stdout "
      "(result or error JSON) and exit with its status");
  exec->add_option("--plugin", args->plugin, "Plugin type, looked up on --cni-path")->required();
  exec->add_option("--command", args->command, "ADD, DEL, CHECK, GC, STATUS or VERSION")
      ->capture_default_str();
  exec->add_option("--config", args->config, "Network config file; - for stdin")
      ->capture_default_str();
  exec->add_option("--netns", args->netns, "CNI_NETNS: path of the pod's network namespace");
  exec->add_option("--ifname", args->ifname, "CNI_IFNAME")->capture_default_str();
  exec->add_option("--container-id", args->containerId, "CNI_CONTAINERID")->capture_default_str();
  exec->add_option("--args", args->args, "CNI_ARGS, e.g. IgnoreUnknown=1;K8S_POD_NAME=p");
  exec->add_option("--cni-path", args->cniPath,
                   "CNI_PATH (default: $CNI_PATH, else /opt/cni/bin:/usr/lib/cni)")
      ->capture_default_str();
  exec->callback([args, &exitCode] { exitCode = runExec(*args); });
}

}  // namespace vfplane::cni
