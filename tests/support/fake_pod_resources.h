// The kubelet's PodResources service for tests: v1.PodResourcesLister on a Unix socket under a
// kubelet root of the test's own (<root>/pod-resources/kubelet.sock), answering List (and Get,
// when asked to, as kubelet 1.27+ does) from the pods the test sets. Real gRPC and protobuf, so
// the CNI's hand-written client and decoder are checked against the libraries the kubelet's own
// peers use.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vfplane/cni/pod_resources.h"

namespace grpc {
class Server;
}

namespace vfplane::test {

class FakePodResources {
 public:
  // serveGet false: Get is UNIMPLEMENTED, as on kubelets before 1.27.
  FakePodResources(const std::filesystem::path& kubeletRoot, bool serveGet);
  ~FakePodResources();
  bool running() const { return server_ != nullptr; }

  void setPods(std::vector<cni::PodResources> pods);
  int calls() const;

  class Service;

 private:
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace vfplane::test
