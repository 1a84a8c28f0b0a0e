// The rtnetlink requests vfplane sends and the replies it parses, built and parsed back without a
// kernel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <cstring>
#include <map>
#include <optional>

#include "netlink_messages.h"
#include "vfplane/netlink/events.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::netlink {
namespace {

using test::hdr;
using test::linkAttrs;

TEST(MacAddressTest, ParsesAndFormats) {
  auto mac = MacAddress::parse("AA:bb:CC:00:11:22");
  ASSERT_TRUE(mac);
  EXPECT_EQ(mac->str(), "aa:bb:cc:00:11:22");
  EXPECT_TRUE(MacAddress::parse("aa-bb-cc-00-11-22"));
  for (const char* bad :
       {"", "aa:bb:cc:00:11", "aa:bb:cc:00:11:2g", "aa:bb:cc:00:11:22:33", "aabb.cc00.1122"}) {
    EXPECT_FALSE(MacAddress::parse(bad)) << bad;
  }
}

TEST(IpPrefixTest, ParsesBothFamilies) {
  auto v4 = IpPrefix::parse("10.1.0.5/24");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family, AF_INET);
  EXPECT_EQ(v4->str(), "10.1.0.5/24");
  auto v6 = IpPrefix::parse("fd00::5/64");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family, AF_INET6);
  EXPECT_EQ(v6->length, 64);
  EXPECT_EQ(IpPrefix::parse("10.0.0.1")->length, 32);
  for (const char* bad :
       {"10.0.0.1/33", "fd00::1/129", "10.0.0/24", "x", "10.0.0.1/", "10.0.0.1/-1"}) {
    EXPECT_FALSE(IpPrefix::parse(bad)) << bad;
  }
}

TEST(RtnlBuildTest, MoveIsOneRequestWithNetnsFdAndName) {
  NlMsg m = buildMoveLink(42, 7, "net1");
  EXPECT_EQ(hdr(m)->nlmsg_type, RTM_NEWLINK);
  EXPECT_TRUE(hdr(m)->nlmsg_flags & NLM_F_ACK);
  EXPECT_FALSE(hdr(m)->nlmsg_flags & NLM_F_CREATE);
  auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr(m)));
  EXPECT_EQ(ifi->ifi_index, 42);
  auto attrs = linkAttrs(m);
  ASSERT_TRUE(attrs.contains(IFLA_NET_NS_FD));
  EXPECT_EQ(nla_get_u32(attrs[IFLA_NET_NS_FD]), 7u);
  auto link = parseLink(hdr(m));
  ASSERT_TRUE(link);
  EXPECT_EQ(link->name, "net1");
  EXPECT_EQ(link->ifindex, 42);
}

TEST(RtnlBuildTest, ChangeLinkCarriesOnlyWhatIsSet) {
  LinkChange c;
  c.mtu = 9000;
  NlMsg m = buildChangeLink(5, c);
  auto attrs = linkAttrs(m);
  EXPECT_EQ(attrs.size(), 1u);
  EXPECT_EQ(nla_get_u32(attrs.at(IFLA_MTU)), 9000u);
  EXPECT_EQ(static_cast<ifinfomsg*>(nlmsg_data(hdr(m)))->ifi_change, 0u);

  c.mac = *MacAddress::parse("02:11:22:33:44:55");
  c.up = true;
  c.arpNotify = true;
  c.name = "eth9";
  NlMsg full = buildChangeLink(5, c);
  auto link = parseLink(hdr(full));
  ASSERT_TRUE(link);
  EXPECT_EQ(link->mac, "02:11:22:33:44:55");
  EXPECT_EQ(link->mtu, 9000);
  EXPECT_EQ(link->name, "eth9");
  auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr(full)));
  EXPECT_EQ(ifi->ifi_change, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi->ifi_flags, static_cast<unsigned>(IFF_UP));
  // arp_notify: IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { ARP_NOTIFY = 1 } } }
  nlattr* inet = nla_find(static_cast<nlattr*>(nla_data(linkAttrs(full).at(IFLA_AF_SPEC))),
                          nla_len(linkAttrs(full).at(IFLA_AF_SPEC)), AF_INET);
  ASSERT_NE(inet, nullptr);
  nlattr* conf = nla_find(static_cast<nlattr*>(nla_data(inet)), nla_len(inet), IFLA_INET_CONF);
  ASSERT_NE(conf, nullptr);
  nlattr* arp =
      nla_find(static_cast<nlattr*>(nla_data(conf)), nla_len(conf), IPV4_DEVCONF_ARP_NOTIFY);
  ASSERT_NE(arp, nullptr);
  EXPECT_EQ(nla_get_u32(arp), 1u);
}

TEST(RtnlBuildTest, VethBridgeAndMasterRequests) {
  NlMsg veth = buildCreateVeth("ens1f0v0", "ens1f0v0_rep");
  EXPECT_EQ(hdr(veth)->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(hdr(veth)->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  auto link = parseLink(hdr(veth));
  ASSERT_TRUE(link) << link.error().message();
  EXPECT_EQ(link->name, "ens1f0v0");
  EXPECT_EQ(link->kind, "veth");
  // IFLA_LINKINFO { KIND "veth", DATA { VETH_INFO_PEER { ifinfomsg, IFLA_IFNAME "..._rep" } } }
  nlattr* li[IFLA_INFO_MAX + 1] = {};
  ASSERT_EQ(nla_parse_nested(li, IFLA_INFO_MAX, linkAttrs(veth).at(IFLA_LINKINFO), nullptr), 0);
  ASSERT_NE(li[IFLA_INFO_DATA], nullptr);
  nlattr* peer = nla_find(static_cast<nlattr*>(nla_data(li[IFLA_INFO_DATA])),
                          nla_len(li[IFLA_INFO_DATA]), VETH_INFO_PEER);
  ASSERT_NE(peer, nullptr);
  ASSERT_GE(nla_len(peer), static_cast<int>(sizeof(ifinfomsg)));
  auto* peerAttrs = reinterpret_cast<nlattr*>(static_cast<char*>(nla_data(peer)) +
                                              NLMSG_ALIGN(sizeof(ifinfomsg)));
  nlattr* peerName = nla_find(
      peerAttrs, nla_len(peer) - static_cast<int>(NLMSG_ALIGN(sizeof(ifinfomsg))), IFLA_IFNAME);
  ASSERT_NE(peerName, nullptr);
  EXPECT_STREQ(static_cast<const char*>(nla_data(peerName)), "ens1f0v0_rep");

  NlMsg bridge = buildCreateBridge("ens1f0_esw");
  auto b = parseLink(hdr(bridge));
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name, "ens1f0_esw");
  EXPECT_EQ(b->kind, "bridge");

  LinkChange enslave;
  enslave.master = 12;
  NlMsg m = buildChangeLink(4, enslave);
  auto attrs = linkAttrs(m);
  EXPECT_EQ(attrs.size(), 1u) << "only the master changes";
  EXPECT_EQ(nla_get_u32(attrs.at(IFLA_MASTER)), 12u);
}

// A link notification as the kernel multicasts it.
std::vector<uint8_t> linkNotification(int type, int ifindex, const char* name, unsigned flags,
                                      std::optional<uint8_t> carrier) {
  nl_msg* raw = nlmsg_alloc_simple(type, 0);
  ifinfomsg ifi{};
  ifi.ifi_index = ifindex;
  ifi.ifi_flags = flags;
  nlmsg_append(raw, &ifi, sizeof ifi, NLMSG_ALIGNTO);
  nla_put_string(raw, IFLA_IFNAME, name);
  if (carrier) nla_put_u8(raw, IFLA_CARRIER, *carrier);
  NlMsg msg(raw);
  auto* h = hdr(msg);
  return std::vector<uint8_t>(reinterpret_cast<uint8_t*>(h),
                              reinterpret_cast<uint8_t*>(h) + NLMSG_ALIGN(h->nlmsg_len));
}

TEST(EventsTest, LinkNotificationsAreParsedAndOthersCounted) {
  std::vector<uint8_t> buf =
      linkNotification(RTM_NEWLINK, 3, "ens1f0", IFF_UP | IFF_LOWER_UP, std::nullopt);
  auto down = linkNotification(RTM_NEWLINK, 3, "ens1f0", IFF_UP, 0);
  auto gone = linkNotification(RTM_DELLINK, 4, "ens1f1", 0, std::nullopt);
  buf.insert(buf.end(), down.begin(), down.end());
  // A route notification between them, as `ip route replace` makes the kernel send.
  NlMsg route = buildRoute(*IpPrefix::parse("10.9.0.0/24"), std::nullopt, 3, true);
  hdr(route)->nlmsg_flags = NLM_F_REPLACE;
  buf.insert(buf.end(), reinterpret_cast<uint8_t*>(hdr(route)),
             reinterpret_cast<uint8_t*>(hdr(route)) + NLMSG_ALIGN(hdr(route)->nlmsg_len));
  buf.insert(buf.end(), gone.begin(), gone.end());

  EventBatch batch;
  ASSERT_TRUE(parseEvents(buf.data(), buf.size(), batch));
  EXPECT_EQ(batch.notifications, 4u);
  ASSERT_EQ(batch.links.size(), 3u);
  EXPECT_EQ(batch.links[0].link.name, "ens1f0");
  EXPECT_TRUE(batch.links[0].link.carrier) << "IFF_LOWER_UP stands in when IFLA_CARRIER is absent";
  EXPECT_FALSE(batch.links[1].link.carrier) << "IFLA_CARRIER wins";
  EXPECT_TRUE(batch.links[1].link.up());
  EXPECT_FALSE(batch.links[1].removed);
  EXPECT_EQ(batch.links[2].link.ifindex, 4);
  EXPECT_TRUE(batch.links[2].removed);
  ASSERT_EQ(batch.routes.size(), 1u);
  EXPECT_EQ(batch.routes[0].route.dst.str(), "10.9.0.0/24");
  EXPECT_EQ(batch.routes[0].route.oif, 3);
  EXPECT_TRUE(batch.routes[0].replaced);
  EXPECT_FALSE(batch.routes[0].removed);
  EXPECT_FALSE(batch.overrun);
}

TEST(EventsTest, ARouteDeletionIsParsedAsOne) {
  NlMsg route = buildRoute(*IpPrefix::parse("10.9.0.0/24"), std::nullopt, 3, true);
  hdr(route)->nlmsg_type = RTM_DELROUTE;
  hdr(route)->nlmsg_flags = 0;
  EventBatch batch;
  ASSERT_TRUE(parseEvents(reinterpret_cast<uint8_t*>(hdr(route)),
                          NLMSG_ALIGN(hdr(route)->nlmsg_len), batch));
  ASSERT_EQ(batch.routes.size(), 1u);
  EXPECT_TRUE(batch.routes[0].removed);
  EXPECT_FALSE(batch.routes[0].replaced);
  EXPECT_EQ(batch.notifications, 1u);
}

TEST(EventsTest, ATruncatedLinkNotificationIsAnError) {
  auto buf = linkNotification(RTM_NEWLINK, 3, "ens1f0", IFF_UP, std::nullopt);
  auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
  h->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg) - 4);  // shorter than its header
  EventBatch batch;
  EXPECT_FALSE(parseEvents(buf.data(), buf.size(), batch));
}

TEST(RtnlBuildTest, AltnameRequests) {
  NlMsg del = buildAltname(9, "enp59s0f0v3", false);
  EXPECT_EQ(hdr(del)->nlmsg_type, RTM_DELLINKPROP);
  NlMsg add = buildAltname(9, "enp59s0f0v3", true);
  EXPECT_EQ(hdr(add)->nlmsg_type, RTM_NEWLINKPROP);
  // The prop list parses back as the link's altnames.
  nlmsghdr* h = hdr(add);
  h->nlmsg_type = RTM_NEWLINK;
  auto link = parseLink(h);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->altnames, std::vector<std::string>{"enp59s0f0v3"});
}

TEST(RtnlBuildTest, AddressAndRoute) {
  NlMsg a = buildAddress(4, *IpPrefix::parse("10.2.0.9/24"), true);
  EXPECT_EQ(hdr(a)->nlmsg_type, RTM_NEWADDR);
  auto parsed = parseAddress(hdr(a));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->ifindex, 4);
  EXPECT_EQ(parsed->prefix.str(), "10.2.0.9/24");

  NlMsg r = buildRoute(*IpPrefix::parse("0.0.0.0/0"), *IpPrefix::parse("10.2.0.1"), 4, true);
  EXPECT_EQ(hdr(r)->nlmsg_type, RTM_NEWROUTE);
  auto* rtm = static_cast<rtmsg*>(nlmsg_data(hdr(r)));
  EXPECT_EQ(rtm->rtm_dst_len, 0);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
  nlattr* tb[RTA_MAX + 1] = {};
  ASSERT_EQ(nlmsg_parse(hdr(r), sizeof(rtmsg), tb, RTA_MAX, nullptr), 0);
  EXPECT_EQ(tb[RTA_DST], nullptr);  // a default route has no destination attribute
  ASSERT_NE(tb[RTA_GATEWAY], nullptr);
  EXPECT_EQ(nla_get_u32(tb[RTA_OIF]), 4u);
  in_addr gw{};
  std::memcpy(&gw, nla_data(tb[RTA_GATEWAY]), 4);
  EXPECT_EQ(gw.s_addr, inet_addr("10.2.0.1"));
}

// A multipath route as the kernel dumps it: RTA_MULTIPATH holds rtnexthop headers, each followed
// by its own RTA_GATEWAY.
NlMsg multipathRoute(int family, const std::vector<std::pair<int, std::string>>& paths) {
  nl_msg* raw = nlmsg_alloc_simple(RTM_NEWROUTE, 0);
  rtmsg rtm{};
  rtm.rtm_family = static_cast<uint8_t>(family);
  rtm.rtm_table = RT_TABLE_MAIN;
  rtm.rtm_type = RTN_UNICAST;
  nlmsg_append(raw, &rtm, sizeof rtm, NLMSG_ALIGNTO);
  size_t addrLen = family == AF_INET ? 4 : 16;
  std::vector<uint8_t> hops;
  for (size_t i = 0; i < paths.size(); ++i) {
    size_t start = hops.size();
    hops.resize(start + RTNH_ALIGN(RTNH_LENGTH(RTA_LENGTH(addrLen))), 0);
    auto* nh = reinterpret_cast<rtnexthop*>(hops.data() + start);
    nh->rtnh_len = static_cast<uint16_t>(RTNH_LENGTH(RTA_LENGTH(addrLen)));
    nh->rtnh_hops = static_cast<uint8_t>(i);  // weight i + 1
    nh->rtnh_ifindex = paths[i].first;
    auto* rta = reinterpret_cast<rtattr*>(RTNH_DATA(nh));
    rta->rta_type = RTA_GATEWAY;
    rta->rta_len = static_cast<uint16_t>(RTA_LENGTH(addrLen));
    inet_pton(family, paths[i].second.c_str(), RTA_DATA(rta));
  }
  nla_put(raw, RTA_MULTIPATH, static_cast<int>(hops.size()), hops.data());
  return NlMsg(raw);
}

TEST(RtnlBuildTest, MultipathRoutesListEveryPath) {
  NlMsg v4 = multipathRoute(AF_INET, {{4, "10.2.0.1"}, {9, "10.3.0.1"}});
  auto r = parseRoute(hdr(v4));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->oif, 0);
  ASSERT_EQ(r->nexthops.size(), 2u);
  EXPECT_EQ(r->nexthops[0].oif, 4);
  EXPECT_EQ(r->nexthops[0].gateway->addressStr(), "10.2.0.1");
  EXPECT_EQ(r->nexthops[0].weight, 1);
  EXPECT_EQ(r->nexthops[1].oif, 9);
  EXPECT_EQ(r->nexthops[1].gateway->addressStr(), "10.3.0.1");
  EXPECT_EQ(r->nexthops[1].weight, 2);
  EXPECT_EQ(r->outputLinks(), (std::vector<int>{4, 9}));

  NlMsg v6 = multipathRoute(AF_INET6, {{5, "fe80::1"}});
  auto r6 = parseRoute(hdr(v6));
  ASSERT_TRUE(r6) << r6.error().message();
  ASSERT_EQ(r6->nexthops.size(), 1u);
  EXPECT_EQ(r6->nexthops[0].gateway->addressStr(), "fe80::1");

  // A single-path route has no paths of its own; its one link is its oif.
  NlMsg single = buildRoute(*IpPrefix::parse("0.0.0.0/0"), *IpPrefix::parse("10.2.0.1"), 4, true);
  auto plain = parseRoute(hdr(single));
  ASSERT_TRUE(plain);
  EXPECT_TRUE(plain->nexthops.empty());
  EXPECT_EQ(plain->outputLinks(), std::vector<int>{4});
}

TEST(RtnlBuildTest, ATruncatedMultipathIsAnError) {
  nl_msg* raw = nlmsg_alloc_simple(RTM_NEWROUTE, 0);
  rtmsg rtm{};
  rtm.rtm_family = AF_INET;
  nlmsg_append(raw, &rtm, sizeof rtm, NLMSG_ALIGNTO);
  rtnexthop nh{};
  nh.rtnh_len = 64;  // longer than the attribute
  nla_put(raw, RTA_MULTIPATH, sizeof nh, &nh);
  NlMsg msg(raw);
  EXPECT_FALSE(parseRoute(hdr(msg)));
}

TEST(RtnlBuildTest, NeighbourDumpAndEntries) {
  NlMsg dump = buildGetNeighbours(AF_INET);
  EXPECT_EQ(hdr(dump)->nlmsg_type, RTM_GETNEIGH);
  EXPECT_TRUE(hdr(dump)->nlmsg_flags & NLM_F_DUMP);
  EXPECT_EQ(static_cast<ndmsg*>(nlmsg_data(hdr(dump)))->ndm_family, AF_INET);

  // An entry as the kernel sends it: ndmsg, NDA_DST, NDA_LLADDR.
  nl_msg* raw = nlmsg_alloc_simple(RTM_NEWNEIGH, 0);
  ndmsg ndm{};
  ndm.ndm_family = AF_INET;
  ndm.ndm_ifindex = 7;
  ndm.ndm_state = NUD_REACHABLE;
  ASSERT_EQ(nlmsg_append(raw, &ndm, sizeof ndm, NLMSG_ALIGNTO), 0);
  in_addr dst{};
  dst.s_addr = inet_addr("10.2.0.2");
  nla_put(raw, NDA_DST, 4, &dst);
  uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x22};
  nla_put(raw, NDA_LLADDR, 6, mac);
  NlMsg msg(raw);
  auto n = parseNeighbour(hdr(msg));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->ifindex, 7);
  EXPECT_EQ(n->ip.str(), "10.2.0.2/32");
  EXPECT_EQ(n->mac->str(), "02:00:00:00:00:22");
  EXPECT_EQ(n->state, NUD_REACHABLE);

  // Incomplete: no link-layer address yet.
  nl_msg* raw2 = nlmsg_alloc_simple(RTM_NEWNEIGH, 0);
  ndm.ndm_state = NUD_INCOMPLETE;
  ASSERT_EQ(nlmsg_append(raw2, &ndm, sizeof ndm, NLMSG_ALIGNTO), 0);
  nla_put(raw2, NDA_DST, 4, &dst);
  NlMsg incomplete(raw2);
  auto i = parseNeighbour(hdr(incomplete));
  ASSERT_TRUE(i);
  EXPECT_FALSE(i->mac.has_value());
  EXPECT_FALSE(parseNeighbour(hdr(dump))) << "a request is not an entry";
}

}  // namespace
}  // namespace vfplane::netlink
