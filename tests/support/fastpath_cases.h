// What both fast paths (XDP and DPDK) are held to, case by case: the same model, the same frames,
// the same verdicts and bytes out. The expected path of every forwarded frame comes from the
// model's resolve(), never from the code under test, so a fast path that hashes, checks or
// rewrites differently fails here. A difference between the paths fails one of the two suites.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vfplane/dataplane/counters.h"
#include "vfplane/dataplane/forwarding_model.h"

namespace vfplane::test {

using dataplane::FastPathCounters;
using dataplane::Flow;
using dataplane::IpAddr;
using dataplane::MacAddress;
using dataplane::Prefix;

inline IpAddr ipOf(const char* text) { return *IpAddr::parse(text); }
inline Prefix prefixOf(const char* text) { return *Prefix::parse(text); }
inline MacAddress macOf(const char* text) { return *MacAddress::parse(text); }

// The ingress port's MAC: Frame's default destination; and the seed both suites hash with.
inline MacAddress portMac() { return macOf("aa:00:00:00:00:01"); }
inline constexpr uint32_t kHashSeed = 0x0bad5eed;

inline uint16_t ipChecksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}

struct Frame {
  MacAddress dst = portMac();
  MacAddress src = macOf("02:00:00:00:00:99");
  uint16_t ethertype = 0;  // 0: the family's
  bool vlan = false;       // an 802.1Q tag before the EtherType
  IpAddr saddr = ipOf("192.0.2.10");
  IpAddr daddr = ipOf("10.1.0.7");
  uint8_t ttl = 64;  // or hop limit
  uint8_t proto = 17;
  uint16_t sport = 12345, dport = 4242;
  uint16_t id = 0x1234;
  int ihl = 5;                 // over 5: NOP options
  uint16_t fragment = 0x4000;  // IPv4 flags and offset: DF
  bool hopByHop = false;       // IPv6: a hop-by-hop header first
  size_t payload = 32;
  uint8_t icmpType = 8;        // for proto 1 and 58
  std::vector<uint8_t> quote;  // an ICMP error's quoted packet (its IP header onwards)
  int lengthError = 0;         // added to the IP length field
  bool badChecksum = false;
  int version = 0;  // 0: the family's

  bool v6() const { return !daddr.isV4(); }

  std::vector<uint8_t> l4() const {
    std::vector<uint8_t> l;
    if (proto == 17 || proto == 6 || proto == 132) {
      put16(l, sport);
      put16(l, dport);
      if (proto == 6) {
        for (uint8_t b : {0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0})
          l.push_back(b);
      } else {
        put16(l, static_cast<uint16_t>(8 + payload));
        put16(l, 0);
      }
    } else if (proto == 1 || proto == 58) {
      for (uint8_t b : {icmpType, uint8_t{0}, uint8_t{0}, uint8_t{0}, uint8_t{0}, uint8_t{1},
                        uint8_t{0}, uint8_t{1}})
        l.push_back(b);
      l.insert(l.end(), quote.begin(), quote.end());
    }
    for (size_t i = 0; i < payload; ++i) l.push_back(static_cast<uint8_t>(i * 7));
    return l;
  }

  // The IP packet alone (what an ICMP error quotes).
  std::vector<uint8_t> ip() const {
    std::vector<uint8_t> body = l4(), h;
    if (!v6()) {
      size_t hl = static_cast<size_t>(ihl) * 4;
      h.push_back(static_cast<uint8_t>((version ? version : 4) << 4 | ihl));
      h.push_back(0);
      put16(h, static_cast<uint16_t>(hl + body.size() + lengthError));
      put16(h, id);
      put16(h, fragment);
      h.push_back(ttl);
      h.push_back(proto);
      put16(h, 0);
      h.insert(h.end(), saddr.bytes.begin(), saddr.bytes.begin() + 4);
      h.insert(h.end(), daddr.bytes.begin(), daddr.bytes.begin() + 4);
      while (h.size() < hl) h.push_back(1);  // NOP options
      uint16_t sum = static_cast<uint16_t>(ipChecksum(h.data(), hl) ^ (badChecksum ? 0x5555 : 0));
      h[10] = static_cast<uint8_t>(sum >> 8);
      h[11] = static_cast<uint8_t>(sum);
    } else {
      std::vector<uint8_t> ext;
      if (hopByHop) ext = {proto, 0, 1, 4, 0, 0, 0, 0};
      h = {static_cast<uint8_t>((version ? version : 6) << 4), 0, 0, 0};
      put16(h, static_cast<uint16_t>(ext.size() + body.size() + lengthError));
      h.push_back(hopByHop ? 0 : proto);
      h.push_back(ttl);
      h.insert(h.end(), saddr.bytes.begin(), saddr.bytes.end());
      h.insert(h.end(), daddr.bytes.begin(), daddr.bytes.end());
      h.insert(h.end(), ext.begin(), ext.end());
    }
    h.insert(h.end(), body.begin(), body.end());
    return h;
  }

  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> f(dst.bytes.begin(), dst.bytes.end());
    f.insert(f.end(), src.bytes.begin(), src.bytes.end());
    if (vlan) {
      put16(f, 0x8100);
      put16(f, 100);
    }
    put16(f, ethertype ? ethertype : (v6() ? 0x86dd : 0x0800));
    auto p = ip();
    f.insert(f.end(), p.begin(), p.end());
    return f;
  }

  // The flow the model hashes for this frame (ports unless it is a fragment).
  Flow flow() const {
    bool ports = (proto == 17 || proto == 6) && (v6() || (fragment & 0x3fff) == 0);
    return {saddr, daddr, proto, ports ? sport : uint16_t{0}, ports ? dport : uint16_t{0}};
  }
};

inline Frame frameTo(const char* dst) {
  Frame f;
  f.daddr = ipOf(dst);
  if (f.v6()) f.saddr = ipOf("2001:db8:5::10");
  return f;
}

// The frame a forwarded `in` must become: MACs rewritten, TTL or hop limit one less, the IPv4
// checksum valid.
inline std::vector<uint8_t> forwardedFrame(std::vector<uint8_t> in, const MacAddress& dst,
                                           const MacAddress& src) {
  std::copy(dst.bytes.begin(), dst.bytes.end(), in.begin());
  std::copy(src.bytes.begin(), src.bytes.end(), in.begin() + 6);
  if ((in[14] >> 4) == 6) {
    in[14 + 7] = static_cast<uint8_t>(in[14 + 7] - 1);
    return in;
  }
  in[14 + 8] = static_cast<uint8_t>(in[14 + 8] - 1);
  in[14 + 10] = 0;
  in[14 + 11] = 0;
  uint16_t sum = ipChecksum(in.data() + 14, 20);
  in[14 + 10] = static_cast<uint8_t>(sum >> 8);
  in[14 + 11] = static_cast<uint8_t>(sum);
  return in;
}

// The router both suites run: one interface (ifindex, MAC aa:00:00:00:00:01, MTU 1500) with
// - IPv4: 10.1.0.0/24 on-link, the address 10.1.0.1, neighbours .7 and the default gateway .254;
//   203.0.113.0/24 over three gateways .11, .12, .13 (weights 1, 1, 2); 198.18.0.0/24 over .21
//   and the unresolved .22; 10.66.0.0/16 blackholed; 10.77.0.0/16 via a link that is no port;
// - IPv6: 2001:db8:1::/64 on-link, the address ::1, neighbour ::7, the default via fe80::254;
//   2001:db8:e::/48 over fe80::11 and fe80::12.
inline dataplane::ForwardingModel fastPathModel(int ifindex) {
  using dataplane::Route;
  dataplane::ForwardingModel m;
  m.setInterface({ifindex, "port", portMac(), 1500});
  m.setRoute(Route::onLink(prefixOf("10.1.0.0/24"), ifindex));
  m.setRoute(Route::via(prefixOf("0.0.0.0/0"), ipOf("10.1.0.254"), ifindex));
  m.setRoute({prefixOf("203.0.113.0/24"),
              {{ipOf("10.1.0.11"), ifindex, 1},
               {ipOf("10.1.0.12"), ifindex, 1},
               {ipOf("10.1.0.13"), ifindex, 2}}});
  m.setRoute({prefixOf("198.18.0.0/24"),
              {{ipOf("10.1.0.21"), ifindex, 1}, {ipOf("10.1.0.22"), ifindex, 1}}});
  m.setRoute(Route::reject(prefixOf("10.66.0.0/16")));
  m.setRoute(Route::via(prefixOf("10.77.0.0/16"), ipOf("10.1.0.254"), 42));
  m.setRoute(Route::onLink(prefixOf("2001:db8:1::/64"), ifindex));
  m.setRoute(Route::via(prefixOf("::/0"), ipOf("fe80::254"), ifindex));
  m.setRoute({prefixOf("2001:db8:e::/48"),
              {{ipOf("fe80::11"), ifindex, 1}, {ipOf("fe80::12"), ifindex, 1}}});
  const std::pair<const char*, const char*> neighbours[] = {
      {"10.1.0.7", "bb:00:00:00:00:07"},      {"10.1.0.254", "bb:00:00:00:02:54"},
      {"10.1.0.11", "bb:00:00:00:00:11"},     {"10.1.0.12", "bb:00:00:00:00:12"},
      {"10.1.0.13", "bb:00:00:00:00:13"},     {"10.1.0.21", "bb:00:00:00:00:21"},
      {"2001:db8:1::7", "bb:00:00:00:06:07"}, {"fe80::254", "bb:00:00:00:06:54"},
      {"fe80::11", "bb:00:00:00:06:11"},      {"fe80::12", "bb:00:00:00:06:12"}};
  for (auto [ip, mac] : neighbours) m.setNeighbour({ipOf(ip), ifindex, macOf(mac)});
  m.addLocal(ipOf("10.1.0.1"));
  m.addLocal(ipOf("2001:db8:1::1"));
  return m;
}

struct Case {
  std::string what;
  Frame frame;
  uint64_t FastPathCounters::*verdict;
  std::optional<Flow> flow = std::nullopt;  // what the model hashes, where it is not frame.flow()
  size_t truncate = 0;                      // cut the frame to this many bytes
};

// Every verdict of packet.h's order, and forwarding over plain routes, both families, ECMP
// groups (with a flow's ICMP error following it) and a group's unresolved path.
inline std::vector<Case> sharedCases() {
  using C = FastPathCounters;
  std::vector<Case> cases;
  auto add = [&](std::string what, Frame f, uint64_t C::*verdict) {
    cases.push_back({std::move(what), std::move(f), verdict});
  };
  auto with = [](const char* dst, auto change) {
    Frame f = frameTo(dst);
    change(f);
    return f;
  };
  add("IPv4 to a connected host", frameTo("10.1.0.7"), &C::forwarded);
  add("IPv4 via the default gateway", frameTo("198.51.100.20"), &C::forwarded);
  add("IPv4 TCP", with("198.51.100.20", [](Frame& f) { f.proto = 6; }), &C::forwarded);
  add("IPv6 to a connected host", frameTo("2001:db8:1::7"), &C::forwarded);
  add("IPv6 via a link-local gateway", frameTo("2001:db8:99::1"), &C::forwarded);
  add("IPv4 exactly at the MTU", with("10.1.0.7", [](Frame& f) { f.payload = 1500 - 28; }),
      &C::forwarded);
  for (uint16_t port = 1000; port < 1064; ++port) {
    add("IPv4 ECMP flow " + std::to_string(port),
        with("203.0.113.9", [&](Frame& f) { f.sport = port; }), &C::forwarded);
    add("IPv6 ECMP flow " + std::to_string(port),
        with("2001:db8:e::9",
             [&](Frame& f) {
               f.sport = port;
               f.proto = port % 2 ? 6 : 17;
             }),
        &C::forwarded);
  }
  add("an IPv4 fragment hashes without ports",
      with("203.0.113.9", [](Frame& f) { f.fragment = 0x2000; }), &C::forwarded);
  // An ICMP error about a flow's reply, sent toward the flow's server: it takes the flow's path.
  auto icmpError = [&](const char* what, const char* server, const char* client,
                       const char* reporter, uint8_t proto, uint8_t type, uint16_t port) {
    Frame reply;
    reply.saddr = ipOf(server);
    reply.daddr = ipOf(client);
    reply.sport = 53;
    reply.dport = port;
    reply.payload = 0;
    Frame error = with(server, [&](Frame& f) {
      f.saddr = ipOf(reporter);
      f.proto = proto;
      f.icmpType = type;
      f.quote = reply.ip();
      f.payload = 0;
    });
    cases.push_back({std::string(what) + " follows flow " + std::to_string(port), error,
                     &C::forwarded, Flow{ipOf(client), ipOf(server), 17, port, 53}});
  };
  for (uint16_t port = 2000; port < 2008; ++port) {
    icmpError("an ICMP error", "203.0.113.9", "192.0.2.10", "192.0.2.77", 1, 3, port);
    icmpError("an ICMPv6 error", "2001:db8:e::9", "2001:db8:5::10", "2001:db8:5::77", 58, 1, port);
  }

  cases.push_back(
      {"a frame shorter than Ethernet", frameTo("10.1.0.7"), &C::puntMalformed, std::nullopt, 10});
  cases.push_back(
      {"an IPv4 header cut short", frameTo("10.1.0.7"), &C::puntMalformed, std::nullopt, 30});
  cases.push_back(
      {"an IPv6 header cut short", frameTo("2001:db8:1::7"), &C::puntMalformed, std::nullopt, 50});
  add("a frame for another host",
      with("10.1.0.7", [](Frame& f) { f.dst = macOf("02:00:00:00:00:55"); }), &C::puntOtherHost);
  add("a broadcast frame", with("10.1.0.7", [](Frame& f) { f.dst = macOf("ff:ff:ff:ff:ff:ff"); }),
      &C::puntOtherHost);
  add("an IPv6 multicast frame",
      with("ff02::1:ff00:1", [](Frame& f) { f.dst = macOf("33:33:ff:00:00:01"); }),
      &C::puntOtherHost);
  add("ARP", with("10.1.0.7", [](Frame& f) { f.ethertype = 0x0806; }), &C::puntNotIp);
  add("a VLAN-tagged frame", with("10.1.0.7", [](Frame& f) { f.vlan = true; }), &C::puntNotIp);
  add("IPv4 version 6 in the header", with("10.1.0.7", [](Frame& f) { f.version = 6; }),
      &C::puntMalformed);
  add("IPv4 IHL under 5", with("10.1.0.7", [](Frame& f) { f.ihl = 4; }), &C::puntMalformed);
  add("IPv4 total length over the frame", with("10.1.0.7", [](Frame& f) { f.lengthError = 1; }),
      &C::puntMalformed);
  add("IPv4 bad header checksum", with("10.1.0.7", [](Frame& f) { f.badChecksum = true; }),
      &C::puntMalformed);
  add("IPv6 payload length over the frame",
      with("2001:db8:1::7", [](Frame& f) { f.lengthError = 1; }), &C::puntMalformed);
  add("IPv6 version 4 in the header", with("2001:db8:1::7", [](Frame& f) { f.version = 4; }),
      &C::puntMalformed);
  add("IPv4 options", with("10.1.0.7", [](Frame& f) { f.ihl = 6; }), &C::puntIpOptions);
  add("an IPv6 hop-by-hop header", with("2001:db8:1::7", [](Frame& f) { f.hopByHop = true; }),
      &C::puntIpOptions);
  add("IPv4 to loopback", frameTo("127.0.0.1"), &C::puntSpecial);
  add("IPv4 to the limited broadcast", frameTo("255.255.255.255"), &C::puntSpecial);
  add("IPv4 to multicast", frameTo("239.1.1.1"), &C::puntSpecial);
  add("IPv4 from multicast", with("10.1.0.7", [](Frame& f) { f.saddr = ipOf("224.0.0.5"); }),
      &C::puntSpecial);
  add("IPv4 from 0.0.0.0", with("10.1.0.7", [](Frame& f) { f.saddr = ipOf("0.0.0.0"); }),
      &C::puntSpecial);
  add("IPv6 to link-local", frameTo("fe80::7"), &C::puntSpecial);
  add("IPv6 from link-local", with("2001:db8:1::7", [](Frame& f) { f.saddr = ipOf("fe80::9"); }),
      &C::puntSpecial);
  add("IPv6 to multicast at our MAC", frameTo("ff0e::1"), &C::puntSpecial);
  add("IPv6 to loopback", frameTo("::1"), &C::puntSpecial);
  add("IPv6 to an IPv4-mapped address", frameTo("::ffff:10.1.0.7"), &C::puntSpecial);
  add("IPv4 TTL 1 (time exceeded)", with("10.1.0.7", [](Frame& f) { f.ttl = 1; }), &C::puntTtl);
  add("IPv4 TTL 0", with("10.1.0.7", [](Frame& f) { f.ttl = 0; }), &C::puntTtl);
  add("IPv6 hop limit 1", with("2001:db8:1::7", [](Frame& f) { f.ttl = 1; }), &C::puntTtl);
  add("IPv4 to a local address", frameTo("10.1.0.1"), &C::puntLocal);
  add("IPv6 neighbour solicitation to our address",
      with("2001:db8:1::1",
           [](Frame& f) {
             f.proto = 58;
             f.icmpType = 135;
             f.ttl = 255;
           }),
      &C::puntLocal);
  add("IPv4 host without a neighbour entry", frameTo("10.1.0.99"), &C::puntUnresolved);
  add("IPv6 host without a neighbour entry", frameTo("2001:db8:1::99"), &C::puntUnresolved);
  add("a blackhole route", frameTo("10.66.1.1"), &C::puntReject);
  add("a route through a link that is no port", frameTo("10.77.1.1"), &C::puntNotPort);
  add("IPv4 over the MTU", with("10.1.0.7", [](Frame& f) { f.payload = 1500 - 27; }),
      &C::puntTooBig);
  add("IPv6 over the MTU", with("2001:db8:1::7", [](Frame& f) { f.payload = 1500 - 47; }),
      &C::puntTooBig);
  // A group with an unresolved path: each flow forwards or punts as its own path says.
  for (uint16_t port = 3000; port < 3032; ++port)
    add("flow " + std::to_string(port) + " over a half-resolved group",
        with("198.18.0.9", [&](Frame& f) { f.sport = port; }), nullptr);
  return cases;
}

// A full-size table built directly (compiling it through a model would take longer than the
// test): v4 IPv4 /24s from 11.0.0.0 up and v6 IPv6 /40s from 2400::, every entry over one of four
// single-path groups whose next-hop MACs differ, and a sample of destinations with the MAC each
// must be sent to.
struct BigTable {
  dataplane::Fib fib;
  std::vector<std::pair<IpAddr, MacAddress>> samples;
};
inline BigTable bigTable(int ifindex, uint32_t v4, uint32_t v6, uint8_t macVariant = 0) {
  BigTable t;
  std::vector<dataplane::GroupRef> groups;
  for (uint8_t g = 0; g < 4; ++g) {
    dataplane::Adjacency adj{ifindex, portMac(), MacAddress{{0xbb, 0xf0, macVariant, 0, 0, g}},
                             1500};
    groups.push_back(
        std::make_shared<const dataplane::NextHopGroup>(dataplane::NextHopGroup{{{adj, 1}}}));
  }
  t.fib.reserve(v4 + v6);
  for (uint32_t i = 0; i < v4; ++i) {
    IpAddr a = IpAddr::v4(0x0b000000u + (i << 8));
    t.fib.push_back({Prefix{a, 24}, dataplane::Action(groups[i % 4])});
    if (i % 997 == 0) {
      IpAddr host = IpAddr::v4(0x0b000000u + (i << 8) + 77);
      t.samples.emplace_back(host, groups[i % 4]->paths[0].adjacency->dst);
    }
  }
  for (uint32_t i = 0; i < v6; ++i) {
    IpAddr a;
    a.family = dataplane::Family::kIpv6;
    a.bytes[0] = 0x24;
    a.bytes[2] = static_cast<uint8_t>(i >> 16);
    a.bytes[3] = static_cast<uint8_t>(i >> 8);
    a.bytes[4] = static_cast<uint8_t>(i);
    t.fib.push_back({Prefix{a, 40}, dataplane::Action(groups[i % 4])});
    if (i % 499 == 0) {
      IpAddr host = a;
      host.bytes[15] = 9;
      t.samples.emplace_back(host, groups[i % 4]->paths[0].adjacency->dst);
    }
  }
  return t;
}

// What a fast path did with one frame.
struct Outcome {
  bool forwarded = false;  // sent out of a port (else: to the kernel)
  std::vector<uint8_t> bytes;
};

class FastPathRunner {
 public:
  virtual ~FastPathRunner() = default;
  virtual Outcome run(const std::vector<uint8_t>& frame) = 0;
  virtual FastPathCounters counters() = 0;
};

// Where the model sends c's frame, or nullopt when it punts it.
inline std::optional<dataplane::Adjacency> expectedPath(const dataplane::ForwardingModel& model,
                                                        const Case& c) {
  if (c.verdict != nullptr && c.verdict != &FastPathCounters::forwarded) return std::nullopt;
  auto d = model.resolve(c.flow.value_or(c.frame.flow()), kHashSeed);
  if (!d) return std::nullopt;
  return *d;
}

// Runs c on fast and checks it against the model: the verdict's counter (and rx) moved by one,
// a punted frame is unmodified, a forwarded one went to the path resolve() picks, rewritten.
inline void checkCase(FastPathRunner& fast, const dataplane::ForwardingModel& model,
                      const Case& c) {
  SCOPED_TRACE(c.what);
  auto in = c.frame.bytes();
  if (c.truncate > 0) in.resize(c.truncate);
  auto verdict = c.verdict;
  std::optional<dataplane::Adjacency> expected;
  if (verdict == nullptr || verdict == &FastPathCounters::forwarded) {
    auto d = model.resolve(c.flow.value_or(c.frame.flow()), kHashSeed);
    if (d) {
      expected = *d;
      verdict = &FastPathCounters::forwarded;
    } else {
      ASSERT_EQ(c.verdict, nullptr)
          << "the model does not forward it: " << dataplane::puntName(d.error());
      verdict = dataplane::puntCounter(d.error());
    }
  }
  FastPathCounters before = fast.counters();
  Outcome out = fast.run(in);
  FastPathCounters after = fast.counters();
  EXPECT_EQ(after.rx - before.rx, 1u);
  EXPECT_EQ(after.*verdict - before.*verdict, 1u) << "counted in the right slot";
  for (const auto& v : dataplane::kVerdicts) {
    if (v.count == verdict) continue;
    EXPECT_EQ(after.*v.count, before.*v.count) << "and no other: " << v.name;
  }
  if (expected) {
    EXPECT_TRUE(out.forwarded);
    EXPECT_EQ(out.bytes, forwardedFrame(in, expected->dst, expected->src));
  } else {
    EXPECT_FALSE(out.forwarded);
    EXPECT_EQ(out.bytes, in) << "a punted frame reaches the kernel as it came";
  }
}

// How a group's flows spread: the MACs the model sends the shared ECMP cases to.
inline std::set<MacAddress> ecmpMacs(const dataplane::ForwardingModel& model, const char* dst) {
  std::set<MacAddress> macs;
  for (uint16_t port = 1000; port < 1064; ++port) {
    Frame f = frameTo(dst);
    f.sport = port;
    if (f.v6()) f.proto = port % 2 ? 6 : 17;
    if (auto d = model.resolve(f.flow(), kHashSeed)) macs.insert(d->dst);
  }
  return macs;
}

}  // namespace vfplane::test
