// The CNI's reading of the kubelet's PodResources API and device checkpoint: the hand-written
// wire decoder against messages that libprotobuf serialized, the nghttp2 gRPC client against a
// real gRPC server (the in-tree PodResources sim, dp/pod_resources_sim.h), and the lookup with each
// fallback and each error a user meets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <fstream>

#include "podresources_v1.pb.h"
#include "test_support.h"
#include "vfplane/base/fd.h"
#include "vfplane/cni/pod_resources.h"
#include "vfplane/dp/pod_resources_sim.h"

namespace vfplane::cni {
namespace {
using testing::AllOf;
using testing::ElementsAre;
using testing::HasSubstr;

v1::ListPodResourcesResponse twoPods() {
  v1::ListPodResourcesResponse r;
  auto* web = r.add_pod_resources();
  web->set_name("web-0");
  web->set_namespace_("default");
  auto* app = web->add_containers();
  app->set_name("app");
  app->add_cpu_ids(2);
  app->add_cpu_ids(3);
  auto* vfs = app->add_devices();
  vfs->set_resource_name("intel.com/sriov_net_a");
  vfs->add_device_ids("0000:03:02.1");
  vfs->add_device_ids("0000:03:02.0");
  vfs->mutable_topology()->add_nodes()->set_id(1);
  auto* mem = app->add_memory();
  mem->set_memory_type("hugepages-1Gi");
  mem->set_size(1u << 30);
  auto* side = web->add_containers();
  side->add_devices()->set_resource_name("intel.com/sriov_net_a");
  side->mutable_devices(0)->add_device_ids("0000:03:02.4");
  side->set_name("sidecar");  // after its devices: field order is the writer's choice
  auto* other = r.add_pod_resources();
  other->set_name("db-0");
  other->set_namespace_("prod");
  auto* c = other->add_containers();
  c->set_name("db");
  c->add_devices()->set_resource_name("intel.com/sriov_dpdk");
  c->mutable_devices(0)->add_device_ids("0000:04:00.2");
  return r;
}

TEST(PodResourcesWire, ListAnswersReadAsLibprotobufWroteThem) {
  auto pods = parseListResponse(twoPods().SerializeAsString());
  ASSERT_TRUE(pods) << pods.error().message();
  ASSERT_EQ(pods->size(), 2u);
  const PodResources& web = (*pods)[0];
  EXPECT_EQ(web.ns, "default");
  EXPECT_EQ(web.name, "web-0");
  ASSERT_EQ(web.devices.size(), 2u);
  EXPECT_EQ(web.devices[0].container, "app");
  EXPECT_EQ(web.devices[0].resource, "intel.com/sriov_net_a");
  EXPECT_THAT(web.devices[0].ids, ElementsAre("0000:03:02.1", "0000:03:02.0"))
      << "the kubelet's order, kept";
  EXPECT_EQ(web.devices[1].container, "sidecar");
  EXPECT_THAT(web.devices[1].ids, ElementsAre("0000:03:02.4"));
  EXPECT_EQ((*pods)[1].devices[0].resource, "intel.com/sriov_dpdk");
  auto empty = parseListResponse("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty()) << "a node without pods";
}

TEST(PodResourcesWire, GetAnswersAndRequests) {
  v1::GetPodResourcesResponse get;
  *get.mutable_pod_resources() = twoPods().pod_resources(0);
  auto pod = parseGetResponse(get.SerializeAsString());
  ASSERT_TRUE(pod) << pod.error().message();
  ASSERT_TRUE(*pod);
  EXPECT_EQ((**pod).name, "web-0");
  EXPECT_EQ((**pod).devices.size(), 2u);
  EXPECT_FALSE(*parseGetResponse("")) << "no pod in the answer";

  v1::GetPodResourcesRequest req;
  ASSERT_TRUE(req.ParseFromString(encodeGetRequest("web-0", "default")));
  EXPECT_EQ(req.name(), "web-0");
  EXPECT_EQ(req.namespace_(), "default");
}

TEST(PodResourcesWire, BrokenMessagesAreRefusedSayingWhy) {
  std::string whole = twoPods().SerializeAsString();
  for (size_t cut : {size_t{1}, size_t{5}, whole.size() / 2, whole.size() - 1}) {
    auto r = parseListResponse(std::string_view(whole).substr(0, cut));
    ASSERT_FALSE(r) << "cut at " << cut;
    EXPECT_EQ(r.error().sysErrno(), EPROTO);
    EXPECT_THAT(r.error().message(), HasSubstr("PodResources List answer: protobuf:"));
  }
  EXPECT_THAT(parseListResponse("\x08\x01").error().message(),
              HasSubstr("field 1 has wire type 0"));
  EXPECT_THAT(parseListResponse("\x0b").error().message(), HasSubstr("wire type 3"));
  EXPECT_THAT(parseListResponse(std::string(11, '\xff')).error().message(),
              HasSubstr("varint longer than 10 bytes"));
}

TEST(DeviceCheckpoint, BothFormsOfDeviceIdsAreRead) {
  const char* current = R"({"Data":{"PodDeviceEntries":[
      {"PodUID":"u1","ContainerName":"app","ResourceName":"intel.com/sriov_net_a",
       "DeviceIDs":{"1":["0000:03:02.3"],"0":["0000:03:02.1","0000:03:02.2"]},"AllocResp":"Cg=="},
      {"PodUID":"u2","ContainerName":"app","ResourceName":"intel.com/sriov_net_a",
       "DeviceIDs":{"0":["0000:03:02.5"]},"AllocResp":""},
      {"PodUID":"u1","ContainerName":"app","ResourceName":"intel.com/other",
       "DeviceIDs":{"0":["x"]},"AllocResp":""}],
    "RegisteredDevices":{"intel.com/sriov_net_a":["0000:03:02.1"]}},"Checksum":1234})";
  EXPECT_THAT(*checkpointDevices(current, "u1", "intel.com/sriov_net_a"),
              ElementsAre("0000:03:02.1", "0000:03:02.2", "0000:03:02.3"))
      << "NUMA nodes in order";
  const char* before120 = R"({"Data":{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"app",
      "ResourceName":"intel.com/sriov_net_a","DeviceIDs":["0000:03:02.7"],"AllocResp":""}]},
      "Checksum":1})";
  EXPECT_THAT(*checkpointDevices(before120, "u1", "intel.com/sriov_net_a"),
              ElementsAre("0000:03:02.7"));
  EXPECT_TRUE(
      checkpointDevices(R"({"Data":{"PodDeviceEntries":null},"Checksum":0})", "u1", "r")->empty());
  EXPECT_THAT(checkpointDevices("{", "u1", "r").error().message(), HasSubstr("not JSON"));
  EXPECT_THAT(checkpointDevices(R"({"Data":{}})", "u1", "r").error().message(),
              HasSubstr("no Data.PodDeviceEntries"));
}

class PodDevicesTest : public testing::Test {
 protected:
  KubeletPaths paths() const { return {dir_.path()}; }
  static dp::SimPod web() {
    return {"default",
            "web-0",
            {{"app", "intel.com/sriov_net_a", {"0000:03:02.1", "0000:03:02.0"}},
             {"app", "intel.com/sriov_dpdk", {"0000:04:00.2"}}}};
  }
  test::TempDir dir_;
  PodRef pod_{"default", "web-0", "u1"};
  std::chrono::milliseconds timeout_{2000};
};

TEST_F(PodDevicesTest, GetWhereTheKubeletServesIt) {
  auto sim = dp::PodResourcesSim::start({(dir_.path()).string(), /*serveGet=*/true});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  kubelet.setPods({web(), {"prod", "db-0", {}}});
  auto d = podDevices(pod_, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_TRUE(d) << d.error().msg;
  EXPECT_THAT(d->ids, ElementsAre("0000:03:02.1", "0000:03:02.0"));
  EXPECT_EQ(d->source, "PodResources Get");
  EXPECT_EQ(kubelet.calls(), 1);
}

TEST_F(PodDevicesTest, ListWhereGetIsUnimplementedAsBeforeKubelet127) {
  auto sim = dp::PodResourcesSim::start({(dir_.path()).string(), /*serveGet=*/false});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  kubelet.setPods({{"prod", "db-0", {}}, web()});
  auto d = podDevices(pod_, "intel.com/sriov_dpdk", paths(), timeout_);
  ASSERT_TRUE(d) << d.error().msg;
  EXPECT_THAT(d->ids, ElementsAre("0000:04:00.2"));
  EXPECT_EQ(d->source, "PodResources List");
}

TEST_F(PodDevicesTest, APodWithoutTheResourceIsToldToRequestIt) {
  auto sim = dp::PodResourcesSim::start({(dir_.path()).string(), /*serveGet=*/false});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  kubelet.setPods({web()});
  auto d = podDevices(pod_, "intel.com/sriov_net_b", paths(), timeout_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(d.error().msg,
              AllOf(HasSubstr("pod default/web-0 has no devices of intel.com/sriov_net_b"),
                    HasSubstr("intel.com/sriov_net_a, intel.com/sriov_dpdk"),
                    HasSubstr("add intel.com/sriov_net_b: \"1\" to its resources.limits")));
}

TEST_F(PodDevicesTest, APodTheKubeletDoesNotListIsTryAgainLater) {
  auto sim = dp::PodResourcesSim::start({(dir_.path()).string(), /*serveGet=*/true});
  ASSERT_TRUE(sim) << sim.error().message();
  dp::PodResourcesSim& kubelet = **sim;
  kubelet.setPods({});
  auto d = podDevices(pod_, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kTryAgainLater);
  EXPECT_THAT(d.error().msg, HasSubstr("does not list the pod"));
}

TEST_F(PodDevicesTest, ADeadSocketIsTryAgainLater) {
  // A kubelet that died: its socket file is there, nobody listens on it.
  std::filesystem::create_directories(paths().socket().parent_path());
  {
    Fd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, paths().socket().c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ASSERT_TRUE(std::filesystem::exists(paths().socket()));
  auto d = podDevices(pod_, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kTryAgainLater);
  EXPECT_THAT(d.error().msg, AllOf(HasSubstr("ask the kubelet"), HasSubstr("connect")));
}

TEST_F(PodDevicesTest, TheCheckpointWhereThereIsNoSocket) {
  std::filesystem::create_directories(paths().checkpoint().parent_path());
  std::ofstream(paths().checkpoint())
      << R"({"Data":{"PodDeviceEntries":[{"PodUID":"u1","ContainerName":"app",
      "ResourceName":"intel.com/sriov_net_a","DeviceIDs":{"0":["0000:03:02.6"]}}]},"Checksum":1})";
  auto d = podDevices(pod_, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_TRUE(d) << d.error().msg;
  EXPECT_THAT(d->ids, ElementsAre("0000:03:02.6"));
  EXPECT_EQ(d->source, "the device checkpoint");
  auto noUid = podDevices({"default", "web-0", ""}, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_FALSE(noUid);
  EXPECT_THAT(noUid.error().msg, HasSubstr("no K8S_POD_UID"));
}

TEST_F(PodDevicesTest, NoKubeletStateAtAllNamesTheRootToSet) {
  auto d = podDevices(pod_, "intel.com/sriov_net_a", paths(), timeout_);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(d.error().msg,
              AllOf(HasSubstr("no kubelet state under"), HasSubstr("kubeletRootDir")));
}

TEST(PodFromArgs, NamesWhatIsMissing) {
  Environment env;
  env.args = {{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}};
  auto p = podFromArgs(env, "resourceName");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code, ErrorCode::kInvalidConfig);
  EXPECT_THAT(p.error().msg,
              AllOf(HasSubstr("resourceName needs to know the pod"), HasSubstr("no K8S_POD_NAME")));
  env.args.emplace_back("K8S_POD_NAME", "web-0");
  env.args.emplace_back("K8S_POD_UID", "u1");
  ASSERT_TRUE(podFromArgs(env, "resourceName"));
  EXPECT_EQ(podFromArgs(env, "x")->str(), "default/web-0");
  EXPECT_EQ(podFromArgs(env, "x")->uid, "u1");
}

}  // namespace
}  // namespace vfplane::cni
