// The --veth simulated node against the real kernel, inside a throwaway network namespace: links
// and bridges exist as promised, carrier follows the switch side, VFs of one PF reach each other,
// and destroy leaves no link behind.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "test_support.h"
#include "vfplane/netlink/links.h"
#include "vfplane/sriov/sim_node.h"

namespace vfplane::sriov {
namespace {
namespace fs = std::filesystem;
using test::run;
using test::TempDir;

// Link names in the current namespace, from `ip -o link`, without the @peer suffix.
std::vector<std::string> linkNames() {
  auto r = run({"ip", "-o", "link", "show"});
  std::vector<std::string> names;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(": ");
    auto b = line.find(':', a + 2);
    std::string name = line.substr(a + 2, b - a - 2);
    names.push_back(name.substr(0, name.find('@')));
  }
  return names;
}

// The flags `ip` prints between < and >, e.g. "BROADCAST,MULTICAST,UP,LOWER_UP". SIOCGIFFLAGS
// cannot be used: its 16-bit flags have no room for IFF_LOWER_UP (carrier).
std::string linkFlags(const std::string& name) {
  auto r = run({"ip", "-o", "link", "show", name});
  auto open = r.out.find('<');
  auto close = r.out.find('>', open);
  return open == std::string::npos ? "" : "," + r.out.substr(open + 1, close - open - 1) + ",";
}
bool hasFlag(const std::string& name, const std::string& flag) {
  return linkFlags(name).find("," + flag + ",") != std::string::npos;
}

std::string masterOf(const std::string& name) {
  auto r = run({"ip", "-o", "link", "show", name});
  auto at = r.out.find(" master ");
  if (at == std::string::npos) return "";
  auto start = at + 8;
  return r.out.substr(start, r.out.find(' ', start) - start);
}

class SimVethTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (auto why = test::enterFreshNetns()) skipReason_ = *why;
  }
  void SetUp() override {
    if (!skipReason_.empty()) GTEST_SKIP() << "needs a network namespace: " << skipReason_;
    auto links = netlink::NetlinkLinks::open();
    ASSERT_TRUE(links) << links.error().message();
    links_ = std::move(*links);
  }
  void TearDown() override {
    if (links_ && fs::exists(root())) (void)destroySimNode(root(), links_.get());
  }
  fs::path root() const { return dir_.path() / "node"; }

  static inline std::string skipReason_;
  TempDir dir_;
  std::unique_ptr<netlink::LinkOps> links_;
};

TEST_F(SimVethTest, CreatesBridgedVethsAndDestroyLeavesNothing) {
  auto before = linkNames();
  auto node = createSimNode(
      {.root = root(), .pfs = 2, .vfs = 3, .vfio = 1, .nics = 1, .veth = true}, links_.get());
  ASSERT_TRUE(node) << node.error().message();
  for (const auto& name : {"ens1f0", "ens1f0v0", "ens1f0v1", "ens1f1", "ens1f1v1"}) {
    EXPECT_NE(if_nametoindex(name), 0u) << name;
    EXPECT_EQ(masterOf(std::string(name) + "_rep"), node->pfs[name[5] - '0'].bridge) << name;
  }
  EXPECT_EQ(if_nametoindex("ens1f0v2"), 0u) << "vfio-pci VF must have no netdev";
  EXPECT_TRUE(hasFlag("ens1f0", "UP"));
  EXPECT_TRUE(hasFlag("ens1f0", "LOWER_UP")) << "PF has carrier while its switch port is up";
  EXPECT_FALSE(hasFlag("ens1f0v0", "UP"));
  EXPECT_TRUE(hasFlag("eno1", "LOWER_UP")) << "the plain NIC is cabled";

  ASSERT_TRUE(destroySimNode(root(), links_.get()));
  EXPECT_EQ(linkNames(), before) << "no link may be left behind";
  EXPECT_FALSE(fs::exists(root()));
}

TEST_F(SimVethTest, PfCarrierFollowsItsSwitchPort) {
  ASSERT_TRUE(createSimNode({.root = root(), .pfs = 1, .vfs = 1, .veth = true}, links_.get()));
  ASSERT_TRUE(links_->setUp("ens1f0_rep", false));
  EXPECT_TRUE(hasFlag("ens1f0", "NO-CARRIER")) << "cable pulled: no carrier";
  ASSERT_TRUE(links_->setUp("ens1f0_rep", true));
  EXPECT_TRUE(hasFlag("ens1f0", "LOWER_UP"));
}

TEST_F(SimVethTest, FailedCreateRemovesWhatItMade) {
  // ens1f1 already exists, so the second PF fails after the first PF's links were made.
  ASSERT_TRUE(links_->addVethPair("ens1f1", "squatter"));
  auto node = createSimNode({.root = root(), .pfs = 2, .vfs = 2, .veth = true}, links_.get());
  ASSERT_FALSE(node);
  EXPECT_THAT(node.error().message(), testing::HasSubstr("ens1f1"));
  EXPECT_EQ(if_nametoindex("ens1f0"), 0u);
  EXPECT_EQ(if_nametoindex("ens1f0_esw"), 0u);
  EXPECT_FALSE(fs::exists(root()));
  ASSERT_TRUE(links_->remove("squatter"));
}

// Two "pods" on VFs of the same PF talk through the PF's bridge, as through a NIC's switch.
TEST_F(SimVethTest, VfsOfOnePfReachEachOther) {
  ASSERT_TRUE(createSimNode({.root = root(), .pfs = 1, .vfs = 2, .veth = true}, links_.get()));
  std::string a = "vfpsim-a-" + std::to_string(::getpid());
  std::string b = "vfpsim-b-" + std::to_string(::getpid());
  ASSERT_EQ(run({"ip", "netns", "add", a}).exitCode, 0);
  ASSERT_EQ(run({"ip", "netns", "add", b}).exitCode, 0);
  struct Cleanup {
    std::string a, b;
    ~Cleanup() {
      run({"ip", "netns", "del", a});
      run({"ip", "netns", "del", b});
    }
  } cleanup{a, b};
  for (auto [ns, vf, ip] :
       {std::tuple{a, "ens1f0v0", "198.18.0.1/24"}, std::tuple{b, "ens1f0v1", "198.18.0.2/24"}}) {
    ASSERT_EQ(run({"ip", "link", "set", vf, "netns", ns}).exitCode, 0);
    ASSERT_EQ(run({"ip", "-n", ns, "addr", "add", ip, "dev", vf}).exitCode, 0);
    ASSERT_EQ(run({"ip", "-n", ns, "link", "set", vf, "up"}).exitCode, 0);
  }
  // Receive in b, send from a: each on a thread that joined that namespace.
  auto inNetns = [](const std::string& ns) {
    int fd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    bool ok = fd >= 0 && ::setns(fd, CLONE_NEWNET) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
  };
  std::string received;
  int rfd = -1;
  std::thread receiverSetup([&] {
    if (!inNetns(b)) return;
    rfd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{AF_INET, htons(9000), {htonl(INADDR_ANY)}, {}};
    if (::bind(rfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(rfd);
      rfd = -1;
    }
  });
  receiverSetup.join();
  ASSERT_GE(rfd, 0);
  timeval timeout{10, 0};  // a bound, not a measurement: the datagram arrives in microseconds
  ::setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::thread sender([&] {
    if (!inNetns(a)) return;
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{AF_INET, htons(9000), {}, {}};
    ::inet_pton(AF_INET, "198.18.0.2", &to.sin_addr);
    ::sendto(s, "hello", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(s);
  });
  sender.join();
  char buf[16] = {};
  ssize_t n = ::recv(rfd, buf, sizeof buf, 0);
  ::close(rfd);
  ASSERT_EQ(n, 5) << "no datagram from the other VF: " << std::strerror(errno);
  EXPECT_EQ(std::string(buf, 5), "hello");
  // The VFs are in the pods now; destroy must still clean up through their _rep ends.
  ASSERT_TRUE(destroySimNode(root(), links_.get()));
  EXPECT_EQ(run({"ip", "-n", a, "link", "show", "ens1f0v0"}).exitCode, 1);
}

}  // namespace
}  // namespace vfplane::sriov
