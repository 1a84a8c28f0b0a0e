#include "vfplane/dataplane/dir24_8.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <vector>

namespace vfplane::dataplane {
namespace {

uint32_t ip(int a, int b, int c, int d) {
  return static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 |
         static_cast<uint32_t>(c) << 8 | static_cast<uint32_t>(d);
}

uint32_t maskOf(int length) { return length == 0 ? 0 : ~uint32_t{0} << (32 - length); }

// The table over its own memory, and a clock the test moves.
struct Table {
  std::vector<uint32_t> tbl24 = std::vector<uint32_t>(Dir24_8::kTbl24Entries);
  std::vector<uint32_t> tbl8;
  Dir24_8::Clock::time_point now{};
  Dir24_8 dir;
  explicit Table(size_t groups)
      : tbl8(groups * Dir24_8::kGroupEntries), dir(tbl24, tbl8, [this] { return now; }) {}
};

// Longest-prefix match the slow way, over (prefix, length) -> value.
std::optional<uint32_t> reference(const std::map<std::pair<uint32_t, int>, uint32_t>& routes,
                                  uint32_t addr) {
  std::optional<uint32_t> best;
  int bestLength = -1;
  for (const auto& [key, value] : routes) {
    auto [prefix, length] = key;
    if ((addr & maskOf(length)) == prefix && length > bestLength) {
      best = value;
      bestLength = length;
    }
  }
  return best;
}

TEST(Dir24_8, AnEmptyTableAnswersNothing) {
  Table t(4);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 3)), std::nullopt);
  EXPECT_EQ(t.dir.lookup(0), std::nullopt);
}

TEST(Dir24_8, TheLongestPrefixWinsAndRemovingFallsBackToTheNextLongest) {
  Table t(4);
  ASSERT_TRUE(t.dir.add(ip(10, 0, 0, 0), 8, 1));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 0, 0), 16, 2));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 2, 0), 24, 3));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 2, 16), 28, 4));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 2, 20), 32, 5));
  EXPECT_EQ(t.dir.groupsInUse(), 1u);
  EXPECT_EQ(t.dir.lookup(ip(10, 9, 9, 9)), 1u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 9, 9)), 2u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 1)), 3u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 17)), 4u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 20)), 5u);
  EXPECT_EQ(t.dir.lookup(ip(11, 0, 0, 0)), std::nullopt);

  // A shorter prefix added later does not hide the longer ones under it.
  ASSERT_TRUE(t.dir.add(0, 0, 9));
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 20)), 5u);
  EXPECT_EQ(t.dir.lookup(ip(11, 0, 0, 0)), 9u);

  t.dir.remove(ip(10, 1, 2, 0), 24);  // under a group: its entries fall back to the /16
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 1)), 2u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 17)), 4u);
  t.dir.remove(ip(10, 1, 2, 16), 28);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 17)), 2u);
  EXPECT_EQ(t.dir.groupsInUse(), 1u);
  t.dir.remove(ip(10, 1, 2, 20), 32);  // the last long prefix: the group folds back
  EXPECT_EQ(t.dir.groupsInUse(), 0u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 20)), 2u);
  t.dir.remove(ip(10, 1, 0, 0), 16);
  t.dir.remove(ip(10, 0, 0, 0), 8);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 20)), 9u);
  t.dir.remove(0, 0);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 20)), std::nullopt);
  EXPECT_EQ(t.dir.size(), 0u);
}

TEST(Dir24_8, ReplacingARouteChangesOnlyItsOwnAddresses) {
  Table t(4);
  ASSERT_TRUE(t.dir.add(ip(10, 1, 0, 0), 16, 1));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 2, 128), 25, 2));
  ASSERT_TRUE(t.dir.add(ip(10, 1, 0, 0), 16, 7));
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 1)), 7u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 2, 200)), 2u);
  EXPECT_EQ(t.dir.size(), 2u);
}

TEST(Dir24_8, WithNoFreeGroupALongPrefixFailsAndLeavesTheTableAsItWas) {
  Table t(1);
  ASSERT_TRUE(t.dir.add(ip(10, 1, 1, 0), 25, 1));
  ASSERT_TRUE(t.dir.add(ip(10, 2, 0, 0), 16, 2));
  auto r = t.dir.add(ip(10, 2, 2, 0), 25, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().sysErrno(), ENOSPC);
  EXPECT_NE(r.error().message().find("10.2.2.0/25"), std::string::npos) << r.error().message();
  EXPECT_EQ(t.dir.lookup(ip(10, 2, 2, 1)), 2u);
  EXPECT_EQ(t.dir.size(), 2u);

  // A freed group waits before it is reused: a reader may still be in it.
  t.dir.remove(ip(10, 1, 1, 0), 25);
  EXPECT_FALSE(t.dir.add(ip(10, 2, 2, 0), 25, 3));
  t.now += Dir24_8::kGroupReuseDelay;
  ASSERT_TRUE(t.dir.add(ip(10, 2, 2, 0), 25, 3));
  EXPECT_EQ(t.dir.lookup(ip(10, 2, 2, 1)), 3u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 1, 1)), std::nullopt);
}

TEST(Dir24_8, BadRoutesAreRefused) {
  Table t(1);
  EXPECT_FALSE(t.dir.add(0, 33, 1));
  EXPECT_FALSE(t.dir.add(0, 8, Dir24_8::kValueMask + 1));
}

// Random adds, replacements and removals over a small address space (so that prefixes nest
// and overlap), checked against the slow longest match after every step.
TEST(Dir24_8, MatchesTheLongestPrefixOverRandomChanges) {
  Table t(64);
  std::mt19937 rng(20261201);
  std::map<std::pair<uint32_t, int>, uint32_t> routes;
  auto randomAddr = [&] {
    // 10.0-3.x.y: four /16s, so that routes and probes meet.
    return ip(10, static_cast<int>(rng() % 4), static_cast<int>(rng() % 8),
              static_cast<int>(rng() % 256));
  };
  const int lengths[] = {0, 8, 12, 14, 16, 18, 20, 22, 23, 24, 25, 26, 28, 30, 31, 32};
  for (int step = 0; step < 600; ++step) {
    t.now += Dir24_8::kGroupReuseDelay;
    if (routes.empty() || rng() % 3 != 0) {
      int length = lengths[rng() % std::size(lengths)];
      uint32_t prefix = randomAddr() & maskOf(length);
      uint32_t value = rng() % 1000;
      auto ok = t.dir.add(prefix, length, value);
      ASSERT_TRUE(ok) << ok.error().message();
      routes[{prefix, length}] = value;
    } else {
      auto it = std::next(routes.begin(), static_cast<long>(rng() % routes.size()));
      t.dir.remove(it->first.first, it->first.second);
      routes.erase(it);
    }
    ASSERT_EQ(t.dir.size(), routes.size());
    for (int probe = 0; probe < 200; ++probe) {
      uint32_t addr = randomAddr();
      ASSERT_EQ(t.dir.lookup(addr), reference(routes, addr))
          << "step " << step << ", address " << (addr >> 24) << "." << (addr >> 16 & 0xff) << "."
          << (addr >> 8 & 0xff) << "." << (addr & 0xff);
    }
  }
  for (const auto& [key, value] : routes) t.dir.remove(key.first, key.second);
  EXPECT_EQ(t.dir.groupsInUse(), 0u);
  EXPECT_EQ(t.dir.lookup(ip(10, 1, 1, 1)), std::nullopt);
}

// A reader that looks up while the writer adds and removes a longer prefix over its address
// sees the covering route or the longer one, never nothing: a group is complete before the
// first level points at it, and folds back in one store.
TEST(Dir24_8, AReaderNeverSeesAGapWhileALongerPrefixComesAndGoes) {
  Table t(4);
  ASSERT_TRUE(t.dir.add(ip(10, 1, 0, 0), 16, 1));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_relaxed)) {
      auto v = t.dir.lookup(ip(10, 1, 2, 3));
      if (!v || (*v != 1 && *v != 2)) bad.fetch_add(1);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    t.now += Dir24_8::kGroupReuseDelay;  // groups come back at once: the reuse path too
    ASSERT_TRUE(t.dir.add(ip(10, 1, 2, 0), 30, 2));
    t.dir.remove(ip(10, 1, 2, 0), 30);
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
}  // namespace vfplane::dataplane
