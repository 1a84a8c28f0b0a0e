// Calls a device plugin the way the kubelet does, over its unix socket. Responses come back as the
// protobuf JSON mapping of the wire message, so what is printed is exactly what the kubelet gets.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dp/kubelet_sim.h"

namespace vfplane::dp {

class PluginClient {
 public:
  static Result<PluginClient> connect(const std::string& socketPath);
  ~PluginClient();
  PluginClient(PluginClient&&) noexcept;

  // One container's Allocate; JSON of the AllocateResponse.
  Result<std::string> allocate(const std::vector<std::string>& ids);
  // One container's GetPreferredAllocation; JSON of the PreferredAllocationResponse.
  Result<std::string> preferred(const std::vector<std::string>& available,
                                const std::vector<std::string>& mustInclude, int size);
  // The first ListAndWatch answer.
  Result<std::vector<SimDevice>> list();
  Result<std::string> options();

 private:
  struct Impl;
  explicit PluginClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string socketPath_;
};

}  // namespace vfplane::dp
