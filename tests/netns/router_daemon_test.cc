// vfplane-router as an operator runs it, with each backend: three pods on veth links to a router
// namespace (this test's own), the kernel of which is a real router (forwarding on) whose tables
// the fast path follows. The fast path's counters, written by --stats-json at SIGTERM, prove that
// it did the forwarding. XDP ports are the router's veths; DPDK ports are net_af_packet vdevs on
// them, with TAP mirrors that hold the addresses. Root only; skips with the reason where
// namespaces, veth, BPF or DPDK are missing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "test_support.h"

namespace vfplane::test {
namespace {
using testing::HasSubstr;

std::string pidOf(const PodNetns& pod) {
  const std::string& p = pod.path();  // /proc/<pid>/ns/net
  return p.substr(6, p.find('/', 6) - 6);
}

CommandResult inPod(const PodNetns& pod, std::vector<std::string> argv) {
  argv.insert(argv.begin(), {"nsenter", "--net=" + pod.path()});
  return run(argv);
}

void sh(const std::vector<std::string>& argv) {
  auto r = run(argv);
  ASSERT_EQ(r.exitCode, 0) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.err;
}

// The packets of one IP packet's worth of UDP datagrams from distinct source ports: flows.
std::string udpFlows(const std::string& dst, int flows) {
  return "import socket\n"
         "for p in range(20000, 20000 + " +
         std::to_string(flows) +
         "):\n"
         "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "    s.bind(('0.0.0.0', p))\n"
         "    s.sendto(b'x' * 32, ('" +
         dst +
         "', 9))\n"
         "    s.close()\n";
}

// From /proc/net/dev, which follows the reader's network namespace (/sys does not).
uint64_t rxPackets(const PodNetns& pod, const std::string& dev) {
  auto r = inPod(pod, {"cat", "/proc/net/dev"});
  std::smatch m;
  if (!std::regex_search(r.out, m, std::regex("\\s" + dev + ":\\s*[0-9]+\\s+([0-9]+)"))) {
    ADD_FAILURE() << "no " << dev << " in " << r.out;
    return 0;
  }
  return std::stoull(m[1]);
}

class RouterDaemonTest : public testing::TestWithParam<std::string> {
 protected:
  bool dpdk() const { return GetParam() == "dpdk"; }
  // The router's port for pod i: its own veth (XDP) or the TAP mirror (DPDK).
  static std::string port(int i) { return "r" + std::to_string(i); }
  std::string veth(int i) const { return dpdk() ? port(i) + "v" : port(i); }

  void SetUp() override {
    if (dpdk() && std::getenv("VFPLANE_ROUTER_DPDK") == nullptr)
      GTEST_SKIP() << "this build has no DPDK backend";
    if (!dpdk() && std::getenv("VFPLANE_ROUTER_XDP") == nullptr)
      GTEST_SKIP() << "this build has no XDP backend";
    if (auto why = enterFreshNetns()) GTEST_SKIP() << "needs a network namespace: " << *why;
    sh({"ip", "link", "set", "lo", "up"});
    sh({"sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"});
    // pod i (10.i.0.2, 2001:db8:i::2) -- h<i>|<veth i>  router
    for (int i = 1; i <= 3; ++i) {
      std::string why;
      auto pod = PodNetns::create(&why);
      if (!pod) GTEST_SKIP() << "needs pod namespaces: " << why;
      pods_.push_back(std::move(*pod));
      const PodNetns& p = pods_.back();
      std::string n = std::to_string(i), h = "h" + n;
      sh({"ip", "link", "add", veth(i), "type", "veth", "peer", "name", h});
      sh({"ip", "link", "set", h, "netns", pidOf(p)});
      if (dpdk()) {
        // The veth under an af_packet port only carries frames: the kernel must neither answer
        // nor forward what it sees there, as a copy of what DPDK takes.
        sh({"ip", "link", "set", veth(i), "arp", "off"});
        sh({"sysctl", "-qw", "net.ipv6.conf." + veth(i) + ".disable_ipv6=1",
            "net.ipv4.conf." + veth(i) + ".forwarding=0"});
      }
      sh({"ip", "link", "set", veth(i), "up"});
      for (auto cmd : std::vector<std::vector<std::string>>{
               {"ip", "addr", "add", "10." + n + ".0.2/24", "dev", h},
               {"ip", "-6", "addr", "add", "2001:db8:" + n + "::2/64", "dev", h, "nodad"},
               {"ip", "link", "set", "lo", "up"},
               {"ip", "link", "set", h, "up"},
               {"ip", "route", "add", "default", "via", "10." + n + ".0.1"},
               {"ip", "-6", "route", "add", "default", "via", "2001:db8:" + n + "::1"}}) {
        auto r = inPod(p, cmd);
        ASSERT_EQ(r.exitCode, 0) << cmd[1] << " " << cmd[2] << ": " << r.err;
      }
      // Pods 2 and 3 both answer for the ECMP destination; pod 2 for the route that comes and
      // goes.
      if (i >= 2) {
        ASSERT_EQ(inPod(p, {"ip", "addr", "add", "203.0.113.1/32", "dev", "lo"}).exitCode, 0);
      }
      if (i == 2) {
        ASSERT_EQ(inPod(p, {"ip", "addr", "add", "198.51.100.1/32", "dev", "lo"}).exitCode, 0);
      }
    }
  }

  // A counter or gauge of /metrics ("vfplane_xdp_syncs_total"), or -1.
  double metric(const std::string& name) {
    std::string body = httpGet(metricsPort_, "/metrics");
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("\\n" + name + " ([0-9.e+]+)"))) return -1;
    return std::stod(m[1]);
  }
  std::string syncs() const { return "vfplane_" + GetParam() + "_syncs_total"; }
  // What the router has applied from the kernel: re-reads, and notifications applied alone.
  double applied() {
    return metric(syncs()) + metric("vfplane_" + GetParam() + "_route_updates_total");
  }

  void TearDown() override {
    if (pid_ > 0) stop();
  }

  // Starts the router and waits until it has installed a table; for DPDK, then puts the
  // addresses on the TAP mirrors it made (for XDP, on the veths first). DPDK: `lcores` polling
  // workers, each port with as many queue pairs.
  void start(int lcores = 1, const std::vector<std::string>& extra = {}) {
    if (!dpdk()) addAddresses();
    metricsPort_ = freePort();
    std::vector<std::string> argv{builtBinary("VFPLANE_ROUTER_BIN").string(),
                                  "--backend",
                                  GetParam(),
                                  "--metrics-address",
                                  "127.0.0.1:" + std::to_string(metricsPort_),
                                  "--stats-json",
                                  stats_.path() / "stats.json",
                                  "--stats-interval",
                                  "0"};
    for (int i = 1; i <= 3; ++i) {
      argv.push_back("--port");
      std::string queues = lcores > 1 ? ",qpairs=" + std::to_string(lcores) : "";
      argv.push_back(dpdk() ? port(i) + "=net_af_packet" + std::to_string(i) + ",iface=" + veth(i) +
                                  queues
                            : port(i));
    }
    if (lcores > 1) argv.insert(argv.end(), {"--lcores", std::to_string(lcores)});
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (dpdk()) {
      argv.insert(argv.end(), {"--", "--no-huge", "--no-shconf", "-m", "512", "--log-level=error"});
    } else {
      argv.insert(argv.end(), {"--mode", "generic"});
    }
    pid_ = spawnProcess(argv);
    ASSERT_GT(pid_, 0);
    std::string metrics = httpGetUntil(metricsPort_, "/metrics", "_table_entries");
    ASSERT_THAT(metrics, HasSubstr("_table_entries")) << "the router came up";
    if (dpdk()) addAddresses();
    // The router resolves every pod (the kernel answers through the mirror for DPDK).
    for (int i = 1; i <= 3; ++i) {
      std::string n = std::to_string(i);
      for (const std::string& ip : {"10." + n + ".0.2", "2001:db8:" + n + "::2"}) {
        auto ping = run({"ping", "-c", "1", "-W", "2", ip});
        ASSERT_EQ(ping.exitCode, 0) << "the router reaches " << ip << ": " << ping.out;
      }
    }
    // ... and the fast path has their MACs (a sync after the neighbour events; slower when the
    // control plane shares a CPU with a polling lcore).
    std::string neighbours = "vfplane_" + GetParam() + "_neighbours";
    ASSERT_TRUE(eventually([&] { return metric(neighbours) >= 6; }))
        << "the fast path knows the pods: " << metric(neighbours) << " neighbours";
  }

  void addAddresses() {
    for (int i = 1; i <= 3; ++i) {
      std::string n = std::to_string(i);
      sh({"ip", "addr", "add", "10." + n + ".0.1/24", "dev", port(i)});
      sh({"ip", "-6", "addr", "add", "2001:db8:" + n + "::1/64", "dev", port(i), "nodad"});
    }
  }

  // SIGTERM, then the counters it wrote.
  nlohmann::json stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "SIGTERM is a clean shutdown";
    auto text = readFile(stats_.path() / "stats.json");
    auto j = nlohmann::json::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << text;
    return j;
  }

  // Bounded retries: the router follows a change within one sync, which events trigger.
  static bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 40; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  std::vector<PodNetns> pods_;
  TempDir stats_;
  int metricsPort_ = 0;
  pid_t pid_ = -1;
};

TEST_P(RouterDaemonTest, PingsCrossOverIpv4AndIpv6ThroughTheFastPath) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto v4 = inPod(pods_[0], {"ping", "-c", "5", "-i", "0.2", "-W", "2", "10.2.0.2"});
  EXPECT_EQ(v4.exitCode, 0) << v4.out << v4.err;
  EXPECT_THAT(v4.out, testing::Not(HasSubstr("DUP!")));
  auto v6 = inPod(pods_[0], {"ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", "2001:db8:2::2"});
  EXPECT_EQ(v6.exitCode, 0) << v6.out << v6.err;
  EXPECT_THAT(v6.out, testing::Not(HasSubstr("DUP!")));
  std::string metrics = httpGet(metricsPort_, "/metrics");
  EXPECT_THAT(metrics, testing::ContainsRegex(
                           "_port_packets_total\\{port=\"r2\",direction=\"tx\"\\} [1-9]"));
  auto stats = stop();
  EXPECT_GE(stats["packets"]["forwarded"].get<uint64_t>(), 16u)
      << "10 requests and 10 replies, all but the kernel's first few by the fast path: " << stats;
  EXPECT_EQ(stats["fast_path"], GetParam());
  EXPECT_GT(stats["ports"]["r1"]["forwarded"].get<uint64_t>(), 0u) << stats;
  EXPECT_GT(stats["ports"]["r2"]["tx"].get<uint64_t>(), 0u);
  EXPECT_GE(stats["routes"].get<uint64_t>(), 6u) << "3 connected subnets, both families";
  EXPECT_GE(stats["neighbours"].get<uint64_t>(), 6u) << "the three pods, both families";
  if (dpdk()) {
    ASSERT_EQ(stats["workers"].size(), 1u);
    EXPECT_GT(stats["workers"][0]["busy"].get<uint64_t>(), 0u);
  }
}

TEST_P(RouterDaemonTest, TtlOneIsAnsweredByTheKernelFromTheRoutersAddress) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto probe = inPod(pods_[0], {"ping", "-c", "1", "-t", "1", "-W", "2", "10.2.0.2"});
  EXPECT_THAT(probe.out, HasSubstr("From 10.1.0.1"));
  EXPECT_THAT(probe.out, HasSubstr("Time to live exceeded"));
  auto stats = stop();
  EXPECT_GE(stats["packets"]["ttl"].get<uint64_t>(), 1u) << stats;
}

TEST_P(RouterDaemonTest, AnEcmpRouteSpreadsFlowsOverBothNextHops) {
  ASSERT_NO_FATAL_FAILURE(start());
  double synced = applied();
  sh({"ip", "route", "add", "203.0.113.0/24", "nexthop", "via", "10.2.0.2", "dev", port(2),
      "nexthop", "via", "10.3.0.2", "dev", port(3)});
  // The fast path has the route (both next hops were resolved by start()). The kernel alone
  // would not spread these flows: its default hash policy looks at addresses only.
  ASSERT_TRUE(eventually([&] { return applied() > synced; }));
  uint64_t before2 = rxPackets(pods_[1], "h2"), before3 = rxPackets(pods_[2], "h3");
  auto sent = inPod(pods_[0], {"python3", "-c", udpFlows("203.0.113.1", 64)});
  ASSERT_EQ(sent.exitCode, 0) << sent.err;
  uint64_t got2 = 0, got3 = 0;
  EXPECT_TRUE(eventually([&] {
    got2 = rxPackets(pods_[1], "h2") - before2;
    got3 = rxPackets(pods_[2], "h3") - before3;
    return got2 + got3 >= 64;
  })) << got2
      << " + " << got3;
  // 64 flows over two equal paths: each takes some (all on one: odds 2^-63).
  EXPECT_GT(got2, 0u);
  EXPECT_GT(got3, 0u);
  auto stats = stop();
  EXPECT_GE(stats["packets"]["forwarded"].get<uint64_t>(), 60u) << stats;
}

// What only the DPDK backend has: lcores (XDP runs where the NIC's interrupts do) and --mtu (XDP
// ports are netdevs, whose MTU ip link sets).
class RouterDaemonDpdkTest : public RouterDaemonTest {};

// --lcores 2 with the lcores placed by the router itself (two CPUs here: the control plane shares
// the first worker's): af_packet's two queue pairs fan flows out by hash, so both workers
// forward, each on its own queues.
TEST_P(RouterDaemonDpdkTest, TwoLcoresBothForwardFlowsOfTheirOwn) {
  ASSERT_NO_FATAL_FAILURE(start(2));
  uint64_t before2 = rxPackets(pods_[1], "h2");
  auto sent = inPod(pods_[0], {"python3", "-c", udpFlows("10.2.0.2", 64)});
  ASSERT_EQ(sent.exitCode, 0) << sent.err;
  uint64_t got = 0;
  EXPECT_TRUE(eventually([&] {
    got = rxPackets(pods_[1], "h2") - before2;
    return got >= 64;
  })) << got;
  auto stats = stop();
  ASSERT_EQ(stats["workers"].size(), 2u) << stats;
  // Worker 1 is busy only when its RX queue held frames; 64 flows all hashed to one queue: 2^-63.
  EXPECT_GT(stats["workers"][0]["busy"].get<uint64_t>(), 0u) << stats;
  EXPECT_GT(stats["workers"][1]["busy"].get<uint64_t>(), 0u) << stats;
  EXPECT_GE(stats["packets"]["forwarded"].get<uint64_t>(), 64u) << stats;
}

// --mtu: the port and its TAP take it; a packet over it is the kernel's, which says so to the
// sender (fragmentation needed, with the MTU).
TEST_P(RouterDaemonDpdkTest, APortsMtuIsItsTapsAndBigPacketsGetFragNeeded) {
  ASSERT_NO_FATAL_FAILURE(start(1, {"--mtu", "r2=1400"}));
  EXPECT_THAT(run({"ip", "link", "show", "r2"}).out, HasSubstr("mtu 1400"));
  auto fits = inPod(pods_[0], {"ping", "-M", "do", "-c", "1", "-W", "2", "-s", "1372", "10.2.0.2"});
  EXPECT_EQ(fits.exitCode, 0) << "1400 bytes fit: " << fits.out;
  auto big = inPod(pods_[0], {"ping", "-M", "do", "-c", "1", "-W", "2", "-s", "1373", "10.2.0.2"});
  EXPECT_NE(big.exitCode, 0);
  EXPECT_THAT(big.out, HasSubstr("mtu = 1400")) << big.out << big.err;
  auto stats = stop();
  EXPECT_GE(stats["packets"]["too_big"].get<uint64_t>(), 1u) << stats;
}

TEST_P(RouterDaemonTest, RoutesAddedAndDeletedWithIpRouteTakeEffect) {
  ASSERT_NO_FATAL_FAILURE(start());
  auto reach = [&] {
    return inPod(pods_[0], {"ping", "-c", "1", "-W", "1", "198.51.100.1"}).exitCode == 0;
  };
  EXPECT_FALSE(reach()) << "no route yet";
  // On DPDK each change goes into the tables in place (the route comes, then goes).
  std::string inPlace = "vfplane_dpdk_table_installs_total\\{how=\"in_place\"\\}";
  double before = dpdk() ? metric(inPlace) : 0;
  sh({"ip", "route", "add", "198.51.100.0/24", "via", "10.2.0.2"});
  EXPECT_TRUE(eventually(reach));
  if (dpdk()) {
    EXPECT_GE(before, 0) << "the DPDK router says how it installs";
    EXPECT_TRUE(eventually([&] { return metric(inPlace) >= before + 1; })) << "the route in place";
  }
  sh({"ip", "route", "del", "198.51.100.0/24"});
  EXPECT_TRUE(eventually([&] { return !reach(); }));
  if (dpdk()) {
    EXPECT_TRUE(eventually([&] { return metric(inPlace) >= before + 2; })) << "and out";
  }
  auto stats = stop();
  EXPECT_EQ(stats["sync_errors"].get<uint64_t>(), 0u);
}

TEST_P(RouterDaemonTest, SigtermLeavesNothingBehind) {
  ASSERT_NO_FATAL_FAILURE(start());
  stop();
  auto links = run({"ip", "-d", "link", "show"});
  EXPECT_THAT(links.out, testing::Not(HasSubstr("xdp"))) << "no program attached";
  if (dpdk()) {
    for (int i = 1; i <= 3; ++i) {
      EXPECT_NE(run({"ip", "link", "show", port(i)}).exitCode, 0) << "TAP " << port(i) << " gone";
    }
  }
  int ping = inPod(pods_[0], {"ping", "-c", "1", "-W", "1", "10.2.0.2"}).exitCode;
  if (dpdk()) {
    EXPECT_NE(ping, 0) << "the ports and their mirrors are gone";
  } else {
    EXPECT_EQ(ping, 0) << "the kernel forwards on its own again";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, RouterDaemonTest, testing::Values("xdp", "dpdk"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Backends, RouterDaemonDpdkTest, testing::Values("dpdk"),
                         [](const auto& info) { return info.param; });

TEST(RouterCli, BadInputExitsTwoNamingTheFlagOrPort) {
  std::string bin = builtBinary("VFPLANE_ROUTER_BIN").string();
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  const Case cases[] = {
      {{}, "--backend"},
      {{"--backend", "vpp", "--port", "x"}, "--backend vpp: must be xdp or dpdk"},
      {{"--backend", "xdp", "--port", "nosuch0"}, "port nosuch0: no such link"},
      {{"--backend", "xdp", "--port", "lo", "--port", "lo"}, "lo is given twice"},
      {{"--backend", "xdp", "--port", "lo=0000:03:02.0"}, "NAME=DEVICE is for --backend dpdk"},
      {{"--backend", "dpdk", "--port", "r1"}, "takes NAME=DEVICE"},
      {{"--backend", "dpdk", "--port", "r1=pci0"}, "neither a PCI address"},
      {{"--backend", "dpdk", "--port", "r1=ff:1f.7"}, "port r1: no PCI device 0000:ff:1f.7"},
      {{"--backend", "dpdk", "--port", "r1=env:VFPLANE_UNSET_FOR_TEST"},
       "VFPLANE_UNSET_FOR_TEST is not set"},
      {{"--backend", "dpdk", "--port", "r1=net_af_packet0,iface=lo", "--mac",
        "r1=33:33:00:00:00:01"},
       "not a unicast address"},
      {{"--backend", "dpdk", "--port", "lo=net_af_packet0,iface=lo"}, "a link of that name exists"},
      {{"--backend", "xdp", "--port", "lo", "--resync-interval", "soon"}, "--resync-interval soon"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{bin};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = run(argv);
    EXPECT_EQ(r.exitCode, 2) << c.says;
    EXPECT_THAT(r.err + r.out, HasSubstr(c.says));
  }
  auto help = run({bin, "--help"});
  EXPECT_EQ(help.exitCode, 0);
  EXPECT_THAT(help.out, HasSubstr("--stats-json"));
}

}  // namespace
}  // namespace vfplane::test
