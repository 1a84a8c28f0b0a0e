// The device list of a ListAndWatch answer as SimDevice values, for the kubelet simulator and the
// plugin client alike. Private to device-plugin/src.
#pragma once

#include <vector>

#include "deviceplugin_v1beta1.pb.h"
#include "vfplane/dp/kubelet_sim.h"

namespace vfplane::dp {

inline std::vector<SimDevice> devicesOf(const v1beta1::ListAndWatchResponse& resp) {
  std::vector<SimDevice> out;
  for (const auto& d : resp.devices()) {
    SimDevice dev{d.id(), d.health(), std::nullopt};
    if (d.has_topology() && d.topology().nodes_size() > 0) dev.numa = d.topology().nodes(0).id();
    out.push_back(std::move(dev));
  }
  return out;
}

}  // namespace vfplane::dp
