// base/: errors keep their errno and kind through context, the kind decides the exit code, and
// duration flags fail as usage errors that name the flag.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>

#include "vfplane/base/daemon_main.h"
#include "vfplane/base/error.h"
#include "vfplane/base/exit_code.h"

namespace vfplane {
namespace {
using namespace std::chrono_literals;
using testing::HasSubstr;

Result<int> deepUsage() { return usageError("--ports: eth9: no such link", ENODEV); }
Result<int> wrapped() {
  auto r = deepUsage();
  if (!r) return fail(std::move(r.error()).withContext("start"));
  return r;
}

TEST(ErrorTest, ContextKeepsErrnoAndKind) {
  auto r = wrapped();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "start: --ports: eth9: no such link");
  EXPECT_EQ(r.error().sysErrno(), ENODEV);
  EXPECT_TRUE(r.error().isUsage());
  EXPECT_EQ(exitCodeOf(r.error()), kExitUsage);
}

TEST(ErrorTest, ErrnoAloneDoesNotMakeAUsageError) {
  // A kernel EINVAL (say, from loading a BPF object) is the environment's problem, not the flags'.
  Error kernel = systemError("load XDP router: bpf_object__load", EINVAL);
  EXPECT_FALSE(kernel.isUsage());
  EXPECT_EQ(exitCodeOf(kernel), kExitFailure);
  kernel.asUsage();
  EXPECT_EQ(exitCodeOf(kernel), kExitUsage);
}

TEST(DurationFlagTest, AcceptsUnitsAndNamesTheFlag) {
  EXPECT_EQ(*durationFlag("--rescan-interval", "500ms"), 500ms);
  EXPECT_EQ(*durationFlag("--rescan-interval", "30s"), 30s);
  EXPECT_EQ(*durationFlag("--rescan-interval", "5m"), 5min);
  for (const char* bad : {"0", "-1s", "30", "soon", "1d", ""}) {
    auto d = durationFlag("--rescan-interval", bad);
    ASSERT_FALSE(d) << bad;
    EXPECT_TRUE(d.error().isUsage());
    EXPECT_THAT(d.error().message(), HasSubstr("--rescan-interval"));
  }
}

TEST(DurationFlagTest, AnIntervalOfZeroIsOff) {
  EXPECT_EQ(*intervalFlag("--stats-interval", "0"), std::nullopt);
  EXPECT_EQ(*intervalFlag("--stats-interval", "60s"),
            std::optional(std::chrono::milliseconds(60s)));
  auto bad = intervalFlag("--stats-interval", "often");
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().isUsage());
  EXPECT_THAT(bad.error().message(), HasSubstr("--stats-interval often"));
}

}  // namespace
}  // namespace vfplane
