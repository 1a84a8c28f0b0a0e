// What both fast paths (XDP and DPDK) are held to, case by case: the same model, the same frames,
// the same verdicts and bytes out. A difference between the paths fails one of the two suites.
#pragma once

#include <cstdint>
#include <vector>

#include "vfplane/dataplane/forwarding_model.h"

namespace vfplane::test {

using dataplane::Ipv4;
using dataplane::MacAddress;

inline Ipv4 ip4(const char* text) { return *dataplane::parseIpv4(text); }
inline MacAddress macOf(const char* text) { return *MacAddress::parse(text); }

// The ingress port's MAC: Frame's default destination.
inline MacAddress portMac() { return macOf("aa:00:00:00:00:01"); }

inline uint16_t ipChecksum(const uint8_t* p, size_t n) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

struct Frame {
  MacAddress dst = macOf("aa:00:00:00:00:01");
  MacAddress src = macOf("02:00:00:00:00:99");
  uint16_t ethertype = 0x0800;
  Ipv4 saddr = 0;
  Ipv4 daddr = 0;
  uint8_t ttl = 64;
  uint16_t id = 0x1234;
  int ihl = 5;
  size_t payload = 32;

  // Ethernet, IPv4 (valid checksum, with ihl-5 words of NOP options), UDP, payload.
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> f(dst.bytes.begin(), dst.bytes.end());
    f.insert(f.end(), src.bytes.begin(), src.bytes.end());
    f.push_back(static_cast<uint8_t>(ethertype >> 8));
    f.push_back(static_cast<uint8_t>(ethertype));
    size_t ipLen = static_cast<size_t>(ihl) * 4;
    uint16_t total = static_cast<uint16_t>(ipLen + 8 + payload);
    uint8_t hdr[60] = {static_cast<uint8_t>(0x40 | ihl),
                       0,
                       static_cast<uint8_t>(total >> 8),
                       static_cast<uint8_t>(total),
                       static_cast<uint8_t>(id >> 8),
                       static_cast<uint8_t>(id),
                       0x40,
                       0,
                       ttl,
                       17,
                       0,
                       0};
    for (int i = 0; i < 4; ++i) {
      hdr[12 + i] = static_cast<uint8_t>(saddr >> (24 - 8 * i));
      hdr[16 + i] = static_cast<uint8_t>(daddr >> (24 - 8 * i));
    }
    for (size_t i = 20; i < ipLen; ++i) hdr[i] = 1;  // NOP options
    uint16_t sum = ipChecksum(hdr, ipLen);
    hdr[10] = static_cast<uint8_t>(sum >> 8);
    hdr[11] = static_cast<uint8_t>(sum);
    f.insert(f.end(), hdr, hdr + ipLen);
    uint8_t udp[8] = {0x30,
                      0x39,
                      0x10,
                      0x92,
                      static_cast<uint8_t>((8 + payload) >> 8),
                      static_cast<uint8_t>(8 + payload),
                      0,
                      0};
    f.insert(f.end(), udp, udp + 8);
    for (size_t i = 0; i < payload; ++i) f.push_back(static_cast<uint8_t>(i * 7));
    return f;
  }
};

inline Frame frameTo(const char* dst) {
  Frame f;
  f.saddr = ip4("192.0.2.10");
  f.daddr = ip4(dst);
  return f;
}

// The router both suites run: one interface (ifindex, MAC aa:00:00:00:00:01) on 10.1.0.0/24 with
// the address 10.1.0.1, a default route via 10.1.0.254, and neighbours .254 and .7.
inline dataplane::ForwardingModel fastPathModel(int ifindex) {
  dataplane::ForwardingModel m;
  m.setInterface({ifindex, "port", macOf("aa:00:00:00:00:01")});
  m.setRoute({*dataplane::Ipv4Prefix::parse("10.1.0.0/24"), std::nullopt, ifindex});
  m.setRoute({*dataplane::Ipv4Prefix::parse("0.0.0.0/0"), ip4("10.1.0.254"), ifindex});
  m.setNeighbour({ip4("10.1.0.254"), ifindex, macOf("bb:00:00:00:02:54")});
  m.setNeighbour({ip4("10.1.0.7"), ifindex, macOf("bb:00:00:00:00:07")});
  m.addLocal(ip4("10.1.0.1"));
  return m;
}

// The frame a forwarded `in` must become: MACs rewritten, TTL one less, checksum valid.
inline std::vector<uint8_t> forwardedFrame(std::vector<uint8_t> in, const MacAddress& dst,
                                           const MacAddress& src) {
  std::copy(dst.bytes.begin(), dst.bytes.end(), in.begin());
  std::copy(src.bytes.begin(), src.bytes.end(), in.begin() + 6);
  in[14 + 8] = static_cast<uint8_t>(in[14 + 8] - 1);
  in[14 + 10] = 0;
  in[14 + 11] = 0;
  uint16_t sum = ipChecksum(in.data() + 14, 20);
  in[14 + 10] = static_cast<uint8_t>(sum >> 8);
  in[14 + 11] = static_cast<uint8_t>(sum);
  return in;
}

struct PuntCase {
  const char* what;
  Frame frame;
};

// Frames that a fast path must hand to the kernel untouched; one per counter reason except
// malformed (truncate any frame to 20 bytes for that).
inline std::vector<PuntCase> puntCases() {
  Frame ttl1 = frameTo("10.1.0.7");
  ttl1.ttl = 1;
  Frame options = frameTo("10.1.0.7");
  options.ihl = 6;
  Frame arp = frameTo("10.1.0.7");
  arp.ethertype = 0x0806;
  Frame otherHost = frameTo("10.1.0.7");
  otherHost.dst = macOf("02:00:00:00:00:55");
  Frame broadcast = frameTo("10.1.0.7");
  broadcast.dst = macOf("ff:ff:ff:ff:ff:ff");
  return {{"TTL 1 (ICMP time exceeded)", ttl1},
          {"IP options", options},
          {"ARP", arp},
          {"a frame for another host", otherHost},
          {"a broadcast frame", broadcast},
          {"a local address", frameTo("10.1.0.1")},
          {"a host without a neighbour entry", frameTo("10.1.0.99")}};
}

}  // namespace vfplane::test
