// The kubelet's PodResources service (v1.PodResourcesLister), played in-tree: on
// <kubelet-dir>/pod-resources/kubelet.sock it answers List (and Get, as kubelet 1.27+ does, unless
// told to behave like an older kubelet) with the devices each pod was given. `vfplane dp watch`
// serves it next to the registration side, so that on a simulated node the CNI plugins can find a
// pod's VFs by resourceName as they do under a real kubelet; the tests use it as that kubelet.
//
// What it serves: the pods set with setPods(), and those `vfplane dp allocate --pod` recorded in
// <kubelet-dir>/vfplane-sim/pods.json (read on every call, so another process may add to it).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfplane/base/error.h"

namespace grpc {
class Server;
}

namespace vfplane::dp {

struct SimContainerDevices {
  std::string container;
  std::string resource;  // "intel.com/sriov_net_a"
  std::vector<std::string> ids;
};

struct SimPod {
  std::string ns;
  std::string name;
  std::vector<SimContainerDevices> devices;
};

class PodResourcesSim {
 public:
  struct Options {
    std::string kubeletDir;
    bool serveGet = true;  // false: Get is UNIMPLEMENTED, as before kubelet 1.27
  };
  static Result<std::unique_ptr<PodResourcesSim>> start(Options options);
  ~PodResourcesSim();

  void setPods(std::vector<SimPod> pods);
  int calls() const;
  std::string socketPath() const;

  class Service;

 private:
  PodResourcesSim() = default;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string socketPath_;
};

// Adds what a pod's container was given to <kubeletDir>/vfplane-sim/pods.json (atomically; a
// pod and container recorded before get the new devices added).
Result<void> recordPodDevices(const std::string& kubeletDir, const SimPod& pod);

}  // namespace vfplane::dp
