#include "vfplane/dataplane/dir24_8.h"

#include <fmt/format.h>

#include <atomic>
#include <cassert>
#include <cerrno>

namespace vfplane::dataplane {
namespace {

uint32_t maskOf(int length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }
uint64_t keyOf(uint32_t prefix, int length) {
  return uint64_t{prefix} << 8 | static_cast<uint64_t>(length);
}

}  // namespace

Dir24_8::Dir24_8(std::span<uint32_t> tbl24, std::span<uint32_t> tbl8,
                 std::function<Clock::time_point()> now)
    : tbl24_(tbl24), tbl8_(tbl8), now_(std::move(now)) {
  assert(tbl24_.size() == kTbl24Entries && tbl8_.size() % kGroupEntries == 0);
}

// Readers load the same words concurrently (the BPF program, or another thread in tests): each
// store is one atomic 32-bit write, released so that a group's contents are visible before the
// first-level entry that points at it.
void Dir24_8::store(uint32_t& slot, uint32_t e) {
  std::atomic_ref<uint32_t>(slot).store(e, std::memory_order_release);
}

std::optional<uint32_t> Dir24_8::allocGroup() {
  if (nextFresh_ < groups()) {
    ++groupsInUse_;
    return nextFresh_++;
  }
  if (!freed_.empty() && now_() - freed_.front().second >= kGroupReuseDelay) {
    uint32_t g = freed_.front().first;
    freed_.pop_front();
    ++groupsInUse_;
    return g;
  }
  return std::nullopt;
}

void Dir24_8::freeGroup(uint32_t group) {
  freed_.emplace_back(group, now_());
  --groupsInUse_;
}

uint32_t Dir24_8::cover(uint32_t prefix, int length) const {
  for (int l = length - 1; l >= 0; --l) {
    auto it = routes_.find(keyOf(prefix & maskOf(l), l));
    if (it != routes_.end()) return entry(l, it->second);
  }
  return 0;
}

Result<void> Dir24_8::add(uint32_t prefix, int length, uint32_t value) {
  if (length < 0 || length > 32 || value > kValueMask) {
    return usageError(fmt::format("DIR-24-8: bad route /{} with value {}", length, value));
  }
  prefix &= maskOf(length);
  uint32_t e = entry(length, value);
  if (length <= 24) {
    size_t first = prefix >> 8, count = size_t{1} << (24 - length);
    for (size_t i = first; i < first + count; ++i) {
      uint32_t cur = tbl24_[i];
      if (cur & kExt) {
        std::span<uint32_t> group =
            tbl8_.subspan((cur & kValueMask) * kGroupEntries, kGroupEntries);
        for (uint32_t& t : group) {
          if (yields(t, length)) store(t, e);
        }
      } else if (yields(cur, length)) {
        store(tbl24_[i], e);
      }
    }
  } else {
    uint32_t& first = tbl24_[prefix >> 8];
    uint32_t cur = first;
    uint32_t g;
    if (cur & kExt) {
      g = cur & kValueMask;
    } else {
      auto fresh = allocGroup();
      if (!fresh) {
        return fail(fmt::format("DIR-24-8: no free group of {} for {}.{}.{}.{}/{} (raise "
                                "--max-routes)",
                                groups(), prefix >> 24, prefix >> 16 & 0xff, prefix >> 8 & 0xff,
                                prefix & 0xff, length),
                    ENOSPC);
      }
      g = *fresh;
      // The group starts as what the /24 answered, and is complete before anyone is sent to it.
      for (uint32_t& t : tbl8_.subspan(g * kGroupEntries, kGroupEntries)) store(t, cur);
      store(first, kValid | kExt | g);
    }
    size_t base = g * kGroupEntries + (prefix & 0xff), count = size_t{1} << (32 - length);
    for (size_t i = base; i < base + count; ++i) {
      if (yields(tbl8_[i], length)) store(tbl8_[i], e);
    }
  }
  routes_[keyOf(prefix, length)] = value;
  return {};
}

void Dir24_8::remove(uint32_t prefix, int length) {
  if (length < 0 || length > 32) return;
  prefix &= maskOf(length);
  if (routes_.erase(keyOf(prefix, length)) == 0) return;
  // Entries this prefix wrote carry its length, and no other prefix of that length overlaps it.
  uint32_t fallback = cover(prefix, length);
  auto owned = [length](uint32_t e) { return (e & kValid) && depthOf(e) == length; };
  if (length <= 24) {
    size_t first = prefix >> 8, count = size_t{1} << (24 - length);
    for (size_t i = first; i < first + count; ++i) {
      uint32_t cur = tbl24_[i];
      if (cur & kExt) {
        for (uint32_t& t : tbl8_.subspan((cur & kValueMask) * kGroupEntries, kGroupEntries)) {
          if (owned(t)) store(t, fallback);
        }
      } else if (owned(cur)) {
        store(tbl24_[i], fallback);
      }
    }
    return;
  }
  uint32_t& first = tbl24_[prefix >> 8];
  uint32_t g = first & kValueMask;
  std::span<uint32_t> group = tbl8_.subspan(g * kGroupEntries, kGroupEntries);
  size_t base = prefix & 0xff, count = size_t{1} << (32 - length);
  for (size_t i = base; i < base + count; ++i) {
    if (owned(group[i])) store(group[i], fallback);
  }
  // A group whose every entry now comes from a /24 or shorter answers like one entry: all of
  // them are the longest such prefix's (or empty).
  for (uint32_t t : group) {
    if ((t & kValid) && depthOf(t) > 24) return;
  }
  store(first, group[0]);
  freeGroup(g);
}

std::optional<uint32_t> Dir24_8::lookup(uint32_t addr) const {
  uint32_t e = std::atomic_ref<uint32_t>(tbl24_[addr >> 8]).load(std::memory_order_acquire);
  if (e & kExt) {
    e = std::atomic_ref<uint32_t>(tbl8_[(e & kValueMask) * kGroupEntries + (addr & 0xff)])
            .load(std::memory_order_acquire);
  }
  if (!(e & kValid)) return std::nullopt;
  return e & kValueMask;
}

}  // namespace vfplane::dataplane
