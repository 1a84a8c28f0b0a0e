// A longest-prefix-match table for long addresses (IPv6) as a multibit trie of fixed strides: a
// first level indexed by the address's top bits, then groups of 256 entries, one per further
// byte, for the prefixes that reach past them (DIR-24-8, dir24_8.h, is the two-level case that
// IPv4 uses). A lookup is one load per level the longest matching prefix reaches: a /48 under a
// 16-bit first level is four.
//
// The entries are the same 32-bit words as Dir24_8's (kValid, kExt, 24 bits of value: the route's,
// or the group's index) and live in memory the owner provides (the XDP backend's mmapped BPF
// arrays), changed in place while readers look up: one aligned 32-bit store per entry, a group
// filled before the entry above points at it, and a freed group reused only after
// kGroupReuseDelay, far longer than a reader's lookup can take. Which prefix wrote an entry (its
// length) is kept beside the arrays, in this process, since a 128-bit table's lengths do not fit
// the entry.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "vfplane/base/error.h"

namespace vfplane::dataplane {

class StrideTable {
 public:
  static constexpr uint32_t kValid = 1u << 31;
  static constexpr uint32_t kExt = 1u << 30;
  static constexpr uint32_t kValueMask = (1u << 24) - 1;
  static constexpr size_t kGroupEntries = 256;
  static constexpr int kMaxBytes = 16;
  static constexpr auto kGroupReuseDelay = std::chrono::milliseconds(10);
  using Clock = std::chrono::steady_clock;
  using Address = std::array<uint8_t, kMaxBytes>;  // network order; the first addrBytes count

  // firstBits (a multiple of 8, below the address's bits) sizes the first level: first holds
  // 2^firstBits entries; groups a whole number of groups; both zeroed (empty).
  StrideTable(int firstBits, int addrBytes, std::span<uint32_t> first, std::span<uint32_t> groups,
              std::function<Clock::time_point()> now = Clock::now);

  // Inserts or replaces prefix/length (host bits ignored); value < 2^24. Fails (ENOSPC) when the
  // groups the prefix needs are not free; the table is then unchanged.
  Result<void> add(const Address& prefix, int length, uint32_t value);
  // Removes prefix/length, if present: its addresses fall back to the longest prefix that covers
  // them, and groups that no longer hold anything longer than what points at them are freed.
  void remove(const Address& prefix, int length);
  // What a reader finds for addr.
  std::optional<uint32_t> lookup(const Address& addr) const;

  size_t size() const { return routes_.size(); }
  size_t groupsInUse() const { return groupsInUse_; }
  size_t groups() const { return groups_.size() / kGroupEntries; }

 private:
  // One entry and the length of the prefix that wrote it.
  struct Slot {
    uint32_t* entry;
    uint8_t* depth;
  };
  Slot firstSlot(size_t i) { return {&first_[i], &firstDepth_[i]}; }
  Slot groupSlot(uint32_t g, size_t i) {
    return {&groups_[g * kGroupEntries + i], &groupDepth_[g * kGroupEntries + i]};
  }
  size_t firstIndex(const Address& a) const;
  static void store(uint32_t& slot, uint32_t e);
  // Writes e (from a prefix of `length`) into the slot and every group below it, where the
  // entry there is empty or from a prefix no longer.
  void fill(Slot s, int length, uint32_t e);
  // Puts back `fallback` (of fallbackDepth) wherever a prefix of `length` wrote, below the slot.
  void unfill(Slot s, int length, uint32_t fallback, uint8_t fallbackDepth);
  // The group under s, made from s's own answer if it has none.
  uint32_t groupUnder(Slot s);
  size_t groupsFreeNow() const;
  uint32_t allocGroup();
  void freeGroup(uint32_t group);
  Address masked(const Address& a, int length) const;
  // The longest route shorter than `length` that covers prefix: its entry and length.
  std::pair<uint32_t, uint8_t> cover(const Address& prefix, int length) const;

  int firstBits_, addrBytes_;
  std::span<uint32_t> first_, groups_;
  std::vector<uint8_t> firstDepth_, groupDepth_;
  std::function<Clock::time_point()> now_;
  struct Key {
    Address prefix;
    int length;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const;
  };
  std::string str(const Address& prefix, int length) const;  // "10.2.2.0/25", "2001:db8::/48"

  std::unordered_map<Key, uint32_t, KeyHash> routes_;
  uint32_t nextFresh_ = 0;
  std::deque<std::pair<uint32_t, Clock::time_point>> freed_;
  size_t groupsInUse_ = 0;
};

}  // namespace vfplane::dataplane
