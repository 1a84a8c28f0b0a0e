#include "vfplane/netlink/link_monitor.h"

#include "vfplane/netlink/rtnl.h"

#include <fmt/format.h>
// glibc's net/if.h must come before linux/if.h, which then defers to it.
#include <net/if.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace vfplane::netlink {
namespace {

constexpr size_t kRecvBuffer = 64 * 1024;

void appendAttr(std::vector<uint8_t>& msg, uint16_t type, const void* data, size_t len) {
  size_t start = msg.size();
  msg.resize(start + RTA_SPACE(len), 0);
  auto* rta = reinterpret_cast<rtattr*>(msg.data() + start);
  rta->rta_type = type;
  rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(len));
  std::memcpy(RTA_DATA(rta), data, len);
}

}  // namespace

std::vector<uint8_t> buildGetLinkRequest(std::string_view name, uint32_t seq) {
  std::vector<uint8_t> msg(NLMSG_SPACE(sizeof(ifinfomsg)), 0);
  std::string n(name);
  appendAttr(msg, IFLA_IFNAME, n.c_str(), n.size() + 1);
  auto* hdr = reinterpret_cast<nlmsghdr*>(msg.data());
  hdr->nlmsg_len = static_cast<uint32_t>(msg.size());
  hdr->nlmsg_type = RTM_GETLINK;
  hdr->nlmsg_flags = NLM_F_REQUEST;
  hdr->nlmsg_seq = seq;
  auto* ifi = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(hdr));
  ifi->ifi_family = AF_UNSPEC;
  return msg;
}

Result<std::vector<LinkState>> parseLinkMessages(const uint8_t* data, size_t size) {
  std::vector<LinkState> out;
  int len = static_cast<int>(size);
  for (auto* hdr = reinterpret_cast<const nlmsghdr*>(data); NLMSG_OK(hdr, len); hdr = NLMSG_NEXT(hdr, len)) {
    if (hdr->nlmsg_type == NLMSG_ERROR) {
      if (hdr->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return fail("netlink: truncated error message", EIO);
      int err = -reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(hdr))->error;
      if (err != 0) return fail(systemError("netlink", err));
      continue;
    }
    if (hdr->nlmsg_type != RTM_NEWLINK && hdr->nlmsg_type != RTM_DELLINK) continue;
    if (hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return fail("netlink: truncated link message", EIO);
    const auto* ifi = reinterpret_cast<const ifinfomsg*>(NLMSG_DATA(hdr));
    LinkState state;
    state.ifindex = ifi->ifi_index;
    state.up = ifi->ifi_flags & IFF_UP;
    state.carrier = ifi->ifi_flags & IFF_LOWER_UP;
    state.removed = hdr->nlmsg_type == RTM_DELLINK;
    int attrLen = static_cast<int>(IFLA_PAYLOAD(hdr));
    for (auto* rta = IFLA_RTA(ifi); RTA_OK(rta, attrLen); rta = RTA_NEXT(rta, attrLen)) {
      if (rta->rta_type == IFLA_IFNAME) {
        const char* name = static_cast<const char*>(RTA_DATA(rta));
        state.name.assign(name, strnlen(name, RTA_PAYLOAD(rta)));
      } else if (rta->rta_type == IFLA_CARRIER && RTA_PAYLOAD(rta) >= 1) {
        state.carrier = *static_cast<const uint8_t*>(RTA_DATA(rta)) != 0;
      }
    }
    out.push_back(std::move(state));
  }
  return out;
}

Result<std::vector<std::string>> defaultRouteLinks() {
  auto rtnl = Rtnl::open();
  if (!rtnl) return fail(std::move(rtnl.error()));
  auto indexes = rtnl->defaultRouteLinks();
  if (!indexes) return fail(std::move(indexes.error()));
  std::vector<std::string> names;
  for (int index : *indexes) {
    auto link = rtnl->link(index);
    if (!link) return fail(std::move(link.error()));
    if (*link) names.push_back((*link)->name);  // gone since the dump: nothing to exclude
  }
  return names;
}

Result<std::unique_ptr<LinkMonitor>> LinkMonitor::open() {
  Fd events(::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!events.valid()) return fail(systemError("netlink: socket", errno));
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = RTMGRP_LINK;
  if (::bind(events.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return fail(systemError("netlink: subscribe to link events", errno));
  }
  Fd queries(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!queries.valid()) return fail(systemError("netlink: socket", errno));
  timeval timeout{2, 0};
  ::setsockopt(queries.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return std::unique_ptr<LinkMonitor>(new LinkMonitor(std::move(events), std::move(queries)));
}

Result<std::vector<LinkState>> LinkMonitor::drain() {
  std::vector<LinkState> all;
  std::vector<uint8_t> buf(kRecvBuffer);
  for (;;) {
    ssize_t n = ::recv(events_.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // ENOBUFS means events were lost; the caller must re-query what it cares about.
    if (n < 0) return fail(systemError("netlink: read link events", errno));
    auto states = parseLinkMessages(buf.data(), static_cast<size_t>(n));
    if (!states) return fail(std::move(states.error()));
    all.insert(all.end(), states->begin(), states->end());
  }
  return all;
}

Result<std::optional<LinkState>> LinkMonitor::query(std::string_view name) {
  uint32_t seq = seq_++;
  auto msg = buildGetLinkRequest(name, seq);
  if (::send(queries_.get(), msg.data(), msg.size(), 0) < 0) {
    return fail(systemError(fmt::format("netlink: get link {}", name), errno));
  }
  std::vector<uint8_t> buf(kRecvBuffer);
  for (;;) {
    ssize_t n = ::recv(queries_.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(systemError(fmt::format("netlink: get link {}", name), errno));
    // Skip replies to earlier, abandoned requests.
    if (n >= static_cast<ssize_t>(sizeof(nlmsghdr)) && reinterpret_cast<nlmsghdr*>(buf.data())->nlmsg_seq != seq) {
      continue;
    }
    auto states = parseLinkMessages(buf.data(), static_cast<size_t>(n));
    if (!states) {
      if (states.error().sysErrno() == ENODEV) return std::optional<LinkState>();
      return fail(std::move(states.error()).withContext(fmt::format("get link {}", name)));
    }
    if (states->empty()) return std::optional<LinkState>();
    return std::optional<LinkState>(std::move(states->front()));
  }
}

}  // namespace vfplane::netlink
