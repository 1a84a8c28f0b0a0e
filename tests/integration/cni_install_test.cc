// Installing the plugins into a CNI bin dir (vfplane cni install, the vfplane-cni DaemonSet's
// init container): all or nothing per release, never a half-written file, and repaired when
// something else overwrites one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

#include "test_support.h"
#include "vfplane/cni/install.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using testing::ElementsAre;
using testing::HasSubstr;
using testing::IsEmpty;

const std::vector<std::string> kNames = {"p-a", "p-b"};

class InstallTest : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(from());
    test::writeFile(from() / "p-a", "release 2 of a");
    test::writeFile(from() / "p-b", "release 2 of b");
  }
  fs::path from() const { return dir_.path() / "image"; }
  fs::path to() const { return dir_.path() / "node/opt/cni/bin"; }
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(to())) {
      if (e.path().filename().string().starts_with(".")) out.push_back(e.path().filename());
    }
    return out;
  }
  test::TempDir dir_;
};

TEST_F(InstallTest, AFreshDirGetsEveryPluginExecutableAndAStamp) {
  auto r = installPlugins(from(), to(), kNames, "vfplane 2");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_THAT(r->installed, ElementsAre("p-a", "p-b"));
  EXPECT_EQ(test::readFile(to() / "p-b"), "release 2 of b");
  struct stat st {};
  ASSERT_EQ(::stat((to() / "p-a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  EXPECT_EQ(test::readFile(to() / kVersionStamp), "vfplane 2\n");
  EXPECT_THAT(leftovers(), IsEmpty());
  auto again = installPlugins(from(), to(), kNames, "vfplane 2");
  ASSERT_TRUE(again);
  EXPECT_THAT(again->installed, IsEmpty()) << "nothing rewritten";
  EXPECT_THAT(again->unchanged, ElementsAre("p-a", "p-b"));
}

TEST_F(InstallTest, AnOverwrittenPluginIsFoundAndPutBack) {
  ASSERT_TRUE(installPlugins(from(), to(), kNames, "vfplane 2"));
  test::writeFile(to() / "p-b", "release 1 of b");
  auto differ = verifyPlugins(from(), to(), kNames);
  ASSERT_TRUE(differ);
  EXPECT_THAT(*differ, ElementsAre("p-b"));
  auto r = installPlugins(from(), to(), kNames, "vfplane 2");
  ASSERT_TRUE(r);
  EXPECT_THAT(r->installed, ElementsAre("p-b"));
  EXPECT_EQ(test::readFile(to() / "p-b"), "release 2 of b");
}

TEST_F(InstallTest, AFailureBeforeTheRenamesLeavesTheOldReleaseWhole) {
  fs::create_directories(to());
  test::writeFile(to() / "p-a", "release 1 of a");
  test::writeFile(to() / "p-b", "release 1 of b");
  fs::remove(from() / "p-b");  // an image missing one plugin
  auto r = installPlugins(from(), to(), kNames, "vfplane 2");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message(), HasSubstr("p-b"));
  EXPECT_EQ(test::readFile(to() / "p-a"), "release 1 of a") << "no mix of releases";
  EXPECT_EQ(test::readFile(to() / "p-b"), "release 1 of b");
  EXPECT_THAT(leftovers(), IsEmpty()) << "no temporary file stays";
  EXPECT_FALSE(fs::exists(to() / kVersionStamp));
}

// The command as the DaemonSet runs it: install, then stay and repair, and exit 0 at SIGTERM.
TEST(InstallCommand, WatchPutsBackWhatChangesAndExitsCleanly) {
  test::TempDir dir;
  fs::path from = test::builtBinary("VFPLANE_SRIOV_BIN").parent_path();
  fs::path to = dir.path() / "bin";
  pid_t pid =
      test::spawnProcess({test::builtBinary("VFPLANE_BIN").string(), "cni", "install", "--from",
                          from.string(), "--to", to.string(), "--watch", "100ms"});
  ASSERT_GT(pid, 0);
  auto eventually = [](const std::function<bool()>& f) {
    for (int i = 0; i < 100; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  };
  auto installed = [&] {
    auto d = verifyPlugins(from, to, kPluginNames);
    return d && d->empty();
  };
  EXPECT_TRUE(eventually(installed)) << "every plugin installed";
  test::writeFile(to / "vfplane-ipam", "#!/bin/sh\necho another release\n");
  EXPECT_TRUE(eventually(installed)) << "put back";
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(installed()) << "the plugins stay after the pod goes";

  auto bad = test::run({test::builtBinary("VFPLANE_BIN").string(), "cni", "install", "--from",
                        from.string(), "--to", to.string(), "--watch", "soon"});
  EXPECT_EQ(bad.exitCode, 2);
  EXPECT_THAT(bad.err, HasSubstr("--watch soon"));
}

}  // namespace
}  // namespace vfplane::cni
