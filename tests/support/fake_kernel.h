// A kernel's link tables in memory, for unit tests of the CNI plugins' logic: netlink::Clients
// that answer the requests the plugins send by parsing the messages rtnl.h's builders made, and
// change the tables as the kernel would. Two namespaces: the host, and one pod.
//
// What it models: link lookups (by name, altname or index) and dumps; moves between the
// namespaces (IFLA_NET_NS_FD: the registered pod fd means the pod, any other fd the host), with
// rename, MAC, MTU, alias and up in the same request, and EEXIST when a name or altname is taken
// on the other side; altname add and drop; deletes; addresses and routes (a move flushes them).
// What it does not: link creation, neighbours. failNext() makes one request fail as the kernel
// would refuse it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/netlink/rtnl.h"

namespace vfplane::test {

class FakeKernel {
 public:
  enum Ns { kHost = 0, kPod = 1 };

  struct Link {
    int ifindex = 0;  // assigned by addLink
    std::string name = "";
    std::string mac = "";
    int mtu = 1500;
    unsigned flags = 0;  // IFF_UP
    std::string alias = "";
    std::vector<std::string> altnames = {};
    std::string parentDevice = "";  // IFLA_PARENT_DEV_NAME
    std::vector<netlink::IpPrefix> addresses = {};
  };

  // Adds a link; returns its ifindex.
  int addLink(Ns ns, Link link);
  // The link as the namespace has it now, by name or altname.
  std::optional<Link> find(Ns ns, std::string_view name) const;
  size_t linkCount(Ns ns) const;
  // Routes of the namespace, "dst via gw dev ifindex".
  std::vector<std::string> routes(Ns ns) const;

  // The fd whose IFLA_NET_NS_FD means the pod (the request's netns handle).
  void setPodFd(int fd) { podFd_ = fd; }
  // The next request of this type (RTM_NEWLINK, RTM_NEWADDR, ...) fails with err, once.
  void failNext(uint16_t type, int err) { failures_[type] = err; }
  // Every request that changed something, in order: "host RTM_NEWLINK 7", ...
  std::vector<std::string> requests() const;

  // Clients for the plugins: null means the host, any namespace handle the pod.
  netlink::ClientFactory factory();

 private:
  friend class FakeClient;
  Result<void> execute(Ns ns, const nlmsghdr* h, std::string_view what);
  Result<std::vector<std::vector<uint8_t>>> query(Ns ns, const nlmsghdr* h, std::string_view what);
  Link* byIndex(Ns ns, int ifindex);
  Link* byName(Ns ns, std::string_view name);

  mutable std::mutex mu_;
  std::map<int, Link> links_[2];                        // by ifindex
  std::vector<std::pair<int, std::string>> routes_[2];  // oif, text
  int nextIndex_ = 100;
  int podFd_ = -1;
  std::map<uint16_t, int> failures_;
  std::vector<std::string> requests_;
};

}  // namespace vfplane::test
