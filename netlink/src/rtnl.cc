#include "vfplane/netlink/rtnl.h"

// glibc's net/if.h must come before linux/if.h, which then defers to it; sorted, they clash.
// clang-format off
#include <net/if.h>
#include <linux/if.h>
// clang-format on

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace vfplane::netlink {
namespace {

constexpr size_t kRecvBuffer = 64 * 1024;

NlMsg newMessage(int type, int flags) {
  NlMsg msg(nlmsg_alloc_simple(type, flags));
  // Allocation failure of a few hundred bytes is not something a plugin can recover from.
  if (!msg) std::abort();
  return msg;
}

template <class T>
void appendHeader(const NlMsg& msg, T body) {
  if (nlmsg_append(msg.get(), &body, sizeof(body), NLMSG_ALIGNTO) < 0) std::abort();
}

void put(const NlMsg& msg, int type, const void* data, size_t len) {
  if (nla_put(msg.get(), type, static_cast<int>(len), data) < 0) std::abort();
}
void putString(const NlMsg& msg, int type, std::string_view s) {
  std::string copy(s);
  put(msg, type, copy.c_str(), copy.size() + 1);
}
void putU32(const NlMsg& msg, int type, uint32_t v) { put(msg, type, &v, sizeof(v)); }

NlMsg linkMessage(int type, int flags, int ifindex) {
  NlMsg msg = newMessage(type, flags);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  appendHeader(msg, ifi);
  return msg;
}

std::string attrString(const nlattr* a) {
  const char* s = static_cast<const char*>(nla_data(a));
  return std::string(s, strnlen(s, static_cast<size_t>(nla_len(a))));
}

std::string formatMac(const uint8_t* b, int len) {
  std::string out;
  for (int i = 0; i < len; ++i) out += fmt::format("{}{:02x}", i == 0 ? "" : ":", b[i]);
  return out;
}

}  // namespace

void NlMsgDeleter::operator()(nl_msg* msg) const { nlmsg_free(msg); }
const nlmsghdr* header(const NlMsg& msg) { return nlmsg_hdr(msg.get()); }

// ---- value types ----------------------------------------------------------------------------

Result<MacAddress> MacAddress::parse(std::string_view text) {
  MacAddress mac;
  auto bad = [&] {
    return fail(fmt::format("\"{}\" is not a MAC address (aa:bb:cc:dd:ee:ff)", text), EINVAL);
  };
  if (text.size() != 17) return bad();
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':' && text[i * 3 - 1] != '-') return bad();
    auto part = text.substr(i * 3, 2);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
    if (ec != std::errc() || end != part.data() + 2) return bad();
    mac.bytes[i] = static_cast<uint8_t>(v);
  }
  return mac;
}

std::string MacAddress::str() const { return formatMac(bytes.data(), 6); }
bool MacAddress::isZero() const {
  for (auto b : bytes) {
    if (b != 0) return false;
  }
  return true;
}

Result<IpPrefix> IpPrefix::parse(std::string_view text) {
  IpPrefix p;
  std::string addr(text.substr(0, text.find('/')));
  if (::inet_pton(AF_INET, addr.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET;
  } else if (::inet_pton(AF_INET6, addr.c_str(), p.addr.data()) == 1) {
    p.family = AF_INET6;
  } else {
    return fail(fmt::format("\"{}\" is not an IP address", text), EINVAL);
  }
  int max = p.family == AF_INET ? 32 : 128;
  p.length = max;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto len = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), p.length);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || p.length < 0 ||
        p.length > max) {
      return fail(fmt::format("\"{}\": prefix length must be 0-{}", text, max), EINVAL);
    }
  }
  return p;
}

std::string IpPrefix::addressStr() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr.data(), buf, sizeof(buf));
  return buf;
}
std::string IpPrefix::str() const { return fmt::format("{}/{}", addressStr(), length); }

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }

// ---- builders -------------------------------------------------------------------------------

NlMsg buildGetLink(std::string_view name) {
  NlMsg msg = linkMessage(RTM_GETLINK, NLM_F_REQUEST, 0);
  putString(msg, IFLA_IFNAME, name);
  return msg;
}

NlMsg buildGetLinkByIndex(int ifindex) { return linkMessage(RTM_GETLINK, NLM_F_REQUEST, ifindex); }
NlMsg buildGetLinks() { return linkMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 0); }

NlMsg buildMoveLink(int ifindex, int netnsFd, std::string_view newName, const LinkChange& then) {
  LinkChange change = then;
  change.name = std::string(newName);
  NlMsg msg = buildChangeLink(ifindex, change);
  putU32(msg, IFLA_NET_NS_FD, static_cast<uint32_t>(netnsFd));
  return msg;
}

NlMsg buildChangeLink(int ifindex, const LinkChange& change) {
  NlMsg msg = newMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = ifindex;
  if (change.up) {
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = *change.up ? IFF_UP : 0;
  }
  appendHeader(msg, ifi);
  if (change.name) putString(msg, IFLA_IFNAME, *change.name);
  if (change.mtu) putU32(msg, IFLA_MTU, static_cast<uint32_t>(*change.mtu));
  if (change.mac) put(msg, IFLA_ADDRESS, change.mac->bytes.data(), change.mac->bytes.size());
  if (change.alias) putString(msg, IFLA_IFALIAS, *change.alias);
  if (change.master) putU32(msg, IFLA_MASTER, static_cast<uint32_t>(*change.master));
  if (change.arpNotify) {
    nlattr* spec = nla_nest_start(msg.get(), IFLA_AF_SPEC);
    nlattr* inet = nla_nest_start(msg.get(), AF_INET);
    nlattr* conf = nla_nest_start(msg.get(), IFLA_INET_CONF);
    putU32(msg, IPV4_DEVCONF_ARP_NOTIFY, *change.arpNotify ? 1 : 0);
    nla_nest_end(msg.get(), conf);
    nla_nest_end(msg.get(), inet);
    nla_nest_end(msg.get(), spec);
  }
  return msg;
}

NlMsg buildAltname(int ifindex, std::string_view altname, bool add) {
  NlMsg msg =
      linkMessage(add ? RTM_NEWLINKPROP : RTM_DELLINKPROP,
                  NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0), ifindex);
  nlattr* list = nla_nest_start(msg.get(), IFLA_PROP_LIST);
  putString(msg, IFLA_ALT_IFNAME, altname);
  nla_nest_end(msg.get(), list);
  return msg;
}

NlMsg buildAddress(int ifindex, const IpPrefix& prefix, bool add) {
  NlMsg msg = newMessage(add ? RTM_NEWADDR : RTM_DELADDR,
                         NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0));
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(prefix.family);
  ifa.ifa_prefixlen = static_cast<uint8_t>(prefix.length);
  ifa.ifa_index = static_cast<uint32_t>(ifindex);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  appendHeader(msg, ifa);
  put(msg, IFA_LOCAL, prefix.addr.data(), prefix.addrLen());
  put(msg, IFA_ADDRESS, prefix.addr.data(), prefix.addrLen());
  if (prefix.family == AF_INET6) {
    // The pod's address is assigned by IPAM, which already made sure it is unique.
    uint32_t flags = IFA_F_NODAD;
    putU32(msg, IFA_FLAGS, flags);
  }
  return msg;
}

NlMsg buildCreateMacvlan(const MacvlanSpec& spec) {
  NlMsg msg = linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 0);
  putString(msg, IFLA_IFNAME, spec.name);
  putU32(msg, IFLA_LINK, static_cast<uint32_t>(spec.masterIndex));
  if (spec.mtu) putU32(msg, IFLA_MTU, static_cast<uint32_t>(*spec.mtu));
  if (spec.mac) put(msg, IFLA_ADDRESS, spec.mac->bytes.data(), spec.mac->bytes.size());
  if (spec.netnsFd >= 0) putU32(msg, IFLA_NET_NS_FD, static_cast<uint32_t>(spec.netnsFd));
  nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
  putString(msg, IFLA_INFO_KIND, "macvlan");
  nlattr* data = nla_nest_start(msg.get(), IFLA_INFO_DATA);
  putU32(msg, IFLA_MACVLAN_MODE, spec.mode);
  nla_nest_end(msg.get(), data);
  nla_nest_end(msg.get(), info);
  return msg;
}

NlMsg buildDeleteLink(int ifindex) {
  return linkMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifindex);
}

NlMsg buildCreateVeth(std::string_view name, std::string_view peer) {
  NlMsg msg = linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 0);
  putString(msg, IFLA_IFNAME, name);
  nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
  putString(msg, IFLA_INFO_KIND, "veth");
  nlattr* data = nla_nest_start(msg.get(), IFLA_INFO_DATA);
  // The peer is described as a link message of its own: an ifinfomsg, then its attributes.
  nlattr* peerAttr = nla_nest_start(msg.get(), VETH_INFO_PEER);
  ifinfomsg peerIfi{};
  peerIfi.ifi_family = AF_UNSPEC;
  appendHeader(msg, peerIfi);
  putString(msg, IFLA_IFNAME, peer);
  nla_nest_end(msg.get(), peerAttr);
  nla_nest_end(msg.get(), data);
  nla_nest_end(msg.get(), info);
  return msg;
}

NlMsg buildCreateBridge(std::string_view name) {
  NlMsg msg = linkMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, 0);
  putString(msg, IFLA_IFNAME, name);
  nlattr* info = nla_nest_start(msg.get(), IFLA_LINKINFO);
  putString(msg, IFLA_INFO_KIND, "bridge");
  nla_nest_end(msg.get(), info);
  return msg;
}

NlMsg buildGetRoutes(int family) {
  NlMsg msg = newMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  appendHeader(msg, rtm);
  return msg;
}

NlMsg buildGetNeighbours(int family) {
  NlMsg msg = newMessage(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP);
  ndmsg ndm{};
  ndm.ndm_family = static_cast<uint8_t>(family);
  appendHeader(msg, ndm);
  return msg;
}

NlMsg buildGetAddresses() {
  NlMsg msg = newMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
  ifaddrmsg ifa{};
  ifa.ifa_family = AF_UNSPEC;
  appendHeader(msg, ifa);
  return msg;
}

NlMsg buildRoute(const IpPrefix& dst, std::optional<IpPrefix> gateway, int oif, bool add) {
  NlMsg msg = newMessage(add ? RTM_NEWROUTE : RTM_DELROUTE,
                         NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0));
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(dst.family);
  rtm.rtm_dst_len = static_cast<uint8_t>(dst.length);
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_protocol = RTPROT_BOOT;
  rtm.rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm.rtm_type = RTN_UNICAST;
  appendHeader(msg, rtm);
  if (dst.length > 0) put(msg, RTA_DST, dst.addr.data(), dst.addrLen());
  if (gateway) put(msg, RTA_GATEWAY, gateway->addr.data(), gateway->addrLen());
  putU32(msg, RTA_OIF, static_cast<uint32_t>(oif));
  return msg;
}

// ---- parsers --------------------------------------------------------------------------------

Result<LinkInfo> parseLink(const nlmsghdr* hdr) {
  // A deletion notification describes the link as it was, in the same shape.
  if ((hdr->nlmsg_type != RTM_NEWLINK && hdr->nlmsg_type != RTM_DELLINK) ||
      hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) {
    return fail("netlink: not a link message", EIO);
  }
  const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(hdr));
  nlattr* tb[IFLA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(hdr), sizeof(ifinfomsg), tb, IFLA_MAX, nullptr) < 0) {
    return fail("netlink: malformed link message", EIO);
  }
  LinkInfo info;
  info.ifindex = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  info.carrier =
      tb[IFLA_CARRIER] ? nla_get_u8(tb[IFLA_CARRIER]) != 0 : (ifi->ifi_flags & IFF_LOWER_UP) != 0;
  if (tb[IFLA_IFNAME]) info.name = attrString(tb[IFLA_IFNAME]);
  if (tb[IFLA_ADDRESS]) {
    info.mac = formatMac(static_cast<const uint8_t*>(nla_data(tb[IFLA_ADDRESS])),
                         nla_len(tb[IFLA_ADDRESS]));
  }
  if (tb[IFLA_MTU]) info.mtu = static_cast<int>(nla_get_u32(tb[IFLA_MTU]));
  if (tb[IFLA_IFALIAS]) info.alias = attrString(tb[IFLA_IFALIAS]);
  if (tb[IFLA_PARENT_DEV_NAME]) info.parentDevice = attrString(tb[IFLA_PARENT_DEV_NAME]);
  if (tb[IFLA_PROP_LIST]) {
    nlattr* pos = nullptr;
    int rem = 0;
    nla_for_each_nested(pos, tb[IFLA_PROP_LIST], rem) {
      if (nla_type(pos) == IFLA_ALT_IFNAME) info.altnames.push_back(attrString(pos));
    }
  }
  if (tb[IFLA_LINKINFO]) {
    nlattr* li[IFLA_INFO_MAX + 1] = {};
    if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], nullptr) == 0 &&
        li[IFLA_INFO_KIND]) {
      info.kind = attrString(li[IFLA_INFO_KIND]);
      nlattr* data[IFLA_MACVLAN_MAX + 1] = {};
      if (info.kind == "macvlan" && li[IFLA_INFO_DATA] &&
          nla_parse_nested(data, IFLA_MACVLAN_MAX, li[IFLA_INFO_DATA], nullptr) == 0 &&
          data[IFLA_MACVLAN_MODE]) {
        info.macvlanMode = nla_get_u32(data[IFLA_MACVLAN_MODE]);
      }
    }
  }
  if (tb[IFLA_LINK]) info.parentIndex = static_cast<int>(nla_get_u32(tb[IFLA_LINK]));
  if (tb[IFLA_LINK_NETNSID])
    info.linkNetnsId = static_cast<int>(nla_get_s32(tb[IFLA_LINK_NETNSID]));
  return info;
}

Result<AddressInfo> parseAddress(const nlmsghdr* hdr) {
  if (hdr->nlmsg_type != RTM_NEWADDR || hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg))) {
    return fail("netlink: not an address message", EIO);
  }
  const auto* ifa = static_cast<const ifaddrmsg*>(nlmsg_data(hdr));
  nlattr* tb[IFA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(hdr), sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) {
    return fail("netlink: malformed address message", EIO);
  }
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
  nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  AddressInfo out;
  out.ifindex = static_cast<int>(ifa->ifa_index);
  out.prefix.family = ifa->ifa_family;
  out.prefix.length = ifa->ifa_prefixlen;
  if (a == nullptr || static_cast<size_t>(nla_len(a)) != out.prefix.addrLen()) {
    return fail("netlink: address message without an address", EIO);
  }
  std::memcpy(out.prefix.addr.data(), nla_data(a), out.prefix.addrLen());
  return out;
}

Result<RouteInfo> parseRoute(const nlmsghdr* hdr) {
  if ((hdr->nlmsg_type != RTM_NEWROUTE && hdr->nlmsg_type != RTM_DELROUTE) ||
      hdr->nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg))) {
    return fail("netlink: not a route message", EIO);
  }
  const auto* rtm = static_cast<const rtmsg*>(nlmsg_data(hdr));
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(hdr), sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) {
    return fail("netlink: malformed route message", EIO);
  }
  RouteInfo out;
  out.dst.family = rtm->rtm_family;
  out.dst.length = rtm->rtm_dst_len;
  out.table = tb[RTA_TABLE] ? static_cast<int>(nla_get_u32(tb[RTA_TABLE])) : rtm->rtm_table;
  size_t len = out.dst.addrLen();
  if (tb[RTA_DST] && static_cast<size_t>(nla_len(tb[RTA_DST])) == len)
    std::memcpy(out.dst.addr.data(), nla_data(tb[RTA_DST]), len);
  if (tb[RTA_GATEWAY] && static_cast<size_t>(nla_len(tb[RTA_GATEWAY])) == len) {
    IpPrefix gw;
    gw.family = rtm->rtm_family;
    gw.length = static_cast<int>(len * 8);
    std::memcpy(gw.addr.data(), nla_data(tb[RTA_GATEWAY]), len);
    out.gateway = gw;
  }
  if (tb[RTA_OIF]) out.oif = static_cast<int>(nla_get_u32(tb[RTA_OIF]));
  out.type = rtm->rtm_type;
  if (tb[RTA_MULTIPATH]) {
    // A packed list of rtnexthop headers, each followed by its own attributes (RTA_GATEWAY).
    const auto* p = static_cast<const uint8_t*>(nla_data(tb[RTA_MULTIPATH]));
    int left = nla_len(tb[RTA_MULTIPATH]);
    while (left >= static_cast<int>(sizeof(rtnexthop))) {
      const auto* nh = reinterpret_cast<const rtnexthop*>(p);
      if (nh->rtnh_len < sizeof(rtnexthop) || nh->rtnh_len > left) {
        return fail("netlink: malformed multipath route", EIO);
      }
      NextHop hop;
      hop.oif = nh->rtnh_ifindex;
      hop.weight = nh->rtnh_hops + 1;
      int attrLen = nh->rtnh_len - static_cast<int>(RTNH_LENGTH(0));
      for (const auto* rta = reinterpret_cast<const rtattr*>(RTNH_DATA(nh)); RTA_OK(rta, attrLen);
           rta = RTA_NEXT(rta, attrLen)) {
        if (rta->rta_type == RTA_GATEWAY && RTA_PAYLOAD(rta) == len) {
          IpPrefix gw;
          gw.family = rtm->rtm_family;
          gw.length = static_cast<int>(len * 8);
          std::memcpy(gw.addr.data(), RTA_DATA(rta), len);
          hop.gateway = gw;
        }
      }
      out.nexthops.push_back(hop);
      int step = static_cast<int>(RTNH_ALIGN(nh->rtnh_len));
      p += step;
      left -= step;
    }
  }
  return out;
}

std::vector<int> RouteInfo::outputLinks() const {
  std::vector<int> out;
  if (oif > 0) out.push_back(oif);
  for (const auto& hop : nexthops) {
    if (hop.oif > 0) out.push_back(hop.oif);
  }
  return out;
}

Result<NeighbourInfo> parseNeighbour(const nlmsghdr* hdr) {
  if ((hdr->nlmsg_type != RTM_NEWNEIGH && hdr->nlmsg_type != RTM_DELNEIGH) ||
      hdr->nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg))) {
    return fail("netlink: not a neighbour message", EIO);
  }
  const auto* ndm = static_cast<const ndmsg*>(nlmsg_data(hdr));
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(const_cast<nlmsghdr*>(hdr), sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0) {
    return fail("netlink: malformed neighbour message", EIO);
  }
  NeighbourInfo out;
  out.ifindex = ndm->ndm_ifindex;
  out.state = ndm->ndm_state;
  out.ip.family = ndm->ndm_family;
  size_t len = out.ip.addrLen();
  out.ip.length = static_cast<int>(len * 8);
  if (tb[NDA_DST] == nullptr || static_cast<size_t>(nla_len(tb[NDA_DST])) != len) {
    return fail("netlink: neighbour message without an address", EIO);
  }
  std::memcpy(out.ip.addr.data(), nla_data(tb[NDA_DST]), len);
  if (tb[NDA_LLADDR] && nla_len(tb[NDA_LLADDR]) == 6) {
    MacAddress mac;
    std::memcpy(mac.bytes.data(), nla_data(tb[NDA_LLADDR]), 6);
    out.mac = mac;
  }
  return out;
}

// ---- socket ---------------------------------------------------------------------------------

Rtnl::Rtnl(Fd fd)
    : fd_(std::move(fd)), buf_(std::make_unique_for_overwrite<uint8_t[]>(kRecvBuffer)) {}

Result<Rtnl> Rtnl::open() {
  Fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd.valid()) return fail(systemError("netlink: socket", errno));
  // Extended ACKs carry the kernel's own explanation; harmless when unsupported.
  int one = 1;
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  ::setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
    return fail(systemError("netlink: bind", errno));
  }
  return Rtnl(std::move(fd));
}

Result<Rtnl> Rtnl::openIn(const Netns& ns) {
  auto entered = NetnsEntered::enter(ns);
  if (!entered) return fail(std::move(entered.error()));
  return open();
}

namespace {

// The kernel's extended-ack message, when it sent one.
std::string extAckMessage(const nlmsghdr* hdr) {
  if (!(hdr->nlmsg_flags & NLM_F_ACK_TLVS)) return "";
  const auto* err = static_cast<const nlmsgerr*>(nlmsg_data(hdr));
  size_t offset = sizeof(nlmsgerr);
  if (!(hdr->nlmsg_flags & NLM_F_CAPPED)) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  if (NLMSG_LENGTH(offset) > hdr->nlmsg_len) return "";
  int len = static_cast<int>(hdr->nlmsg_len - NLMSG_LENGTH(offset));
  auto* attrs =
      reinterpret_cast<nlattr*>(reinterpret_cast<char*>(const_cast<nlmsgerr*>(err)) + offset);
  nlattr* tb[NLMSGERR_ATTR_MAX + 1] = {};
  if (nla_parse(tb, NLMSGERR_ATTR_MAX, attrs, len, nullptr) < 0 || !tb[NLMSGERR_ATTR_MSG])
    return "";
  return attrString(tb[NLMSGERR_ATTR_MSG]);
}

}  // namespace

Result<std::vector<std::vector<uint8_t>>> Rtnl::query(NlMsg msg, std::string_view what) {
  nlmsghdr* hdr = nlmsg_hdr(msg.get());
  uint32_t seq = seq_++;
  hdr->nlmsg_seq = seq;
  hdr->nlmsg_pid = 0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd_.get(), hdr, hdr->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof(kernel)) < 0) {
    return fail(systemError(fmt::format("{}: netlink send", what), errno));
  }
  bool wantAck = hdr->nlmsg_flags & NLM_F_ACK;
  bool dump = (hdr->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  std::vector<std::vector<uint8_t>> replies;
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf_.get(), kRecvBuffer, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(systemError(fmt::format("{}: netlink receive", what), errno));
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.get()); NLMSG_OK(h, len);
         h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // a late answer to an earlier request
      if (h->nlmsg_type == NLMSG_DONE) return replies;
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = -static_cast<const nlmsgerr*>(nlmsg_data(h))->error;
        if (err == 0) return replies;
        std::string ext = extAckMessage(h);
        Error e = systemError(what, err);
        if (!ext.empty()) e = Error(fmt::format("{} ({})", e.message(), ext), err);
        return fail(std::move(e));
      }
      auto* bytes = reinterpret_cast<const uint8_t*>(h);
      replies.emplace_back(bytes, bytes + h->nlmsg_len);
      if (!dump && !wantAck && !(h->nlmsg_flags & NLM_F_MULTI)) return replies;
    }
  }
}

Result<void> Rtnl::execute(NlMsg msg, std::string_view what) {
  nlmsg_hdr(msg.get())->nlmsg_flags |= NLM_F_ACK;
  auto r = query(std::move(msg), what);
  if (!r) return fail(std::move(r.error()));
  return {};
}

Result<std::optional<LinkInfo>> Client::linkQuery(NlMsg msg, std::string_view what) {
  auto replies = query(std::move(msg), what);
  if (!replies) {
    if (replies.error().sysErrno() == ENODEV) return std::optional<LinkInfo>();
    return fail(std::move(replies.error()));
  }
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWLINK) continue;
    auto info = parseLink(h);
    if (!info) return fail(std::move(info.error()).withContext(what));
    return std::optional<LinkInfo>(std::move(*info));
  }
  return std::optional<LinkInfo>();
}

Result<std::optional<LinkInfo>> Client::link(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ) return std::optional<LinkInfo>();
  return linkQuery(buildGetLink(name), fmt::format("get link {}", name));
}

Result<std::optional<LinkInfo>> Client::link(int ifindex) {
  return linkQuery(buildGetLinkByIndex(ifindex), fmt::format("get link #{}", ifindex));
}

Result<std::vector<LinkInfo>> Client::links() {
  auto replies = query(buildGetLinks(), "list links");
  if (!replies) return fail(std::move(replies.error()));
  std::vector<LinkInfo> out;
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWLINK) continue;
    if (auto l = parseLink(h)) out.push_back(std::move(*l));
  }
  return out;
}

Result<std::vector<AddressInfo>> Client::allAddresses() {
  auto replies = query(buildGetAddresses(), "list addresses");
  if (!replies) return fail(std::move(replies.error()));
  std::vector<AddressInfo> out;
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWADDR) continue;
    if (auto a = parseAddress(h)) out.push_back(std::move(*a));
  }
  return out;
}

Result<std::vector<IpPrefix>> Client::addresses(int ifindex) {
  auto all = allAddresses();
  if (!all) return fail(std::move(all.error()).withContext(fmt::format("link #{}", ifindex)));
  std::vector<IpPrefix> out;
  for (const auto& a : *all) {
    if (a.ifindex == ifindex) out.push_back(a.prefix);
  }
  return out;
}

Result<std::vector<RouteInfo>> Client::mainRoutes(int family) {
  auto replies = query(buildGetRoutes(family), "list routes");
  if (!replies) return fail(std::move(replies.error()));
  std::vector<RouteInfo> out;
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWROUTE) continue;
    auto route = parseRoute(h);
    if (route && route->table == RT_TABLE_MAIN) out.push_back(std::move(*route));
  }
  return out;
}

Result<std::vector<RouteInfo>> Client::routes(int family) {
  auto all = mainRoutes(family);
  if (!all) return fail(std::move(all.error()));
  std::erase_if(*all, [](const RouteInfo& r) { return r.type != RTN_UNICAST; });
  return all;
}

Result<std::vector<NeighbourInfo>> Client::neighbours(int family) {
  auto replies = query(buildGetNeighbours(family), "list neighbours");
  if (!replies) return fail(std::move(replies.error()));
  std::vector<NeighbourInfo> out;
  for (const auto& r : *replies) {
    auto* h = reinterpret_cast<const nlmsghdr*>(r.data());
    if (h->nlmsg_type != RTM_NEWNEIGH) continue;
    if (auto n = parseNeighbour(h)) out.push_back(std::move(*n));
  }
  return out;
}

Result<std::vector<int>> Client::defaultRouteLinks() {
  std::vector<int> out;
  for (int family : {AF_INET, AF_INET6}) {
    auto routes = this->routes(family);
    if (!routes) return fail(std::move(routes.error()));
    for (const auto& r : *routes) {
      if (r.dst.length != 0) continue;
      for (int link : r.outputLinks()) {
        if (std::find(out.begin(), out.end(), link) == out.end()) out.push_back(link);
      }
    }
  }
  return out;
}

Result<std::optional<int>> Client::defaultRouteLink() {
  for (int family : {AF_INET, AF_INET6}) {
    auto routes = this->routes(family);
    if (!routes) return fail(std::move(routes.error()));
    for (const auto& r : *routes) {
      if (r.dst.length == 0 && r.oif > 0) return std::optional<int>(r.oif);
    }
  }
  return std::optional<int>();
}

ClientFactory kernelClients() {
  return [](const Netns* ns) -> Result<std::unique_ptr<Client>> {
    auto rtnl = ns != nullptr ? Rtnl::openIn(*ns) : Rtnl::open();
    if (!rtnl) return fail(std::move(rtnl.error()));
    return std::unique_ptr<Client>(std::make_unique<Rtnl>(std::move(*rtnl)));
  };
}

}  // namespace vfplane::netlink
