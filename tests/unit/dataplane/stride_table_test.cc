#include "vfplane/dataplane/stride_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <vector>

namespace vfplane::dataplane {
namespace {

using Address = StrideTable::Address;

// The IPv6 table as the XDP backend makes it: a 16-bit first level, 8-bit groups below, over
// memory of its own and a clock the test moves.
struct Table {
  std::vector<uint32_t> first = std::vector<uint32_t>(size_t{1} << 16);
  std::vector<uint32_t> groups;
  StrideTable::Clock::time_point now{};
  StrideTable st;
  explicit Table(size_t n)
      : groups(n * StrideTable::kGroupEntries), st(16, 16, first, groups, [this] { return now; }) {}
};

Address addr(std::initializer_list<int> bytes) {
  Address a{};
  size_t i = 0;
  for (int b : bytes) a[i++] = static_cast<uint8_t>(b);
  return a;
}

bool covers(const Address& prefix, int length, const Address& a) {
  for (int bit = 0; bit < length; ++bit) {
    int byte = bit / 8, shift = 7 - bit % 8;
    if (((prefix[static_cast<size_t>(byte)] ^ a[static_cast<size_t>(byte)]) >> shift) & 1)
      return false;
  }
  return true;
}

// Longest-prefix match the slow way.
std::optional<uint32_t> reference(const std::map<std::pair<Address, int>, uint32_t>& routes,
                                  const Address& a) {
  std::optional<uint32_t> best;
  int bestLength = -1;
  for (const auto& [key, value] : routes) {
    if (covers(key.first, key.second, a) && key.second > bestLength) {
      best = value;
      bestLength = key.second;
    }
  }
  return best;
}

TEST(StrideTable, TheLongestPrefixWinsAtEveryLevelAndRemovingFallsBack) {
  Table t(16);
  Address base = addr({0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01});
  ASSERT_TRUE(t.st.add(addr({0x20}), 8, 1));
  ASSERT_TRUE(t.st.add(base, 32, 2));
  ASSERT_TRUE(t.st.add(base, 48, 3));
  ASSERT_TRUE(t.st.add(base, 64, 4));
  Address host = base;
  host[15] = 7;
  ASSERT_TRUE(t.st.add(host, 128, 5));
  EXPECT_EQ(t.st.groupsInUse(), 14u) << "a /128 reaches through every level below the first";
  EXPECT_EQ(t.st.lookup(host), 5u);
  Address other = host;
  other[15] = 8;
  EXPECT_EQ(t.st.lookup(other), 4u) << "the /64";
  other[7] = 1;
  EXPECT_EQ(t.st.lookup(other), 3u) << "the /48";
  other[5] = 2;
  EXPECT_EQ(t.st.lookup(other), 2u) << "the /32";
  EXPECT_EQ(t.st.lookup(addr({0x20, 0x02})), 1u);
  EXPECT_EQ(t.st.lookup(addr({0x30})), std::nullopt);
  t.st.remove(host, 128);
  EXPECT_EQ(t.st.lookup(host), 4u);
  EXPECT_EQ(t.st.groupsInUse(), 6u) << "groups below the /64 collapsed";
  t.st.remove(base, 64);
  t.st.remove(base, 48);
  t.st.remove(base, 32);
  EXPECT_EQ(t.st.lookup(host), 1u);
  EXPECT_EQ(t.st.groupsInUse(), 0u) << "the /8 lives in the first level alone";
  t.st.remove(addr({0x20}), 8);
  EXPECT_EQ(t.st.lookup(host), std::nullopt);
  EXPECT_EQ(t.st.size(), 0u);
}

TEST(StrideTable, NoFreeGroupLeavesTheTableAsItWas) {
  Table t(3);
  Address a = addr({0x24, 0x00, 0x11, 0x22, 0x33});
  ASSERT_TRUE(t.st.add(a, 32, 1));  // 2 groups (/16->/24, /24->/32)
  auto no = t.st.add(a, 48, 2);     // needs 2 more; 1 is free
  ASSERT_FALSE(no);
  EXPECT_EQ(no.error().sysErrno(), ENOSPC);
  EXPECT_EQ(t.st.groupsInUse(), 2u);
  EXPECT_EQ(t.st.lookup(a), 1u);
  ASSERT_TRUE(t.st.add(a, 40, 3)) << "one more group is there";
  t.st.remove(a, 40);
  EXPECT_FALSE(t.st.add(a, 40, 3)) << "the freed group waits out the reuse delay";
  t.now += StrideTable::kGroupReuseDelay;
  EXPECT_TRUE(t.st.add(a, 40, 3));
}

// Random prefixes crowded under a few /16s (so that groups are shared, split and collapsed),
// added, replaced and removed: every lookup agrees with the slow reference throughout, and once
// everything is removed no group is left in use.
TEST(StrideTable, AgreesWithASlowLpmOverRandomChanges) {
  std::mt19937 rng(3);
  Table t(32768);
  std::map<std::pair<Address, int>, uint32_t> routes;
  auto randomAddr = [&] {
    Address a{};
    const uint8_t tops[][2] = {{0x20, 0x01}, {0x24, 0x00}, {0xfd, 0x00}};
    const auto& top = tops[rng() % 3];
    a[0] = top[0];
    a[1] = top[1];
    for (size_t i = 2; i < 16; ++i) a[i] = static_cast<uint8_t>(rng() % (i < 8 ? 4 : 256));
    return a;
  };
  auto maskedCopy = [](Address a, int length) {
    for (int bit = length; bit < 128; ++bit) a[static_cast<size_t>(bit / 8)] &= ~(0x80 >> bit % 8);
    return a;
  };
  const int lengths[] = {0, 8, 12, 16, 20, 24, 29, 32, 40, 44, 48, 56, 60, 64, 96, 127, 128};
  for (int round = 0; round < 3000; ++round) {
    if (routes.empty() || rng() % 3 != 0) {
      int length = lengths[rng() % std::size(lengths)];
      Address p = maskedCopy(randomAddr(), length);
      uint32_t v = rng() % 1000;
      auto ok = t.st.add(p, length, v);
      ASSERT_TRUE(ok) << "round " << round << ": " << ok.error().message();
      routes[{p, length}] = v;
    } else {
      auto it = routes.begin();
      std::advance(it, static_cast<long>(rng() % routes.size()));
      t.st.remove(it->first.first, it->first.second);
      routes.erase(it);
    }
    for (int probe = 0; probe < 8; ++probe) {
      Address a = randomAddr();
      if (probe < 4 && !routes.empty()) {
        auto it = routes.begin();
        std::advance(it, static_cast<long>(rng() % routes.size()));
        a = it->first.first;
        a[15] ^= static_cast<uint8_t>(rng() % 2);
      }
      ASSERT_EQ(t.st.lookup(a), reference(routes, a)) << "round " << round;
    }
  }
  EXPECT_GT(t.st.groupsInUse(), 10u);
  for (const auto& [key, value] : routes) t.st.remove(key.first, key.second);
  EXPECT_EQ(t.st.groupsInUse(), 0u);
  EXPECT_EQ(t.st.size(), 0u);
}

// A reader that looks up while the writer adds and removes a /120 under a /32 sees one or the
// other, never nothing: each of the twelve groups the /120 needs is complete before the level
// above points at it, and they fold back deepest first, one store each.
TEST(StrideTable, AReaderNeverSeesAGapWhileADeepPrefixComesAndGoes) {
  Table t(64);
  Address cover = addr({0x20, 0x01, 0x0d, 0xb8});
  Address deep = cover;
  for (size_t i = 4; i < 15; ++i) deep[i] = static_cast<uint8_t>(i);
  Address probe = deep;
  probe[15] = 0x42;
  ASSERT_TRUE(t.st.add(cover, 32, 1));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0}, reads{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_relaxed)) {
      auto v = t.st.lookup(probe);
      if (!v || (*v != 1 && *v != 2)) bad.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    t.now += StrideTable::kGroupReuseDelay;  // groups come back at once: the reuse path too
    ASSERT_TRUE(t.st.add(deep, 120, 2));
    t.st.remove(deep, 120);
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0) << "of " << reads.load() << " lookups";
  EXPECT_EQ(t.st.groupsInUse(), 2u) << "the /32's two levels stay";
}

}  // namespace
}  // namespace vfplane::dataplane
