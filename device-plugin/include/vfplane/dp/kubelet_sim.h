// The kubelet's side of the device-plugin protocols, in-tree: accepts registrations (legacy
// kubelet.sock, or plugin-watcher sockets under plugins_registry), then follows each plugin's
// ListAndWatch stream. `vfplane dp watch` and the integration tests use it; it is also a quick way
// to check a plugin on a node without a kubelet.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vfplane/base/error.h"

namespace grpc {
class ClientContext;
class Server;
}  // namespace grpc

namespace vfplane::dp {

struct SimDevice {
  std::string id;
  std::string health;
  std::optional<int64_t> numa;
};

struct SimEvent {
  enum Kind { kRegistered, kRefused, kDevices, kStreamEnded } kind;
  std::string resource;
  std::string endpoint;  // socket path of the plugin
  std::vector<SimDevice> devices;
  std::string detail;
};

class KubeletSim {
 public:
  struct Options {
    std::string kubeletDir;
    bool pluginWatcher = false;  // act as the plugin watcher instead of serving kubelet.sock
    std::string refuseWith;      // non-empty: refuse every registration with this error
  };

  static Result<std::unique_ptr<KubeletSim>> start(
      Options options, std::function<void(const SimEvent&)> onEvent = {});
  ~KubeletSim();

  // A kubelet restart as plugins see it: kubelet.sock disappears and is created anew (legacy), and
  // all streams are dropped.
  Result<void> restart();
  void stop();

  // Waits until pred() holds (checked on every event) or the timeout passes.
  bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

  // The latest device list a resource reported, and how many lists it sent in all.
  std::optional<std::vector<SimDevice>> devices(const std::string& resource) const;
  int updates(const std::string& resource) const;
  int registrations(const std::string& resource) const;
  std::string endpoint(const std::string& resource) const;

 private:
  class RegistrationService;
  explicit KubeletSim(Options options, std::function<void(const SimEvent&)> onEvent);
  Result<void> serve();
  void follow(const std::string& resource, const std::string& socketPath);
  void watchRegistry();
  void record(SimEvent event);

  Options options_;
  std::function<void(const SimEvent&)> onEvent_;
  std::unique_ptr<RegistrationService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<SimDevice>> devices_;
  std::map<std::string, int> updates_;
  std::map<std::string, int> registrations_;
  std::map<std::string, std::string> endpoints_;
  // Plugin watcher: sockets already handled, by inode, so that a re-created socket (a plugin
  // restarting its server) counts as new, as it does for the kubelet's fsnotify watch.
  std::map<std::string, uint64_t> followed_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<grpc::ClientContext>> contexts_;  // live ListAndWatch streams
};

}  // namespace vfplane::dp
