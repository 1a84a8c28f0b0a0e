// The kernel's change notifications: a subscription to rtnetlink's multicast groups for links,
// addresses, routes and neighbours of the network namespace it was opened in.
//
// parseEvents() is separate from the socket, so what a notification means is tested without a
// kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::netlink {

// What to subscribe to; or them together.
enum EventGroups : unsigned {
  kLinkEvents = 1u << 0,
  kAddressEvents = 1u << 1,    // IPv4 and IPv6
  kRouteEvents = 1u << 2,      // IPv4 and IPv6
  kNeighbourEvents = 1u << 3,  // ARP and NDP
};

struct LinkEvent {
  LinkInfo link;         // as the notification describes it
  bool removed = false;  // RTM_DELLINK
};

struct RouteEvent {
  RouteInfo route;        // as the notification describes it
  bool removed = false;   // RTM_DELROUTE
  bool replaced = false;  // NLM_F_REPLACE: it took the place of a route of the same key
  bool cloned = false;    // RTM_F_CLONED: a cache entry (an IPv6 PMTU exception), no route
};

struct NeighbourEvent {
  NeighbourInfo neighbour;  // as the notification describes it
  bool removed = false;     // RTM_DELNEIGH
};

// What one drain() read.
struct EventBatch {
  size_t notifications = 0;        // of any kind subscribed to
  std::vector<LinkEvent> links;    // link notifications, in the order they came
  std::vector<RouteEvent> routes;  // route notifications, in the order they came
  std::vector<NeighbourEvent> neighbours;
  // The kernel dropped notifications because the socket was full (ENOBUFS): what the subscriber
  // keeps of the kernel's state must be read again.
  bool overrun = false;
};

// Adds the notifications in one buffer read from a subscription to batch. Other message types
// are skipped; a malformed link, route or neighbour notification is an EIO error.
Result<void> parseEvents(const uint8_t* data, size_t size, EventBatch& batch);

class Subscription {
 public:
  // Subscribed in the calling thread's namespace. The socket does not block.
  static Result<Subscription> open(unsigned groups);

  // For poll(): readable while notifications are pending.
  int fd() const { return fd_.get(); }
  // Every pending notification; never blocks.
  Result<EventBatch> drain();

 private:
  explicit Subscription(Fd fd);
  Fd fd_;
  std::unique_ptr<uint8_t[]> buf_;
};

}  // namespace vfplane::netlink
