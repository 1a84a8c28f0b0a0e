#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>

#include "vfplane/base/duration.h"
#include "vfplane/base/exit_code.h"
#include "vfplane/cni/cli.h"
#include "vfplane/cni/exec.h"
#include "vfplane/cni/host_device_plugin.h"
#include "vfplane/cni/install.h"
#include "vfplane/cni/ipam.h"
#include "vfplane/cni/macvlan_plugin.h"
#include "vfplane/cni/spec.h"
#include "vfplane/cni/sriov_config.h"
#include "vfplane_version.h"

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

// --config's text: the file, or stdin for "-". nullopt (logged) when the file cannot be opened.
std::optional<std::string> readConfig(const std::string& path) {
  if (path == "-")
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::ifstream in(path);
  if (!in) {
    spdlog::error("--config {}: cannot open", path);
    return std::nullopt;
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

int runExec(const ExecArgs& a) {
  auto read = readConfig(a.config);
  if (!read) return kExitUsage;
  const std::string& config = *read;
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

struct InstallArgs {
  std::string from = "/usr/lib/vfplane/cni";
  std::string to = "/host/opt/cni/bin";
  std::string watch;
};

int install(const InstallArgs& a) {
  auto r = installPlugins(a.from, a.to, kPluginNames, fmt::format("vfplane {}", kVersion));
  if (!r) {
    spdlog::error("{}", r.error().message());
    return r.error().sysErrno() == ENOENT ? kExitUsage : kExitFailure;
  }
  spdlog::info("vfplane {} in {}: installed {}; unchanged {}", kVersion, a.to,
               r->installed.empty() ? "none" : fmt::format("{}", fmt::join(r->installed, ", ")),
               r->unchanged.empty() ? "none" : fmt::format("{}", fmt::join(r->unchanged, ", ")));
  return kExitOk;
}

// Installs, then stays: every interval, puts back what something else changed, until SIGTERM.
int installAndWatch(const InstallArgs& a, std::chrono::milliseconds every) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  if (int rc = install(a); rc != kExitOk) return rc;
  timespec wait{static_cast<time_t>(every.count() / 1000),
                static_cast<long>(every.count() % 1000) * 1000000};
  while (true) {
    int sig = sigtimedwait(&stop, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("signal {}: the plugins stay installed", sig);
      return kExitOk;
    }
    auto differ = verifyPlugins(a.from, a.to, kPluginNames);
    if (!differ) {
      spdlog::warn("check {}: {}", a.to, differ.error().message());
      continue;
    }
    if (differ->empty()) continue;
    spdlog::warn("{} in {} changed under us (another release?); installing ours again",
                 fmt::join(*differ, ", "), a.to);
    (void)install(a);
  }
}

// Reads a network config as the plugin it names would, without running it: the common keys, the
// plugin's own and, for vfplane-ipam, the IPAM section. What a NAD's spec.config can be checked
// with before it is applied.
int checkConfig(const std::string& path) {
  auto text = readConfig(path);
  if (!text) return kExitUsage;
  auto conf = parseNetConf(*text);
  if (!conf) {
    spdlog::error("{}: {} (CNI error code {})", path, conf.error().msg,
                  static_cast<int>(conf.error().code));
    return kExitUsage;
  }
  Environment env;
  env.command = Command::kAdd;
  // The first error of what the config's plugin reads, or none.
  auto errorOf = [](const auto& parsed) -> std::optional<CniError> {
    if (parsed) return std::nullopt;
    return parsed.error();
  };
  std::optional<CniError> error;
  if (conf->type == "vfplane-sriov") {
    error = errorOf(parseSriovConfig(*conf, env));
  } else if (conf->type == "vfplane-host-device") {
    error = errorOf(parseHostDeviceConfig(*conf));
  } else if (conf->type == "vfplane-macvlan") {
    error = errorOf(parseMacvlanConfig(*conf, env));
  } else if (conf->type != "vfplane-ipam") {
    spdlog::error(
        "{}: type \"{}\" is not a vfplane plugin (vfplane-sriov, vfplane-host-device, "
        "vfplane-macvlan, vfplane-ipam)",
        path, conf->type);
    return kExitUsage;
  }
  if (!error && (conf->type == "vfplane-ipam" || conf->ipamType() == "vfplane-ipam"))
    error = errorOf(parseIpamConfig(*conf, env));
  if (error) {
    spdlog::error("{}: {} (CNI error code {})", path, error->msg, static_cast<int>(error->code));
    return kExitUsage;
  }
  std::printf("%s: %s network \"%s\", cniVersion %s%s\n", path.c_str(), conf->type.c_str(),
              conf->name.c_str(), conf->cniVersion.c_str(),
              conf->ipamType().empty() ? "" : (", IPAM " + conf->ipamType()).c_str());
  return kExitOk;
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

  auto checkPath = std::make_shared<std::string>("-");
  auto* check = cni->add_subcommand(
      "check-config",
      "Read a network config (a NAD's spec.config) as the vfplane plugin it names would, without "
      "running it: exit 0, or 2 naming the key that is wrong");
  check->add_option("--config", *checkPath, "Network config file; - for stdin")
      ->capture_default_str();
  check->callback([checkPath, &exitCode] { exitCode = checkConfig(*checkPath); });

  auto in = std::make_shared<InstallArgs>();
  auto* inst = cni->add_subcommand(
      "install",
      "Install the plugin binaries into a CNI bin dir as the vfplane-cni DaemonSet does: each "
      "copied under a temporary name and fsync'd, then all renamed into place, so a runtime never "
      "execs a half-written file or a mix of two releases");
  inst->add_option("--from", in->from, "Where the image keeps the plugins")->capture_default_str();
  inst->add_option("--to", in->to,
                   "The node's CNI bin dir as mounted (/opt/cni/bin; OpenShift /var/lib/cni/bin, "
                   "MicroShift /run/cni/bin)")
      ->capture_default_str();
  inst->add_option("--watch", in->watch,
                   "Stay, and every this often (30s, 5m) put back a plugin that something else "
                   "changed; exit 0 at SIGTERM");
  inst->callback([in, &exitCode] {
    if (in->watch.empty()) {
      exitCode = install(*in);
      return;
    }
    auto every = parseDuration(in->watch);
    if (!every || every->count() <= 0) {
      spdlog::error("--watch {}: not a duration such as 30s or 5m", in->watch);
      exitCode = kExitUsage;
      return;
    }
    exitCode = installAndWatch(*in, *every);
  });
}

}  // namespace vfplane::cni
