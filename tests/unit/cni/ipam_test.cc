// vfplane-ipam's allocator: host-local's config, on-disk format and allocation order.
#include "vfplane/cni/ipam.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "test_support.h"

namespace vfplane::cni {
namespace {
namespace fs = std::filesystem;
using testing::HasSubstr;

class IpamTest : public testing::Test {
 protected:
  CniExpected<IpamConfig> parse(const std::string& ipam, const std::string& extra = "",
                                const std::string& args = "") {
    std::string text =
        R"({"cniVersion":"1.0.0","name":"net","type":"vfplane-sriov","ipam":)" + ipam + extra + "}";
    auto conf = parseNetConf(text);
    if (!conf) return std::unexpected(conf.error());
    auto env = parseEnvironment({{"CNI_COMMAND", "ADD"},
                                 {"CNI_CONTAINERID", "c"},
                                 {"CNI_NETNS", "/x"},
                                 {"CNI_IFNAME", "net1"},
                                 {"CNI_ARGS", args}});
    return parseIpamConfig(*conf, *env);
  }
  std::string ranges(const std::string& r) const {
    return R"({"type":"vfplane-ipam","dataDir":")" + dir_.path().string() + R"(","ranges":)" + r +
           "}";
  }
  IpamConfig config(const std::string& r) {
    auto c = parse(ranges(r));
    EXPECT_TRUE(c) << c.error().msg;
    return *c;
  }
  std::set<std::string> reserved() const {
    std::set<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_.path() / "net", ec)) {
      std::string n = e.path().filename().string();
      if (n != "lock" && !n.starts_with("last_reserved_ip")) out.insert(n);
    }
    return out;
  }
  test::TempDir dir_;
};

TEST_F(IpamTest, HostLocalDefaultsAndFormat) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/29"}]])");
  ASSERT_EQ(c.rangeSets.size(), 1u);
  EXPECT_EQ(c.rangeSets[0][0].str(), "10.5.0.1-10.5.0.6");
  EXPECT_EQ(c.rangeSets[0][0].gateway->addressStr(), "10.5.0.1");
  IpamStore store(c);
  auto r = store.allocate(c, "ctr-a", "net1");
  ASSERT_TRUE(r) << r.error().msg;
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_EQ(r->ips[0].address, "10.5.0.2/29") << "the gateway .1 is never handed out";
  EXPECT_EQ(r->ips[0].gateway, "10.5.0.1");
  EXPECT_EQ(test::readFile(dir_.path() / "net/10.5.0.2"), "ctr-a\r\nnet1");
  EXPECT_EQ(test::readFile(dir_.path() / "net/last_reserved_ip.0"), "10.5.0.2");
  EXPECT_TRUE(fs::exists(dir_.path() / "net/lock"));
}

TEST_F(IpamTest, LegacySubnetFormAndRoutes) {
  auto c = parse(
      R"({"type":"vfplane-ipam","subnet":"10.9.0.0/24","rangeStart":"10.9.0.100","rangeEnd":"10.9.0.110",
                     "gateway":"10.9.0.254","routes":[{"dst":"0.0.0.0/0"},{"dst":"10.0.0.0/8","gw":"10.9.0.1"}]})");
  ASSERT_TRUE(c) << c.error().msg;
  EXPECT_EQ(c->rangeSets[0][0].str(), "10.9.0.100-10.9.0.110");
  EXPECT_EQ(c->rangeSets[0][0].gateway->addressStr(), "10.9.0.254");
  ASSERT_EQ(c->routes.size(), 2u);
  EXPECT_EQ(c->routes[1].gw, "10.9.0.1");
  EXPECT_EQ(c->dataDir, "/var/lib/cni/networks");
}

TEST_F(IpamTest, DualStackGivesOneAddressPerRangeSet) {
  IpamConfig c = config(
      R"([[{"subnet":"10.5.0.0/24"}],[{"subnet":"fd00:5::/64","rangeStart":"fd00:5::10","rangeEnd":"fd00:5::20"}]])");
  auto r = IpamStore(c).allocate(c, "ctr-a", "net1");
  ASSERT_TRUE(r) << r.error().msg;
  ASSERT_EQ(r->ips.size(), 2u);
  EXPECT_EQ(r->ips[0].address, "10.5.0.2/24");
  EXPECT_EQ(r->ips[1].address, "fd00:5::10/64");
  EXPECT_EQ(r->ips[1].gateway, "fd00:5::1");
  EXPECT_TRUE(fs::exists(dir_.path() / "net/last_reserved_ip.1"));
}

TEST_F(IpamTest, ExhaustedRangeIsNamedAndRollsBackOtherSets) {
  IpamConfig c = config(R"([[{"subnet":"10.6.0.0/24"}],[{"subnet":"10.5.0.0/30"}]])");
  IpamStore store(c);
  ASSERT_TRUE(store.allocate(c, "a", "net1"));
  auto r = store.allocate(c, "b", "net1");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().msg,
              HasSubstr("no IP addresses available in range set 1: 10.5.0.1-10.5.0.2"));
  EXPECT_EQ(reserved(), (std::set<std::string>{"10.6.0.2", "10.5.0.2"}))
      << "b's address from set 0 was given back";
}

TEST_F(IpamTest, RepeatedAddReturnsWhatTheAttachmentHolds) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/24"}]])");
  IpamStore store(c);
  auto first = store.allocate(c, "a", "net1");
  auto again = store.allocate(c, "a", "net1");
  ASSERT_TRUE(first && again);
  EXPECT_EQ(first->ips[0].address, again->ips[0].address);
  EXPECT_EQ(reserved().size(), 1u);
  auto other = store.allocate(c, "a", "net2");
  EXPECT_NE(other->ips[0].address, first->ips[0].address)
      << "another interface of the pod is another attachment";
}

TEST_F(IpamTest, ContinuesAfterTheLastReservedAndWraps) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/29"}]])");  // .2-.6 usable
  IpamStore store(c);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(store.allocate(c, id, "net1"));  // .2 .3 .4
  ASSERT_TRUE(store.release("a", "net1"));                                            // frees .2
  EXPECT_EQ(store.allocate(c, "d", "net1")->ips[0].address, "10.5.0.5/29")
      << "round-robin, not lowest-free";
  EXPECT_EQ(store.allocate(c, "e", "net1")->ips[0].address, "10.5.0.6/29");
  EXPECT_EQ(store.allocate(c, "f", "net1")->ips[0].address, "10.5.0.2/29") << "wraps to the start";
}

TEST_F(IpamTest, RequestedAddressesFromEverySource) {
  std::string base = ranges(R"([[{"subnet":"10.5.0.0/24"}]])");
  auto fromRuntime = parse(base, R"(,"runtimeConfig":{"ips":["10.5.0.50/24"]})");
  ASSERT_TRUE(fromRuntime) << fromRuntime.error().msg;
  EXPECT_EQ(IpamStore(*fromRuntime).allocate(*fromRuntime, "a", "net1")->ips[0].address,
            "10.5.0.50/24");
  auto fromArgs = parse(base, R"(,"args":{"cni":{"ips":["10.5.0.51"]}})");
  EXPECT_EQ(IpamStore(*fromArgs).allocate(*fromArgs, "b", "net1")->ips[0].address, "10.5.0.51/24");
  auto fromEnv = parse(base, "", "IgnoreUnknown=1;IP=10.5.0.52");
  EXPECT_EQ(IpamStore(*fromEnv).allocate(*fromEnv, "c", "net1")->ips[0].address, "10.5.0.52/24");
  // Taken, or the gateway: refused by name.
  auto taken = IpamStore(*fromEnv).allocate(*fromEnv, "d", "net1");
  ASSERT_FALSE(taken);
  EXPECT_THAT(taken.error().msg, HasSubstr("10.5.0.52 is already reserved"));
  auto gw = parse(base, "", "IP=10.5.0.1");
  EXPECT_THAT(IpamStore(*gw).allocate(*gw, "e", "net1").error().msg, HasSubstr("gateway"));
  auto outside = parse(base, "", "IP=10.6.0.1");
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().code, ErrorCode::kInvalidConfig);
}

TEST_F(IpamTest, ReleaseTouchesOnlyThatAttachmentAndReadsOldFiles) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/24"}]])");
  IpamStore store(c);
  ASSERT_TRUE(store.allocate(c, "a", "net1"));
  ASSERT_TRUE(store.allocate(c, "a", "net2"));
  test::writeFile(dir_.path() / "net/10.5.0.200", "old-container\n");  // old host-local: ID only
  ASSERT_TRUE(store.release("a", "net1"));
  EXPECT_EQ(reserved(), (std::set<std::string>{"10.5.0.3", "10.5.0.200"}));
  ASSERT_TRUE(store.release("old-container", "eth0"));
  EXPECT_EQ(reserved(), std::set<std::string>{"10.5.0.3"});
  EXPECT_TRUE(store.release("nobody", "net1")) << "releasing nothing is fine";
  EXPECT_TRUE(store.check(c, "a", "net2"));
  EXPECT_EQ(store.check(c, "a", "net1").error().code, kCheckMismatch);
}

TEST_F(IpamTest, ThirtyTwoParallelAddsGetDistinctAddressesAndDelsLeaveNothing) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/26"}]])");
  std::vector<std::string> got(32);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 32; ++i) {
      threads.emplace_back([&, i] {
        auto r = IpamStore(c).allocate(c, "ctr" + std::to_string(i), "net1");
        got[static_cast<size_t>(i)] = r ? r->ips[0].address : "error: " + r.error().msg;
      });
    }
  }
  std::set<std::string> distinct(got.begin(), got.end());
  EXPECT_EQ(distinct.size(), 32u);
  for (const auto& a : got) EXPECT_THAT(a, testing::StartsWith("10.5.0."));
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 32; ++i) {
      threads.emplace_back(
          [&, i] { (void)IpamStore(c).release("ctr" + std::to_string(i), "net1"); });
    }
  }
  EXPECT_TRUE(reserved().empty());
}

TEST_F(IpamTest, GcKeepsOnlyValidAttachments) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/24"}]])");
  IpamStore store(c);
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(store.allocate(c, id, "net1"));
  ASSERT_TRUE(store.gc({{"b", "net1"}}, Environment{}.logger()));
  EXPECT_EQ(reserved(), std::set<std::string>{"10.5.0.3"});
}

// Makes dir refuse new entries: immutable for root (whom permissions do not stop), read-only and
// unwritable for anyone else. The guard undoes it. Returns why it cannot, for a loud skip.
class UnwritableDir {
 public:
  explicit UnwritableDir(const fs::path& dir) : dir_(dir) {
    if (::geteuid() != 0) {
      fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec);
      done_ = true;
      return;
    }
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags |= FS_IMMUTABLE_FL;
      done_ = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    if (!done_)
      why_ = std::string("cannot make ") + dir_.string() + " immutable: " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
  }
  ~UnwritableDir() {
    if (!done_) return;
    if (::geteuid() != 0) {
      fs::permissions(dir_, fs::perms::owner_all);
      return;
    }
    int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int flags = 0;
    if (fd >= 0 && ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0) {
      flags &= ~FS_IMMUTABLE_FL;
      (void)::ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    if (fd >= 0) ::close(fd);
  }
  const std::string& why() const { return why_; }

 private:
  fs::path dir_;
  bool done_ = false;
  std::string why_;
};

TEST_F(IpamTest, AnUnwritableDataDirIsAnIoErrorNamingThePathNotAnExhaustedRange) {
  IpamConfig c = config(R"([[{"subnet":"10.5.0.0/16"}]])");
  IpamStore store(c);
  ASSERT_TRUE(store.allocate(c, "a", "net1"));  // the dir and its lock file exist
  UnwritableDir guard(dir_.path() / "net");
  if (!guard.why().empty()) GTEST_SKIP() << guard.why();
  auto r = store.allocate(c, "b", "net1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kIoFailure) << r.error().msg;
  EXPECT_THAT(r.error().msg, HasSubstr((dir_.path() / "net").string()));
  EXPECT_THAT(r.error().msg, testing::Not(HasSubstr("no IP addresses available")));
}

TEST_F(IpamTest, BadConfigsAreCode7NamingTheField) {
  struct Case {
    std::string ipam;
    std::string mentions;
  };
  const std::vector<Case> cases = {
      {R"({"type":"vfplane-ipam"})", "ranges"},
      {R"({"type":"vfplane-ipam","ranges":[]})", "ranges"},
      {R"({"type":"vfplane-ipam","ranges":[[]]})", "ranges[0]"},
      {R"({"type":"vfplane-ipam","ranges":[[{"rangeStart":"10.0.0.1"}]]})", "ranges[0][0].subnet"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.1"}]]})", "ranges[0][0].subnet"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.0/31"}]]})", "too small"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}]]})",
       "rangeStart"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.5"}]]})",
       "after rangeEnd"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.0/24","gateway":"10.1.0.1"}]]})",
       "gateway"},
      {R"({"type":"vfplane-ipam","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/25"}]]})",
       "overlaps"},
      {R"({"type":"vfplane-ipam","subnet":"10.0.0.0/24","routes":[{"dst":"default"}]})",
       "routes[0].dst"},
      {R"({"type":"vfplane-ipam","subnet":"10.0.0.0/24","dataDir":""})", "dataDir"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.ipam);
    auto r = parse(c.ipam);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidConfig);
    EXPECT_THAT(r.error().msg, HasSubstr(c.mentions));
  }
}

}  // namespace
}  // namespace vfplane::cni
