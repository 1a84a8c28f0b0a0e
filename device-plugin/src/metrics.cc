#include "vfplane/dp/metrics.h"

#include <prometheus/metric_family.h>

namespace vfplane::dp {
namespace {

class DaemonMetrics final : public prometheus::Collectable {
 public:
  explicit DaemonMetrics(const Daemon& daemon) : daemon_(daemon) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    prometheus::MetricFamily devices{"vfplane_dp_devices",
                                     "Devices offered per resource, by health",
                                     prometheus::MetricType::Gauge,
                                     {}};
    for (const auto& [resource, counts] : daemon_.deviceCounts()) {
      for (auto [health, value] :
           {std::pair{"Healthy", counts.first}, std::pair{"Unhealthy", counts.second}}) {
        prometheus::ClientMetric m;
        m.label = {{"health", health}, {"resource", resource}};
        m.gauge.value = value;
        devices.metric.push_back(std::move(m));
      }
    }
    out.push_back(std::move(devices));
    // The daemon only exposes counters as const through a const reference.
    auto& c = const_cast<Daemon&>(daemon_).counters();
    auto counter = [&](const char* name, const char* help, uint64_t value) {
      prometheus::ClientMetric m;
      m.counter.value = static_cast<double>(value);
      out.push_back({name, help, prometheus::MetricType::Counter, {m}});
    };
    prometheus::MetricFamily calls{"vfplane_dp_allocate_total",
                                   "Allocate calls answered, per resource",
                                   prometheus::MetricType::Counter,
                                   {}};
    prometheus::MetricFamily failures{"vfplane_dp_allocate_failures_total",
                                      "Allocate calls refused, per resource",
                                      prometheus::MetricType::Counter,
                                      {}};
    for (const auto& [resource, a] : c.allocationsByResource()) {
      for (auto [family, value] : {std::pair{&calls, a.calls}, std::pair{&failures, a.failures}}) {
        prometheus::ClientMetric m;
        m.label = {{"resource", resource}};
        m.counter.value = static_cast<double>(value);
        family->metric.push_back(std::move(m));
      }
    }
    out.push_back(std::move(calls));
    out.push_back(std::move(failures));
    counter("vfplane_dp_registrations_total", "Registrations with the kubelet attempted",
            c.registrations);
    counter("vfplane_dp_registration_failures_total", "Registrations that failed",
            c.registrationErrors);
    counter("vfplane_dp_rescans_total", "Device rescans", c.rescans);
    counter("vfplane_dp_reloads_total", "Config reloads attempted", c.reloads);
    counter("vfplane_dp_reload_errors_total", "Config reloads rejected", c.reloadErrors);
    return out;
  }

 private:
  const Daemon& daemon_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> makeMetrics(const Daemon& daemon) {
  return std::make_shared<DaemonMetrics>(daemon);
}

}  // namespace vfplane::dp
