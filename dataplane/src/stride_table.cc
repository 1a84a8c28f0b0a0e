#include "vfplane/dataplane/stride_table.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <atomic>
#include <cassert>
#include <cerrno>
#include <string_view>

namespace vfplane::dataplane {

StrideTable::StrideTable(int firstBits, int addrBytes, std::span<uint32_t> first,
                         std::span<uint32_t> groups, std::function<Clock::time_point()> now)
    : firstBits_(firstBits),
      addrBytes_(addrBytes),
      first_(first),
      groups_(groups),
      firstDepth_(first.size()),
      groupDepth_(groups.size()),
      now_(std::move(now)) {
  assert(firstBits % 8 == 0 && firstBits > 0 && firstBits < addrBytes * 8);
  assert(addrBytes <= kMaxBytes && first_.size() == size_t{1} << firstBits);
  assert(groups_.size() % kGroupEntries == 0);
}

size_t StrideTable::KeyHash::operator()(const Key& k) const {
  std::string_view bytes(reinterpret_cast<const char*>(k.prefix.data()), k.prefix.size());
  return std::hash<std::string_view>{}(bytes) ^ static_cast<size_t>(k.length) * 0x9e3779b97f4a7c15u;
}

std::string StrideTable::str(const Address& prefix, int length) const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(addrBytes_ == 4 ? AF_INET : AF_INET6, prefix.data(), buf, sizeof buf);
  return fmt::format("{}/{}", buf, length);
}

// Each store is one atomic 32-bit write, released so that a group's contents are visible before
// the entry that points at it.
void StrideTable::store(uint32_t& slot, uint32_t e) {
  std::atomic_ref<uint32_t>(slot).store(e, std::memory_order_release);
}

size_t StrideTable::firstIndex(const Address& a) const {
  size_t i = 0;
  for (int b = 0; b < firstBits_ / 8; ++b) i = i << 8 | a[static_cast<size_t>(b)];
  return i;
}

StrideTable::Address StrideTable::masked(const Address& a, int length) const {
  Address m{};
  for (int b = 0; b < addrBytes_; ++b) {
    int keep = std::clamp(length - 8 * b, 0, 8);
    m[static_cast<size_t>(b)] =
        static_cast<uint8_t>(a[static_cast<size_t>(b)] & (keep == 0 ? 0 : 0xff << (8 - keep)));
  }
  return m;
}

size_t StrideTable::groupsFreeNow() const {
  size_t n = groups() - nextFresh_;
  auto now = now_();
  for (const auto& [g, when] : freed_) {
    if (now - when < kGroupReuseDelay) break;
    ++n;
  }
  return n;
}

uint32_t StrideTable::allocGroup() {
  ++groupsInUse_;
  if (nextFresh_ < groups()) return nextFresh_++;
  uint32_t g = freed_.front().first;  // add() checked that it has waited long enough
  freed_.pop_front();
  return g;
}

void StrideTable::freeGroup(uint32_t group) {
  freed_.emplace_back(group, now_());
  --groupsInUse_;
}

void StrideTable::fill(Slot s, int length, uint32_t e) {
  uint32_t cur = *s.entry;
  if (cur & kExt) {
    uint32_t g = cur & kValueMask;
    for (size_t i = 0; i < kGroupEntries; ++i) fill(groupSlot(g, i), length, e);
  } else if (!(cur & kValid) || *s.depth <= length) {
    store(*s.entry, e);
    *s.depth = static_cast<uint8_t>(length);
  }
}

void StrideTable::unfill(Slot s, int length, uint32_t fallback, uint8_t fallbackDepth) {
  uint32_t cur = *s.entry;
  if (cur & kExt) {
    uint32_t g = cur & kValueMask;
    for (size_t i = 0; i < kGroupEntries; ++i)
      unfill(groupSlot(g, i), length, fallback, fallbackDepth);
  } else if ((cur & kValid) && *s.depth == length) {
    store(*s.entry, fallback);
    *s.depth = fallbackDepth;
  }
}

uint32_t StrideTable::groupUnder(Slot s) {
  if (*s.entry & kExt) return *s.entry & kValueMask;
  uint32_t g = allocGroup();
  // The group starts as what the slot answered, and is complete before anyone is sent to it.
  for (size_t i = 0; i < kGroupEntries; ++i) {
    Slot t = groupSlot(g, i);
    store(*t.entry, *s.entry);
    *t.depth = *s.depth;
  }
  store(*s.entry, kValid | kExt | g);
  return g;
}

std::pair<uint32_t, uint8_t> StrideTable::cover(const Address& prefix, int length) const {
  for (int l = length - 1; l >= 0; --l) {
    auto it = routes_.find({masked(prefix, l), l});
    if (it != routes_.end()) return {kValid | it->second, static_cast<uint8_t>(l)};
  }
  return {0, 0};
}

Result<void> StrideTable::add(const Address& prefix, int length, uint32_t value) {
  if (length < 0 || length > addrBytes_ * 8 || value > kValueMask) {
    return usageError(fmt::format("forwarding table: bad route /{} with value {}", length, value));
  }
  Address p = masked(prefix, length);
  uint32_t e = kValid | value;
  size_t first = firstIndex(p);
  if (length <= firstBits_) {
    for (size_t i = first; i < first + (size_t{1} << (firstBits_ - length)); ++i)
      fill(firstSlot(i), length, e);
    routes_[{p, length}] = value;
    return {};
  }
  // The groups the walk down would have to make, all checked before the first is made.
  size_t need = 0;
  {
    const uint32_t* cur = &first_[first];
    for (int c = firstBits_; c < length; c += 8) {
      if (!(*cur & kExt)) {
        need += static_cast<size_t>((length - c + 7) / 8);
        break;
      }
      if (length <= c + 8) break;
      cur = &groups_[(*cur & kValueMask) * kGroupEntries + p[static_cast<size_t>(c / 8)]];
    }
  }
  if (need > groupsFreeNow()) {
    return fail(fmt::format("forwarding table: {} more 8-bit groups needed for {}, {} free of {} "
                            "(raise --max-routes)",
                            need, str(p, length), groupsFreeNow(), groups()),
                ENOSPC);
  }
  Slot s = firstSlot(first);
  int c = firstBits_;  // the length the group under s covers
  for (; length > c + 8; c += 8) s = groupSlot(groupUnder(s), p[static_cast<size_t>(c / 8)]);
  uint32_t g = groupUnder(s);
  size_t base = p[static_cast<size_t>(c / 8)], count = size_t{1} << (c + 8 - length);
  for (size_t i = base; i < base + count; ++i) fill(groupSlot(g, i), length, e);
  routes_[{p, length}] = value;
  return {};
}

void StrideTable::remove(const Address& prefix, int length) {
  if (length < 0 || length > addrBytes_ * 8) return;
  Address p = masked(prefix, length);
  if (routes_.erase({p, length}) == 0) return;
  // Entries this prefix wrote carry its length, and no other prefix of that length overlaps it.
  auto [fallback, fallbackDepth] = cover(p, length);
  size_t first = firstIndex(p);
  if (length <= firstBits_) {
    for (size_t i = first; i < first + (size_t{1} << (firstBits_ - length)); ++i)
      unfill(firstSlot(i), length, fallback, fallbackDepth);
    return;
  }
  // The slots on the way down, each with the group under it and the length that group covers.
  struct Step {
    Slot above;
    uint32_t group;
    int covers;
  };
  std::vector<Step> path;
  Slot s = firstSlot(first);
  for (int c = firstBits_;; c += 8) {
    if (!(*s.entry & kExt)) return;  // nothing below: the route wrote nothing here
    uint32_t g = *s.entry & kValueMask;
    path.push_back({s, g, c});
    if (length <= c + 8) break;
    s = groupSlot(g, p[static_cast<size_t>(c / 8)]);
  }
  const Step& last = path.back();
  size_t base = p[static_cast<size_t>(last.covers / 8)];
  size_t count = size_t{1} << (last.covers + 8 - length);
  for (size_t i = base; i < base + count; ++i)
    unfill(groupSlot(last.group, i), length, fallback, fallbackDepth);
  // A group whose every entry comes from a prefix no longer than what it covers answers like one
  // entry (all of them are that prefix's, or empty): the slot above takes it back, deepest first.
  for (auto it = path.rbegin(); it != path.rend(); ++it) {
    for (size_t i = 0; i < kGroupEntries; ++i) {
      Slot t = groupSlot(it->group, i);
      if ((*t.entry & kExt) || ((*t.entry & kValid) && *t.depth > it->covers)) return;
    }
    Slot head = groupSlot(it->group, 0);
    store(*it->above.entry, *head.entry);
    *it->above.depth = *head.depth;
    freeGroup(it->group);
  }
}

std::optional<uint32_t> StrideTable::lookup(const Address& addr) const {
  uint32_t e = std::atomic_ref<uint32_t>(first_[firstIndex(addr)]).load(std::memory_order_acquire);
  for (int c = firstBits_; (e & kExt) && c < addrBytes_ * 8; c += 8) {
    size_t i = (e & kValueMask) * kGroupEntries + addr[static_cast<size_t>(c / 8)];
    e = std::atomic_ref<uint32_t>(groups_[i]).load(std::memory_order_acquire);
  }
  if (!(e & kValid) || (e & kExt)) return std::nullopt;
  return e & kValueMask;
}

}  // namespace vfplane::dataplane
