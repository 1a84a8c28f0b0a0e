// One resource's device-plugin endpoint: a gRPC server on a unix socket serving the kubelet's
// DevicePlugin service (and, in plugin-watcher mode, pluginregistration.Registration on the same
// socket), plus registration with the kubelet.
//
// Legacy mode: the socket is <kubelet-dir>/device-plugins/<prefix>_<name>.sock and the plugin
// calls Registration.Register on <kubelet-dir>/device-plugins/kubelet.sock.
// Plugin-watcher mode (used when <kubelet-dir>/plugins_registry exists): the socket is
// <kubelet-dir>/plugins_registry/<prefix>_<name>.sock; the kubelet finds it, asks GetInfo and
// reports back through NotifyRegistrationStatus.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "vfplane/base/error.h"
#include "vfplane/dp/pool_state.h"

namespace grpc {
class Server;
}

namespace vfplane::dp {

enum class RegistrationMode { kLegacy, kPluginWatcher };

struct PluginServerOptions {
  std::string kubeletDir = "/var/lib/kubelet";
  std::string devinfoDir = "/var/run/k8s.cni.cncf.io/devinfo/dp";
  RegistrationMode mode = RegistrationMode::kLegacy;
  // Allocate names the devices in a CDI annotation instead of returning device specs.
  bool useCdi = false;
};

// Counters the server reports into (metrics live outside this library).
struct PluginServerEvents {
  std::function<void(const std::string& resource, bool ok)> onAllocate;
  std::function<void(const std::string& resource, bool ok, const std::string& error)>
      onRegistration;
};

// The legacy mode unless <kubelet-dir>/plugins_registry exists.
RegistrationMode detectRegistrationMode(const std::string& kubeletDir);
// "<prefix>_<name>.sock" for "<prefix>/<name>".
std::string socketNameFor(const std::string& resourceName);

class PluginServer {
 public:
  PluginServer(std::shared_ptr<PoolState> state, PluginServerOptions options,
               PluginServerEvents events = {});
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  // Removes a stale socket and starts serving. Errors name the socket path.
  Result<void> start();
  // Legacy mode: calls Register on kubelet.sock. In plugin-watcher mode there is nothing to do:
  // the kubelet comes to us.
  Result<void> registerWithKubelet();
  // Stops serving, ends ListAndWatch streams and removes the socket.
  void stop();
  bool running() const { return server_ != nullptr; }

  const std::string& socketPath() const { return socketPath_; }
  const std::string& resourceName() const { return resourceName_; }
  // Plugin-watcher mode: the last NotifyRegistrationStatus said we are registered.
  bool registered() const { return registered_.load(); }
  // Plugin-watcher mode: the kubelet reported a failed registration; the owner should restart us.
  bool registrationFailed() const { return registrationFailed_.load(); }

 private:
  class Service;
  class WatcherService;
  std::shared_ptr<PoolState> state_;
  PluginServerOptions options_;
  PluginServerEvents events_;
  std::string resourceName_;
  std::string socketPath_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<WatcherService> watcherService_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> registered_{false};
  std::atomic<bool> registrationFailed_{false};
};

}  // namespace vfplane::dp
