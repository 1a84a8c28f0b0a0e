// Carrier state of links, from rtnetlink: one RTM_GETLINK per link when asked, and RTMGRP_LINK
// notifications as they happen. No polling and no dump of every link.
//
// The message builders and parsers are separate from the sockets, so they are tested without a
// kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"

namespace vfplane::netlink {

struct LinkState {
  std::string name;
  int ifindex = 0;
  bool up = false;       // IFF_UP
  bool carrier = false;  // IFF_LOWER_UP, or IFLA_CARRIER when present
  bool removed = false;  // RTM_DELLINK
};

// An RTM_GETLINK request for one link by name.
std::vector<uint8_t> buildGetLinkRequest(std::string_view name, uint32_t seq);
// Every RTM_NEWLINK/RTM_DELLINK in a buffer of netlink messages. Other messages are skipped;
// an NLMSG_ERROR with a non-zero code is returned as an error with its errno.
Result<std::vector<LinkState>> parseLinkMessages(const uint8_t* data, size_t size);

// The names of the links that carry a default route (IPv4 or IPv6, main table, multipath paths
// included) in this network namespace; see Rtnl::defaultRouteLinks.
Result<std::vector<std::string>> defaultRouteLinks();

class LinkMonitor {
 public:
  // Opens the notification socket (subscribed to link events) and a query socket.
  static Result<std::unique_ptr<LinkMonitor>> open();

  // For poll(): readable when events are pending.
  int fd() const { return events_.get(); }
  // The events received since the last call; never blocks.
  Result<std::vector<LinkState>> drain();
  // One link's state now; nullopt when no link has that name in this network namespace.
  Result<std::optional<LinkState>> query(std::string_view name);

 private:
  LinkMonitor(Fd events, Fd queries) : events_(std::move(events)), queries_(std::move(queries)) {}
  Fd events_;
  Fd queries_;
  uint32_t seq_ = 1;
};

}  // namespace vfplane::netlink
