// Carrier state of links: one RTM_GETLINK per link when asked, and link notifications as they
// happen. No polling and no dump of every link.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/netlink/events.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::netlink {

struct LinkState {
  std::string name;
  int ifindex = 0;
  bool up = false;       // IFF_UP
  bool carrier = false;  // IFLA_CARRIER, else IFF_LOWER_UP
  bool removed = false;  // RTM_DELLINK
};

class LinkMonitor {
 public:
  // Subscribes to link notifications and opens a query socket, in the calling thread's namespace.
  static Result<std::unique_ptr<LinkMonitor>> open();

  // For poll(): readable when notifications are pending.
  int fd() const { return events_.fd(); }
  // The link notifications received since the last call; never blocks. An error (ENOBUFS when
  // the kernel dropped some) means the caller must re-query what it cares about.
  Result<std::vector<LinkState>> drain();
  // One link's state now; nullopt when no link has that name in this network namespace.
  Result<std::optional<LinkState>> query(std::string_view name);
  // The names of the links that carry an IPv4 or IPv6 default route of the main table, multipath
  // paths included (see Rtnl::defaultRouteLinks).
  Result<std::vector<std::string>> defaultRouteLinks();

 private:
  LinkMonitor(Subscription events, Rtnl queries)
      : events_(std::move(events)), queries_(std::move(queries)) {}
  Subscription events_;
  Rtnl queries_;
};

}  // namespace vfplane::netlink
