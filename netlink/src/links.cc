#include "vfplane/netlink/links.h"

#include <fmt/format.h>
#include <net/if.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include <cerrno>
#include <cstring>

namespace vfplane::netlink {
namespace {

struct LinkDeleter {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;

struct VethDeleter {
  void operator()(rtnl_link* link) const { rtnl_link_veth_release(link); }
};

struct MsgDeleter {
  void operator()(nl_msg* msg) const { nlmsg_free(msg); }
};
using MsgPtr = std::unique_ptr<nl_msg, MsgDeleter>;

// libnl folds errnos into its own codes; map back the ones callers branch on.
int errnoFromNl(int nlerr) {
  switch (nlerr < 0 ? -nlerr : nlerr) {
    case NLE_EXIST:
      return EEXIST;
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return ENODEV;
    case NLE_PERM:
      return EPERM;
    case NLE_NOACCESS:
      return EACCES;
    case NLE_OPNOTSUPP:
      return EOPNOTSUPP;
    case NLE_BUSY:
      return EBUSY;
    case NLE_INVAL:
      return EINVAL;
    case NLE_NOMEM:
      return ENOMEM;
    case NLE_RANGE:
      return ERANGE;
    default:
      return EIO;
  }
}

Error nlError(std::string what, int nlerr) {
  int err = errnoFromNl(nlerr);
  // strerror reads better than libnl's text and matches what `ip` prints.
  return Error(fmt::format("{}: {}", what, err == EIO ? nl_geterror(nlerr) : std::strerror(err)),
               err);
}

Result<int> ifIndex(std::string_view name) {
  std::string n(name);
  unsigned index = if_nametoindex(n.c_str());
  if (index == 0) return fail(systemError(fmt::format("find link {}", name), errno));
  return static_cast<int>(index);
}

// Sends a built request and waits for the kernel's ACK. nl_send_sync frees the message.
Result<void> sendRequest(nl_sock* sock, MsgPtr msg, std::string what) {
  int rc = nl_send_sync(sock, msg.release());
  if (rc < 0) return fail(nlError(std::move(what), rc));
  return {};
}

}  // namespace

Result<void> validateIfName(std::string_view name) {
  if (name.empty()) return fail("interface name is empty", EINVAL);
  if (name.size() >= IFNAMSIZ) {
    return fail(fmt::format("interface name \"{}\" is longer than {} bytes", name, IFNAMSIZ - 1),
                EINVAL);
  }
  if (name == "." || name == "..") return fail(fmt::format("interface name \"{}\" is reserved", name), EINVAL);
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\0' || c == '%') {
      return fail(fmt::format("interface name {:?} contains an invalid character", name), EINVAL);
    }
  }
  return {};
}

Result<std::unique_ptr<NetlinkLinks>> NetlinkLinks::open() {
  nl_sock* sock = nl_socket_alloc();
  if (sock == nullptr) return fail("netlink: allocate socket: out of memory", ENOMEM);
  int rc = nl_connect(sock, NETLINK_ROUTE);
  if (rc < 0) {
    nl_socket_free(sock);
    return fail(nlError("netlink: connect NETLINK_ROUTE", rc));
  }
  return std::unique_ptr<NetlinkLinks>(new NetlinkLinks(sock));
}

NetlinkLinks::~NetlinkLinks() { nl_socket_free(sock_); }

Result<void> NetlinkLinks::addVethPair(std::string_view name, std::string_view peer) {
  if (auto ok = validateIfName(name); !ok) return ok;
  if (auto ok = validateIfName(peer); !ok) return ok;
  std::unique_ptr<rtnl_link, VethDeleter> link(rtnl_link_veth_alloc());
  if (!link) return fail("netlink: allocate veth: out of memory", ENOMEM);
  rtnl_link_set_name(link.get(), std::string(name).c_str());
  LinkPtr peerLink(rtnl_link_veth_get_peer(link.get()));
  rtnl_link_set_name(peerLink.get(), std::string(peer).c_str());
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &raw);
  if (rc < 0) return fail(nlError(fmt::format("build veth {} request", name), rc));
  return sendRequest(sock_, MsgPtr(raw), fmt::format("create veth {} <-> {}", name, peer));
}

Result<void> NetlinkLinks::addBridge(std::string_view name) {
  if (auto ok = validateIfName(name); !ok) return ok;
  LinkPtr link(rtnl_link_alloc());
  if (!link) return fail("netlink: allocate link: out of memory", ENOMEM);
  rtnl_link_set_name(link.get(), std::string(name).c_str());
  if (int rc = rtnl_link_set_type(link.get(), "bridge"); rc < 0) {
    return fail(nlError(fmt::format("create bridge {}", name), rc));
  }
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &raw);
  if (rc < 0) return fail(nlError(fmt::format("build bridge {} request", name), rc));
  return sendRequest(sock_, MsgPtr(raw), fmt::format("create bridge {}", name));
}

// A RTM_NEWLINK without NLM_F_CREATE on an existing ifindex changes that link, as `ip link set`.
Result<void> NetlinkLinks::setMaster(std::string_view name, std::string_view master) {
  auto index = ifIndex(name);
  if (!index) return fail(std::move(index.error()));
  auto masterIndex = ifIndex(master);
  if (!masterIndex) return fail(std::move(masterIndex.error()));
  LinkPtr link(rtnl_link_alloc());
  rtnl_link_set_ifindex(link.get(), *index);
  rtnl_link_set_master(link.get(), *masterIndex);
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_add_request(link.get(), 0, &raw);
  if (rc < 0) return fail(nlError(fmt::format("build set master {} request", name), rc));
  return sendRequest(sock_, MsgPtr(raw), fmt::format("set master of {} to {}", name, master));
}

Result<void> NetlinkLinks::setUp(std::string_view name, bool up) {
  auto index = ifIndex(name);
  if (!index) return fail(std::move(index.error()));
  LinkPtr link(rtnl_link_alloc());
  rtnl_link_set_ifindex(link.get(), *index);
  if (up) {
    rtnl_link_set_flags(link.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(link.get(), IFF_UP);
  }
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_add_request(link.get(), 0, &raw);
  if (rc < 0) return fail(nlError(fmt::format("build set {} request", name), rc));
  return sendRequest(sock_, MsgPtr(raw), fmt::format("set {} {}", name, up ? "up" : "down"));
}

Result<void> NetlinkLinks::remove(std::string_view name) {
  auto index = ifIndex(name);
  if (!index) return fail(std::move(index.error()).withContext("delete link"));
  LinkPtr link(rtnl_link_alloc());
  rtnl_link_set_ifindex(link.get(), *index);
  nl_msg* raw = nullptr;
  int rc = rtnl_link_build_delete_request(link.get(), &raw);
  if (rc < 0) return fail(nlError(fmt::format("build delete {} request", name), rc));
  return sendRequest(sock_, MsgPtr(raw), fmt::format("delete link {}", name));
}

bool NetlinkLinks::exists(std::string_view name) {
  std::string n(name);
  return if_nametoindex(n.c_str()) != 0;
}

}  // namespace vfplane::netlink
