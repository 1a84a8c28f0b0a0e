// rtnetlink requests a CNI plugin makes: look links up, move and rename them between network
// namespaces, change their MAC, MTU, state and altnames, and manage addresses and routes.
//
// Each request is built as a libnl message by a build*() function and sent through a Client (an
// Rtnl socket, or a test's fake), so tests can parse back exactly what would go to the kernel. An
// Rtnl socket belongs to the network namespace it was opened in, whatever namespace the thread is
// in later.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/base/fd.h"
#include "vfplane/netlink/netns.h"

struct nl_msg;
struct nlmsghdr;

namespace vfplane::netlink {

struct NlMsgDeleter {
  void operator()(nl_msg* msg) const;
};
using NlMsg = std::unique_ptr<nl_msg, NlMsgDeleter>;
// The built message's header, for tests that parse it back.
const nlmsghdr* header(const NlMsg& msg);

struct MacAddress {
  std::array<uint8_t, 6> bytes{};
  // "aa:bb:cc:dd:ee:ff" (either case, ':' or '-'). EINVAL with the text quoted otherwise.
  static Result<MacAddress> parse(std::string_view text);
  std::string str() const;  // lower case, ':'
  bool isZero() const;
  auto operator<=>(const MacAddress&) const = default;
};

// An address with a prefix length: "10.1.0.5/24", "fd00::5/64". A bare address is a host prefix.
struct IpPrefix {
  int family = 0;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};
  int length = 0;
  static Result<IpPrefix> parse(std::string_view text);
  std::string str() const;         // "10.1.0.5/24"
  std::string addressStr() const;  // "10.1.0.5"
  size_t addrLen() const { return family == 2 ? 4 : 16; }
  bool operator==(const IpPrefix&) const = default;
};

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  std::string mac;  // "" when the link has no hardware address
  int mtu = 0;
  unsigned flags = 0;    // IFF_*
  bool carrier = false;  // IFLA_CARRIER (the driver's view, also while down); else IFF_LOWER_UP
  std::vector<std::string> altnames;
  std::string alias;         // IFLA_IFALIAS
  std::string kind;          // IFLA_INFO_KIND: "veth", "macvlan", ... ; "" for hardware
  std::string parentDevice;  // IFLA_PARENT_DEV_NAME: the PCI address of a hardware netdev
  int parentIndex = 0;       // IFLA_LINK: a macvlan's master (an index in linkNetnsId's namespace)
  int linkNetnsId = -1;      // IFLA_LINK_NETNSID: -1 when the parent is in the link's own namespace
  uint32_t macvlanMode = 0;  // IFLA_MACVLAN_MODE (MACVLAN_MODE_*), for kind "macvlan"
  bool up() const;
};

// What buildChangeLink sets; an unset field is left alone.
struct LinkChange {
  std::optional<MacAddress> mac;
  std::optional<int> mtu;
  std::optional<bool> up;
  std::optional<std::string> name;
  std::optional<std::string> alias;
  std::optional<bool> arpNotify;  // IPv4 devconf arp_notify, through IFLA_AF_SPEC
  std::optional<int> master;      // IFLA_MASTER: enslave to this ifindex (a bridge); 0 releases
};

// A macvlan link to create. MACVLAN_MODE_* values from <linux/if_link.h>.
struct MacvlanSpec {
  std::string name;
  int masterIndex = 0;  // in the namespace of the socket that sends the request
  uint32_t mode = 0;
  std::optional<int> mtu;
  std::optional<MacAddress> mac;
  int netnsFd = -1;  // create it there; -1: in the socket's namespace
};

// One path of a multipath route (RTA_MULTIPATH).
struct NextHop {
  std::optional<IpPrefix> gateway;
  int oif = 0;
  int weight = 1;  // rtnh_hops + 1
  bool operator==(const NextHop&) const = default;
};

// A route as the kernel lists it.
struct RouteInfo {
  IpPrefix dst;  // length 0 for a default route
  std::optional<IpPrefix> gateway;
  int oif = 0;  // 0 for multipath routes and for routes with no device (blackhole, ...)
  int table = 0;
  int type = 0;                   // RTN_UNICAST, RTN_BLACKHOLE, RTN_UNREACHABLE, ...
  std::vector<NextHop> nexthops;  // a multipath route's paths; empty for a single-path route

  // Every link the route sends out of: oif, or each path's.
  std::vector<int> outputLinks() const;
};

// A neighbour (ARP or NDP) entry.
struct NeighbourInfo {
  int ifindex = 0;
  IpPrefix ip;                    // a host prefix
  std::optional<MacAddress> mac;  // absent while the entry is incomplete
  uint16_t state = 0;             // NUD_* bits
};

// ---- builders -------------------------------------------------------------------------------

// RTM_GETLINK of one link. A name lookup also finds altnames, as the kernel resolves both.
NlMsg buildGetLink(std::string_view name);
NlMsg buildGetLinkByIndex(int ifindex);
NlMsg buildGetLinks();  // dump
// Moves link ifindex into the namespace of netnsFd and gives it newName there, in one request:
// no temporary name, no window for udev to see a half-done rename. The kernel applies `then`
// (MAC, MTU, up, arp_notify; its name is ignored) in the target namespace within the same
// request, after the move and the rename, so a plugin pays one round trip and one RTNL lock.
NlMsg buildMoveLink(int ifindex, int netnsFd, std::string_view newName,
                    const LinkChange& then = {});
NlMsg buildChangeLink(int ifindex, const LinkChange& change);
// RTM_NEWLINKPROP / RTM_DELLINKPROP with one IFLA_ALT_IFNAME.
NlMsg buildAltname(int ifindex, std::string_view altname, bool add);
NlMsg buildAddress(int ifindex, const IpPrefix& prefix, bool add);
NlMsg buildGetAddresses();  // dump, every family
// RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL: an existing name is EEXIST, never an adoption. With
// netnsFd the kernel resolves the master in the sender's namespace and creates the link in the
// target one, so the link never exists in the host.
NlMsg buildCreateMacvlan(const MacvlanSpec& spec);
NlMsg buildDeleteLink(int ifindex);
// A veth pair, both ends in the socket's namespace, down. NLM_F_EXCL: an existing name is EEXIST.
NlMsg buildCreateVeth(std::string_view name, std::string_view peer);
// A bridge, down. NLM_F_EXCL as above.
NlMsg buildCreateBridge(std::string_view name);
NlMsg buildGetRoutes(int family);      // dump
NlMsg buildGetNeighbours(int family);  // dump
// A unicast route in the main table via oif; gateway may be empty for an on-link route.
NlMsg buildRoute(const IpPrefix& dst, std::optional<IpPrefix> gateway, int oif, bool add);

// ---- parsers --------------------------------------------------------------------------------

// RTM_NEWLINK, or RTM_DELLINK (the link as it was).
Result<LinkInfo> parseLink(const nlmsghdr* hdr);
struct AddressInfo {
  int ifindex = 0;
  IpPrefix prefix;
};
Result<AddressInfo> parseAddress(const nlmsghdr* hdr);
Result<RouteInfo> parseRoute(const nlmsghdr* hdr);
Result<NeighbourInfo> parseNeighbour(const nlmsghdr* hdr);

// ---- socket ---------------------------------------------------------------------------------

// An rtnetlink conversation with the kernel of one network namespace. execute() and query() are
// the two ways to talk to it; everything else is built on them, so a fake that answers them from
// a model (tests/support/fake_kernel.h) stands in for the kernel where a test needs no real one.
class Client {
 public:
  virtual ~Client() = default;

  // Sends a request that changes something and waits for the kernel's ACK. On failure the error
  // reads "<what>: <strerror>" and keeps the errno.
  virtual Result<void> execute(NlMsg msg, std::string_view what) = 0;
  // Sends a get or dump request and returns every reply message (each a copy of one nlmsghdr).
  virtual Result<std::vector<std::vector<uint8_t>>> query(NlMsg msg, std::string_view what) = 0;

  // nullopt when no link has that name (or altname) / index here.
  Result<std::optional<LinkInfo>> link(std::string_view name);
  Result<std::optional<LinkInfo>> link(int ifindex);
  Result<std::vector<LinkInfo>> links();
  Result<std::vector<IpPrefix>> addresses(int ifindex);
  // Every address of every link.
  Result<std::vector<AddressInfo>> allAddresses();
  // The main table's unicast routes of one family.
  Result<std::vector<RouteInfo>> routes(int family);
  // The main table's routes of one family, of every type (blackhole and unreachable too).
  Result<std::vector<RouteInfo>> mainRoutes(int family);
  Result<std::vector<NeighbourInfo>> neighbours(int family);
  // The link of the first default route (IPv4, else IPv6), as the reference plugins pick a
  // master; nullopt when there is none.
  Result<std::optional<int>> defaultRouteLink();
  // Every link that an IPv4 or IPv6 default route of the main table leaves by, multipath paths
  // included: the links that carry this namespace's way out.
  Result<std::vector<int>> defaultRouteLinks();

 private:
  Result<std::optional<LinkInfo>> linkQuery(NlMsg msg, std::string_view what);
};

// The kernel's side: a NETLINK_ROUTE socket.
class Rtnl final : public Client {
 public:
  // In the calling thread's namespace.
  static Result<Rtnl> open();
  static Result<Rtnl> openIn(const Netns& ns);

  Result<void> execute(NlMsg msg, std::string_view what) override;
  Result<std::vector<std::vector<uint8_t>>> query(NlMsg msg, std::string_view what) override;

 private:
  explicit Rtnl(Fd fd);
  Fd fd_;
  uint32_t seq_ = 1;
  // One receive buffer per socket, not zeroed: a zeroed 64 KiB vector per request (memset and
  // fresh pages) was a visible share of a plugin's ADD.
  std::unique_ptr<uint8_t[]> buf_;
};

// Opens a client for the network namespace ns, or for the caller's own when ns is null. The CNI
// plugins are given one, so that their logic runs against a fake kernel in unit tests.
using ClientFactory = std::function<Result<std::unique_ptr<Client>>(const Netns* ns)>;
// The kernel's: Rtnl::open(), or Rtnl::openIn(*ns).
ClientFactory kernelClients();

}  // namespace vfplane::netlink
