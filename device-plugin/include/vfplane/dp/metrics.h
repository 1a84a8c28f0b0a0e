// Prometheus metrics of the device plugin, computed when scraped from the daemon's live state.
//
//   vfplane_dp_devices{resource, health}          devices per resource by health
//   vfplane_dp_allocate_total{resource} / vfplane_dp_allocate_failures_total{resource}
//   vfplane_dp_registrations_total / _failures_total
//   vfplane_dp_rescans_total
//   vfplane_dp_reloads_total / vfplane_dp_reload_errors_total
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <memory>

#include "vfplane/dp/daemon.h"

namespace vfplane::dp {

// Collects nothing: what /healthz serves.
class EmptyCollectable final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override { return {}; }
};

// The daemon must outlive the collectable's use by an exposer.
std::shared_ptr<prometheus::Collectable> makeMetrics(const Daemon& daemon);

}  // namespace vfplane::dp
