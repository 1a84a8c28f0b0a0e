// A PCI function address, domain:bus:device.function.
//
// PciAddress::parse is the single gate for PCI addresses that come from users, configs, the
// kubelet or sysfs: it accepts only "DDDD:BB:DD.F" (or "BB:DD.F", taken as domain 0000) in hex of
// either case, and nothing else, so a parsed address can be joined into a sysfs path without any
// risk of traversal ("/", "..", spaces and NULs never get through).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "vfplane/base/error.h"

namespace vfplane::sriov {

class PciAddress {
 public:
  static constexpr unsigned kMaxDevice = 0x1f;
  static constexpr unsigned kMaxFunction = 7;

  // Errors name the input and say what is wrong with it.
  static Result<PciAddress> parse(std::string_view text);

  // Precondition: device <= kMaxDevice, function <= kMaxFunction.
  constexpr PciAddress(uint16_t domain, uint8_t bus, uint8_t device, uint8_t function)
      : domain_(domain), bus_(bus), device_(device), function_(function) {}

  uint16_t domain() const { return domain_; }
  uint8_t bus() const { return bus_; }
  uint8_t device() const { return device_; }
  uint8_t function() const { return function_; }

  // Canonical lower-case "dddd:bb:dd.f", as sysfs spells it.
  std::string str() const;

  auto operator<=>(const PciAddress&) const = default;

 private:
  uint16_t domain_;
  uint8_t bus_;
  uint8_t device_;
  uint8_t function_;
};

}  // namespace vfplane::sriov

template <>
struct std::hash<vfplane::sriov::PciAddress> {
  size_t operator()(const vfplane::sriov::PciAddress& a) const noexcept {
    return (size_t{a.domain()} << 16) | (size_t{a.bus()} << 8) | (size_t{a.device()} << 3) |
           a.function();
  }
};
