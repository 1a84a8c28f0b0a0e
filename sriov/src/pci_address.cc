#include "vfplane/sriov/pci_address.h"

#include <fmt/format.h>

#include <optional>

namespace vfplane::sriov {
namespace {

// Exactly `digits` hex digits, nothing else: no sign, no 0x, no blanks.
std::optional<unsigned> parseHexField(std::string_view s, size_t digits) {
  if (s.size() != digits) return std::nullopt;
  unsigned value = 0;
  for (char c : s) {
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    value = value * 16 + d;
  }
  return value;
}

}  // namespace

Result<PciAddress> PciAddress::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    // The input is quoted with fmt's escaping so that control characters stay visible.
    return fail(fmt::format("invalid PCI address {:?}: {}", text, why));
  };
  if (text.empty()) return bad("empty");

  // Split on the two ':' and the '.'; the number of separators decides long or short form.
  std::string_view domain = "0000";
  std::string_view rest = text;
  size_t colons = 0;
  for (char c : text) colons += c == ':';
  if (colons == 2) {
    size_t first = text.find(':');
    domain = text.substr(0, first);
    rest = text.substr(first + 1);
  } else if (colons != 1) {
    return bad("expected DDDD:BB:DD.F or BB:DD.F");
  }
  size_t colon = rest.find(':');
  size_t dot = rest.find('.');
  if (dot == std::string_view::npos || dot < colon || rest.find('.', dot + 1) != rest.npos) {
    return bad("expected DDDD:BB:DD.F or BB:DD.F");
  }
  auto d = parseHexField(domain, 4);
  auto b = parseHexField(rest.substr(0, colon), 2);
  auto dev = parseHexField(rest.substr(colon + 1, dot - colon - 1), 2);
  auto fn = parseHexField(rest.substr(dot + 1), 1);
  if (!d) return bad("domain must be 4 hex digits");
  if (!b) return bad("bus must be 2 hex digits");
  if (!dev) return bad("device must be 2 hex digits");
  if (!fn) return bad("function must be 1 digit");
  if (*dev > kMaxDevice) return bad("device is above 1f");
  if (*fn > kMaxFunction) return bad("function is above 7");
  return PciAddress(static_cast<uint16_t>(*d), static_cast<uint8_t>(*b), static_cast<uint8_t>(*dev),
                    static_cast<uint8_t>(*fn));
}

std::string PciAddress::str() const {
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain_, bus_, device_, function_);
}

}  // namespace vfplane::sriov
