#include "vfplane/ebpf/router_metrics.h"

#include <prometheus/metric_family.h>

namespace vfplane::ebpf {
namespace {

class RouterMetrics final : public prometheus::Collectable {
 public:
  explicit RouterMetrics(const RouterDaemon& daemon) : daemon_(daemon) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    auto single = [&](const char* name, const char* help, prometheus::MetricType type, double value) {
      prometheus::ClientMetric m;
      (type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value) = value;
      out.push_back({name, help, type, {m}});
    };
    if (auto c = daemon_.counters()) {
      prometheus::MetricFamily packets{"vfplane_xdp_packets_total",
                                       "Frames by verdict: forwarded, or why the kernel got them",
                                       prometheus::MetricType::Counter, {}};
      for (auto [verdict, value] : {std::pair{"forwarded", c->forwarded}, std::pair{"other_host", c->puntOtherHost},
                                    std::pair{"not_ipv4", c->puntNotIpv4}, std::pair{"ip_options", c->puntIpOptions},
                                    std::pair{"ttl", c->puntTtl}, std::pair{"no_route", c->puntNoRoute},
                                    std::pair{"local_or_unresolved", c->puntAction},
                                    std::pair{"malformed", c->puntMalformed}}) {
        prometheus::ClientMetric m;
        m.label = {{"verdict", verdict}};
        m.counter.value = static_cast<double>(value);
        packets.metric.push_back(std::move(m));
      }
      out.push_back(std::move(packets));
      single("vfplane_xdp_received_total", "Frames the XDP program saw", prometheus::MetricType::Counter,
             static_cast<double>(c->rx));
    }
    RouterStatus s = daemon_.status();
    single("vfplane_xdp_table_entries", "Entries in the forwarding table", prometheus::MetricType::Gauge,
           static_cast<double>(s.entries));
    single("vfplane_xdp_syncs_total", "Re-reads of the kernel's tables", prometheus::MetricType::Counter,
           static_cast<double>(s.syncs));
    single("vfplane_xdp_sync_errors_total", "Re-reads that failed (the previous table stayed)",
           prometheus::MetricType::Counter, static_cast<double>(s.syncErrors));
    return out;
  }

 private:
  const RouterDaemon& daemon_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> makeRouterMetrics(const RouterDaemon& daemon) {
  return std::make_shared<RouterMetrics>(daemon);
}

}  // namespace vfplane::ebpf
