#include "vfplane/sriov/sysfs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "test_support.h"

namespace vfplane::sriov {
namespace {
namespace fs = std::filesystem;
using test::TempDir;
using test::writeFile;

class SysfsTest : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "sys/a");
    writeFile(dir_.path() / "sys/a/dec", "42\n");
    writeFile(dir_.path() / "sys/a/hex", "0x020000\n");
    writeFile(dir_.path() / "sys/a/neg", "-1\n");
    writeFile(dir_.path() / "sys/a/word", "  up \n");
    writeFile(dir_.path() / "sys/a/junk", "12abc\n");
    fs::create_symlink("../../bus/pci/drivers/iavf", dir_.path() / "sys/a/driver");
  }
  TempDir dir_;
  Sysfs sysfs_{dir_.path()};
};

TEST_F(SysfsTest, ReadsTrimmedStringsAndIntegers) {
  EXPECT_EQ(*sysfs_.readString("sys/a/word"), "up");
  EXPECT_EQ(*sysfs_.readInt("sys/a/dec"), 42);
  EXPECT_EQ(*sysfs_.readInt("sys/a/hex"), 0x020000);
  EXPECT_EQ(*sysfs_.readInt("sys/a/neg"), -1);
}

TEST_F(SysfsTest, ErrorsCarryTheAbsolutePathAndErrno) {
  auto missing = sysfs_.readString("sys/a/nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sysErrno(), ENOENT);
  EXPECT_NE(missing.error().message().find((dir_.path() / "sys/a/nope").string()),
            std::string::npos);

  auto junk = sysfs_.readInt("sys/a/junk");
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("not an integer"), std::string::npos);
  EXPECT_NE(junk.error().message().find("sys/a/junk"), std::string::npos);
}

TEST_F(SysfsTest, ReadsLinkNamesEvenWhenDangling) {
  EXPECT_EQ(*sysfs_.readLinkName("sys/a/driver"), "iavf");
  auto notLink = sysfs_.readLinkName("sys/a/dec");
  ASSERT_FALSE(notLink);
  EXPECT_EQ(notLink.error().sysErrno(), EINVAL);
}

TEST_F(SysfsTest, ListsDirectoriesWithoutDots) {
  auto names = sysfs_.listDir("sys/a");
  ASSERT_TRUE(names);
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"dec", "driver", "hex", "junk", "neg", "word"}));
  EXPECT_EQ(sysfs_.listDir("sys/none").error().sysErrno(), ENOENT);
}

TEST_F(SysfsTest, WritesExistingAttributesOnly) {
  ASSERT_TRUE(sysfs_.writeString("sys/a/dec", "7"));
  EXPECT_EQ(*sysfs_.readInt("sys/a/dec"), 7);
  auto missing = sysfs_.writeString("sys/a/new", "1");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().sysErrno(), ENOENT);
}

}  // namespace
}  // namespace vfplane::sriov
