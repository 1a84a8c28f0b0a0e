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
    if (auto ports = loop_.portCounters()) {
      prometheus::MetricFamily perPort{prefix_ + "port_packets_total",
                                       "Frames by port: received, of those forwarded, transmitted",
                                       prometheus::MetricType::Counter,
                                       {}};
      for (const auto& p : *ports) {
        for (auto [direction, value] :
             {std::pair{"rx", p.rx}, std::pair{"forwarded", p.forwarded}, std::pair{"tx", p.tx}}) {
          prometheus::ClientMetric m;
          m.label = {{"port", p.name}, {"direction", direction}};
          m.counter.value = static_cast<double>(value);
          perPort.metric.push_back(std::move(m));
        }
      }
      out.push_back(std::move(perPort));
    }
    auto polls = loop_.workerPolls();
    if (!polls.empty()) {
      prometheus::MetricFamily family{prefix_ + "polls_total",
                                      "Poll loops per worker: busy (received something) or idle",
                                      prometheus::MetricType::Counter,
                                      {}};
      for (size_t w = 0; w < polls.size(); ++w) {
        for (auto [state, value] : {std::pair{"busy", polls[w].busy},
                                    std::pair{"idle", polls[w].polls - polls[w].busy}}) {
          prometheus::ClientMetric m;
          m.label = {{"worker", std::to_string(w)}, {"state", state}};
          m.counter.value = static_cast<double>(value);
          family.metric.push_back(std::move(m));
        }
      }
      out.push_back(std::move(family));
    }
    if (auto builds = loop_.tableBuilds()) {
      prometheus::MetricFamily family{
          prefix_ + "table_installs_total",
          "Installs of a changed table: written in place (the spare, then the other), or both "
          "tables built anew (first install, a default route changed, out of room)",
          prometheus::MetricType::Counter,
          {}};
      for (auto [how, value] :
           {std::pair{"in_place", builds->inPlace}, std::pair{"rebuilt", builds->rebuilt}}) {
        prometheus::ClientMetric m;
        m.label = {{"how", how}};
        m.counter.value = static_cast<double>(value);
        family.metric.push_back(std::move(m));
      }
      out.push_back(std::move(family));
    }
    RouterStatus s = loop_.status();
    single("table_entries", "Entries in the forwarding table", prometheus::MetricType::Gauge,
           static_cast<double>(s.entries));
    single("routes", "Routes in the kernel's tables (main table, both families)",
           prometheus::MetricType::Gauge, static_cast<double>(s.routes));
    single("neighbours", "Neighbours with a known MAC", prometheus::MetricType::Gauge,
           static_cast<double>(s.neighbours));
    single("next_hop_groups", "Distinct next-hop groups the table forwards over",
           prometheus::MetricType::Gauge, static_cast<double>(s.groups));
    single("syncs_total", "Re-reads of the kernel's tables", prometheus::MetricType::Counter,
           static_cast<double>(s.syncs));
    single("route_updates_total",
           "Batches of route and neighbour notifications applied without a re-read of the tables",
           prometheus::MetricType::Counter, static_cast<double>(s.routeUpdates));
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
