#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "vfplane/base/exit_code.h"
#include "vfplane/dp/cli.h"
#include "vfplane/dp/kubelet_sim.h"
#include "vfplane/dp/plugin_client.h"
#include "vfplane/dp/pod_resources_sim.h"

namespace vfplane::dp {
namespace {

nlohmann::ordered_json eventJson(const SimEvent& e) {
  static const char* kinds[] = {"registered", "refused", "devices", "stream-ended"};
  nlohmann::ordered_json j;
  j["event"] = kinds[e.kind];
  j["resource"] = e.resource;
  j["endpoint"] = e.endpoint;
  if (e.kind == SimEvent::kDevices) {
    j["devices"] = nlohmann::ordered_json::array();
    for (const auto& d : e.devices) {
      nlohmann::ordered_json dev{{"id", d.id}, {"health", d.health}};
      dev["numa"] = d.numa ? nlohmann::ordered_json(*d.numa) : nlohmann::ordered_json(nullptr);
      j["devices"].push_back(std::move(dev));
    }
  }
  if (!e.detail.empty()) j["detail"] = e.detail;
  return j;
}

struct WatchOptions {
  std::string kubeletDir = "/var/lib/kubelet";
  bool pluginWatcher = false;
  std::string refuse;
  double seconds = 0;
};

int runWatch(const WatchOptions& o) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::mutex out;
  auto sim = KubeletSim::start({o.kubeletDir, o.pluginWatcher, o.refuse}, [&](const SimEvent& e) {
    std::lock_guard lock(out);
    fmt::print("{}\n", eventJson(e).dump());
    std::fflush(stdout);
  });
  if (!sim) {
    spdlog::error("{}", sim.error().message());
    return kExitFailure;
  }
  // The PodResources side too, for the CNI's resourceName lookups: the pods `dp allocate --pod`
  // recorded.
  auto podResources = PodResourcesSim::start({o.kubeletDir, true});
  if (!podResources) {
    spdlog::error("{}", podResources.error().message());
    return kExitFailure;
  }
  spdlog::info("playing the kubelet in {} ({}, PodResources on {}); Ctrl-C to stop", o.kubeletDir,
               o.pluginWatcher ? "plugin watcher" : "serving device-plugins/kubelet.sock",
               (*podResources)->socketPath());
  if (o.seconds > 0) {
    timespec ts{static_cast<time_t>(o.seconds),
                static_cast<long>((o.seconds - static_cast<long>(o.seconds)) * 1e9)};
    sigtimedwait(&signals, nullptr, &ts);
  } else {
    int sig;
    sigwait(&signals, &sig);
  }
  (*sim)->stop();
  return kExitOk;
}

// Prints a plugin's JSON answer, or logs why there is none; returns the exit code.
int printAnswer(const Result<std::string>& resp) {
  if (!resp) {
    spdlog::error("{}", resp.error().message());
    return kExitFailure;
  }
  fmt::print("{}\n", nlohmann::json::parse(*resp).dump(2));
  return kExitOk;
}

}  // namespace

void addCliCommands(CLI::App& app, int& exitCode) {
  auto* dp = app.add_subcommand("dp", "Talk to device plugins as the kubelet does");
  dp->require_subcommand(1);

  auto w = std::make_shared<WatchOptions>();
  auto* watch =
      dp->add_subcommand("watch",
                         "Serve kubelet.sock (or watch plugins_registry), accept "
                         "registrations and print each plugin's ListAndWatch stream as JSON lines");
  watch->add_option("--kubelet-dir", w->kubeletDir, "The kubelet directory to play in")
      ->capture_default_str();
  watch->add_flag("--plugin-watcher", w->pluginWatcher,
                  "Register plugins found under plugins_registry/");
  watch->add_option("--refuse", w->refuse,
                    "Refuse every registration with this error (to test plugins)");
  watch->add_option("--seconds", w->seconds,
                    "Stop after this long (default: until SIGINT/SIGTERM)");
  watch->callback([w, &exitCode] { exitCode = runWatch(*w); });

  struct AllocateArgs {
    std::string socket;
    std::vector<std::string> ids;
    std::string pod;  // namespace/name
    std::string container = "app";
    std::string resource;
    std::string kubeletDir = "/var/lib/kubelet";
  };
  auto a = std::make_shared<AllocateArgs>();
  auto* allocate = dp->add_subcommand(
      "allocate", "Call Allocate for one container and print the response as JSON");
  allocate->add_option("--socket", a->socket, "The plugin's socket")->required();
  allocate->add_option("ids", a->ids, "Device IDs (PCI addresses)")->required();
  allocate->add_option("--pod", a->pod,
                       "Record the devices as this pod's (namespace/name), for the PodResources "
                       "that `dp watch` serves to the CNI");
  allocate->add_option("--container", a->container, "With --pod: the container")
      ->capture_default_str();
  allocate->add_option("--resource", a->resource,
                       "With --pod: the resource (default: from the socket's name)");
  allocate
      ->add_option("--kubelet-dir", a->kubeletDir,
                   "With --pod: the kubelet dir `dp watch` plays in")
      ->capture_default_str();
  allocate->callback([a, &exitCode] {
    size_t slash = a->pod.find('/');
    if (!a->pod.empty() &&
        (slash == 0 || slash == std::string::npos || slash + 1 == a->pod.size())) {
      spdlog::error("--pod {}: must be namespace/name", a->pod);
      exitCode = kExitUsage;
      return;
    }
    auto client = PluginClient::connect(a->socket);
    if (!client) {
      spdlog::error("{}", client.error().message());
      exitCode = kExitUsage;
      return;
    }
    auto answer = client->allocate(a->ids);
    exitCode = printAnswer(answer);
    if (!answer || a->pod.empty()) return;
    std::string resource = a->resource;
    if (resource.empty()) {
      // <prefix>_<name>.sock: the prefix is a DNS name, so its first '_' is the '/'.
      resource = std::filesystem::path(a->socket).stem().string();
      if (size_t u = resource.find('_'); u != std::string::npos) resource[u] = '/';
    }
    SimPod pod{
        a->pod.substr(0, slash), a->pod.substr(slash + 1), {{a->container, resource, a->ids}}};
    if (auto ok = recordPodDevices(a->kubeletDir, pod); !ok) {
      spdlog::error("--pod {}: {}", a->pod, ok.error().message());
      exitCode = kExitFailure;
    }
  });

  auto pSocket = std::make_shared<std::string>();
  auto size = std::make_shared<int>(1);
  auto available = std::make_shared<std::vector<std::string>>();
  auto must = std::make_shared<std::vector<std::string>>();
  auto* preferred =
      dp->add_subcommand("preferred", "Call GetPreferredAllocation and print the response as JSON");
  preferred->add_option("--socket", *pSocket, "The plugin's socket")->required();
  preferred->add_option("--size", *size, "How many devices the container asks for")
      ->required()
      ->check(CLI::PositiveNumber);
  preferred
      ->add_option("--available", *available,
                   "Available IDs (default: the plugin's healthy devices)")
      ->delimiter(',');
  preferred->add_option("--must-include", *must, "IDs the answer must contain")->delimiter(',');
  preferred->callback([pSocket, size, available, must, &exitCode] {
    auto client = PluginClient::connect(*pSocket);
    if (!client) {
      spdlog::error("{}", client.error().message());
      exitCode = kExitUsage;
      return;
    }
    std::vector<std::string> avail = *available;
    if (avail.empty()) {
      auto list = client->list();
      if (!list) {
        spdlog::error("{}", list.error().message());
        exitCode = kExitFailure;
        return;
      }
      for (const auto& d : *list) {
        if (d.health == "Healthy") avail.push_back(d.id);
      }
    }
    exitCode = printAnswer(client->preferred(avail, *must, *size));
  });
}

}  // namespace vfplane::dp
