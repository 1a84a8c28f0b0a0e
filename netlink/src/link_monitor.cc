#include "vfplane/netlink/link_monitor.h"

#include <fmt/format.h>

#include <cerrno>

namespace vfplane::netlink {
namespace {

LinkState stateOf(const LinkInfo& link, bool removed) {
  return LinkState{link.name, link.ifindex, link.up(), link.carrier, removed};
}

}  // namespace

Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open() {
  auto events = Subscription::open(kLinkEvents);
  if (!events) return fail(std::move(events.error()));
  auto queries = Rtnl::open();
  if (!queries) return fail(std::move(queries.error()));
  return std::unique_ptr<LinkMonitor>(new LinkMonitor(std::move(*events), std::move(*queries)));
}

Result<std::vector<LinkState>> LinkMonitor::drain() {
  auto batch = events_.drain();
  if (!batch) return fail(std::move(batch.error()));
  if (batch->overrun) return fail(systemError("netlink: read link events", ENOBUFS));
  std::vector<LinkState> out;
  out.reserve(batch->links.size());
  for (const auto& e : batch->links) out.push_back(stateOf(e.link, e.removed));
  return out;
}

Result<std::optional<LinkState>> LinkMonitor::query(std::string_view name) {
  auto link = queries_.link(name);
  if (!link) return fail(std::move(link.error()).withContext(fmt::format("get link {}", name)));
  if (!*link) return std::optional<LinkState>();
  return std::optional<LinkState>(stateOf(**link, false));
}

Result<std::vector<std::string>> LinkMonitor::defaultRouteLinks() {
  auto indexes = queries_.defaultRouteLinks();
  if (!indexes) return fail(std::move(indexes.error()));
  std::vector<std::string> names;
  for (int index : *indexes) {
    auto link = queries_.link(index);
    if (!link) return fail(std::move(link.error()));
    if (*link) names.push_back((*link)->name);  // gone since the dump: nothing to exclude
  }
  return names;
}

}  // namespace vfplane::netlink
