#include "vfplane/netlink/events.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>

namespace vfplane::netlink {
namespace {

// Big enough for a burst of notifications per read; the kernel never splits one message.
constexpr size_t kBuffer = 64 * 1024;
// About 16,000 notifications of the kernel's size (each takes a kilobyte of socket memory).
constexpr int kReceiveBuffer = 16 << 20;

unsigned multicastGroups(unsigned groups) {
  unsigned out = 0;
  if (groups & kLinkEvents) out |= RTMGRP_LINK;
  if (groups & kAddressEvents) out |= RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (groups & kRouteEvents) out |= RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
  if (groups & kNeighbourEvents) out |= RTMGRP_NEIGH;
  return out;
}

}  // namespace

Result<void> parseEvents(const uint8_t* data, size_t size, EventBatch& batch) {
  int len = static_cast<int>(size);
  for (auto* h = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(h, len);
       h = NLMSG_NEXT(h, len)) {
    switch (h->nlmsg_type) {
      case RTM_NEWLINK:
      case RTM_DELLINK: {
        auto link = parseLink(h);
        if (!link) return fail(std::move(link.error()).withContext("link notification"));
        batch.links.push_back({std::move(*link), h->nlmsg_type == RTM_DELLINK});
        ++batch.notifications;
        break;
      }
      case RTM_NEWROUTE:
      case RTM_DELROUTE: {
        auto route = parseRoute(h);
        if (!route) return fail(std::move(route.error()).withContext("route notification"));
        const auto* rtm = static_cast<const rtmsg*>(NLMSG_DATA(h));
        batch.routes.push_back({std::move(*route), h->nlmsg_type == RTM_DELROUTE,
                                (h->nlmsg_flags & NLM_F_REPLACE) != 0,
                                (rtm->rtm_flags & RTM_F_CLONED) != 0});
        ++batch.notifications;
        break;
      }
      case RTM_NEWNEIGH:
      case RTM_DELNEIGH: {
        auto n = parseNeighbour(h);
        if (!n) return fail(std::move(n.error()).withContext("neighbour notification"));
        batch.neighbours.push_back({std::move(*n), h->nlmsg_type == RTM_DELNEIGH});
        ++batch.notifications;
        break;
      }
      case RTM_NEWADDR:
      case RTM_DELADDR:
        ++batch.notifications;
        break;
      default:
        break;
    }
  }
  return {};
}

Subscription::Subscription(Fd fd)
    : fd_(std::move(fd)), buf_(std::make_unique_for_overwrite<uint8_t[]>(kBuffer)) {}

Result<Subscription> Subscription::open(unsigned groups) {
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
  if (!fd.valid()) return fail(systemError("rtnetlink events: socket", errno));
  // Room for a burst while the subscriber is busy (a router recompiling a million routes takes
  // seconds): the kernel drops what does not fit, and the subscriber must then read everything
  // again. SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN; without it, what SO_RCVBUF allows.
  int bytes = kReceiveBuffer;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  local.nl_groups = multicastGroups(groups);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
    return fail(systemError("rtnetlink events: subscribe", errno));
  }
  return Subscription(std::move(fd));
}

Result<EventBatch> Subscription::drain() {
  EventBatch batch;
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf_.get(), kBuffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return batch;
    if (n < 0 && errno == ENOBUFS) {
      batch.overrun = true;
      continue;
    }
    if (n < 0) return fail(systemError("rtnetlink events: receive", errno));
    VFP_TRY(parseEvents(buf_.get(), static_cast<size_t>(n), batch));
  }
}

}  // namespace vfplane::netlink
