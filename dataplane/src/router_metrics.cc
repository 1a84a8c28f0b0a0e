#include "vfplane/dataplane/router_metrics.h"

#include <prometheus/metric_family.h>

#include <string>

namespace vfplane::dataplane {
namespace {

class RouterMetrics final : public prometheus::Collectable {
 public:
  explicit RouterMetrics(const RouterLoop& loop)
      : loop_(loop), prefix_(std::string("vfplane_") + loop.fastPath().name() + "_") {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    auto single = [&](const char* name, const char* help, prometheus::MetricType type,
                      double value) {
      prometheus::ClientMetric m;
      (type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value) = value;
      out.push_back({prefix_ + name, help, type, {m}});
    };
    if (auto c = loop_.counters()) {
      prometheus::MetricFamily packets{prefix_ + "packets_total",
                                       "Frames by verdict: forwarded, or why the kernel got them",
                                       prometheus::MetricType::Counter,
                                       {}};
      for (const auto& v : kVerdicts) {
        prometheus::ClientMetric m;
        m.label = {{"verdict", v.name}};
        m.counter.value = static_cast<double>((*c).*v.count);
        packets.metric.push_back(std::move(m));
      }
      out.push_back(std::move(packets));
      single("received_total", "Frames the fast path saw", prometheus::MetricType::Counter,
             static_cast<double>(c->rx));
    }
    RouterStatus s = loop_.status();
    single("table_entries", "Entries in the forwarding table", prometheus::MetricType::Gauge,
           static_cast<double>(s.entries));
    single("syncs_total", "Re-reads of the kernel's tables", prometheus::MetricType::Counter,
           static_cast<double>(s.syncs));
    single("sync_errors_total", "Re-reads that failed (the previous table stayed)",
           prometheus::MetricType::Counter, static_cast<double>(s.syncErrors));
    return out;
  }

 private:
  const RouterLoop& loop_;
  std::string prefix_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> makeRouterMetrics(const RouterLoop& loop) {
  return std::make_shared<RouterMetrics>(loop);
}

}  // namespace vfplane::dataplane
