// An IPv4 longest-prefix-match table in the DIR-24-8 layout (Gupta, Lin and McKeown, 1998; what
// DPDK's rte_lpm uses): a first table of 2^24 entries indexed by the address's top 24 bits, and
// groups of 256 entries for the /24s that hold longer prefixes. A lookup is one or two loads.
//
// It is the two-level case of StrideTable (stride_table.h), which writes it: in memory its owner
// provides (the XDP backend's mmapped BPF arrays, read by the program while this writes), in
// place, one aligned 32-bit store per entry, a group filled before the first-level entry points
// at it, and a freed group reused only after kGroupReuseDelay.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/stride_table.h"

namespace vfplane::dataplane {

class Dir24_8 {
 public:
  // An entry: valid, points to a group (ext), and 24 bits of value (the route's, or the group's
  // index).
  static constexpr uint32_t kValid = StrideTable::kValid;
  static constexpr uint32_t kExt = StrideTable::kExt;
  static constexpr uint32_t kValueMask = StrideTable::kValueMask;
  static constexpr size_t kTbl24Entries = size_t{1} << 24;
  static constexpr size_t kGroupEntries = StrideTable::kGroupEntries;
  static constexpr auto kGroupReuseDelay = StrideTable::kGroupReuseDelay;
  using Clock = StrideTable::Clock;

  // tbl24: kTbl24Entries entries; tbl8: a whole number of groups; both zeroed (empty).
  Dir24_8(std::span<uint32_t> tbl24, std::span<uint32_t> tbl8,
          std::function<Clock::time_point()> now = Clock::now)
      : table_(24, 4, tbl24, tbl8, std::move(now)) {}

  // Inserts or replaces prefix/length (prefix in host byte order; host bits are ignored).
  // value < 2^24. Fails (ENOSPC, naming the prefix) when a prefix longer than /24 needs a group
  // and none is free; the table is then unchanged.
  Result<void> add(uint32_t prefix, int length, uint32_t value) {
    return table_.add(bytesOf(prefix), length, value);
  }
  // Removes prefix/length, if present: its addresses fall back to the longest prefix that covers
  // them.
  void remove(uint32_t prefix, int length) { table_.remove(bytesOf(prefix), length); }
  // What a reader finds for addr (host byte order).
  std::optional<uint32_t> lookup(uint32_t addr) const { return table_.lookup(bytesOf(addr)); }

  size_t size() const { return table_.size(); }
  size_t groupsInUse() const { return table_.groupsInUse(); }
  size_t groups() const { return table_.groups(); }

 private:
  static StrideTable::Address bytesOf(uint32_t a) {
    return {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16),
            static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)};
  }
  StrideTable table_;
};

}  // namespace vfplane::dataplane
