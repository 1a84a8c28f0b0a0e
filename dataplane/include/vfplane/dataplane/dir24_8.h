// An IPv4 longest-prefix-match table in the DIR-24-8 layout (Gupta, Lin and McKeown, 1998; what
// DPDK's rte_lpm uses): a first table of 2^24 entries indexed by the address's top 24 bits, and
// groups of 256 entries for the /24s that hold longer prefixes. A lookup is one or two loads.
//
// The table lives in memory its owner provides (the XDP backend's mmapped BPF arrays, read by
// the program while this writes) and is changed in place, one aligned 32-bit store per entry, in
// an order that keeps every lookup on the old answer or the new one: a group is filled before
// the first-level entry points at it, and a freed group is reused only after kGroupReuseDelay,
// far longer than a reader's lookup can take.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <unordered_map>

#include "vfplane/base/error.h"

namespace vfplane::dataplane {

class Dir24_8 {
 public:
  // An entry: valid, points to a group (ext), the length of the prefix it came from, and 24 bits
  // of value (the route's, or the group's index). Readers need only the first two and the value.
  static constexpr uint32_t kValid = 1u << 31;
  static constexpr uint32_t kExt = 1u << 30;
  static constexpr int kDepthShift = 24;
  static constexpr uint32_t kValueMask = (1u << 24) - 1;
  static constexpr size_t kTbl24Entries = size_t{1} << 24;
  static constexpr size_t kGroupEntries = 256;
  static constexpr auto kGroupReuseDelay = std::chrono::milliseconds(10);
  using Clock = std::chrono::steady_clock;

  // tbl24: kTbl24Entries entries; tbl8: a whole number of groups; both zeroed (empty).
  Dir24_8(std::span<uint32_t> tbl24, std::span<uint32_t> tbl8,
          std::function<Clock::time_point()> now = Clock::now);

  // Inserts or replaces prefix/length (prefix in host byte order; host bits are ignored).
  // value < 2^24. Fails (ENOSPC) when a prefix longer than /24 needs a group and none is free;
  // the table is then unchanged.
  Result<void> add(uint32_t prefix, int length, uint32_t value);
  // Removes prefix/length, if present: its addresses fall back to the longest prefix that covers
  // them.
  void remove(uint32_t prefix, int length);
  // What a reader finds for addr (host byte order).
  std::optional<uint32_t> lookup(uint32_t addr) const;

  size_t size() const { return routes_.size(); }
  size_t groupsInUse() const { return groupsInUse_; }
  size_t groups() const { return tbl8_.size() / kGroupEntries; }

 private:
  static uint32_t entry(int depth, uint32_t value) {
    return kValid | static_cast<uint32_t>(depth) << kDepthShift | value;
  }
  static int depthOf(uint32_t e) { return static_cast<int>((e >> kDepthShift) & 0x3f); }
  // Whether a prefix of `depth` may take entry e: it is empty or from a prefix no longer.
  static bool yields(uint32_t e, int depth) { return !(e & kValid) || depthOf(e) <= depth; }
  static void store(uint32_t& slot, uint32_t e);
  std::optional<uint32_t> allocGroup();
  void freeGroup(uint32_t group);
  // The entry of the longest prefix shorter than `length` that covers prefix, or 0.
  uint32_t cover(uint32_t prefix, int length) const;

  std::span<uint32_t> tbl24_, tbl8_;
  std::function<Clock::time_point()> now_;
  std::unordered_map<uint64_t, uint32_t> routes_;  // prefix << 8 | length -> value
  uint32_t nextFresh_ = 0;                         // groups never used yet start here
  std::deque<std::pair<uint32_t, Clock::time_point>> freed_;
  size_t groupsInUse_ = 0;
};

}  // namespace vfplane::dataplane
