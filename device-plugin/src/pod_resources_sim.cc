#include "vfplane/dp/pod_resources_sim.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/file.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "podresources_v1.grpc.pb.h"
#include "vfplane/base/fd.h"
#include "vfplane/base/files.h"

namespace vfplane::dp {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

fs::path podsFile(const std::string& kubeletDir) {
  return fs::path(kubeletDir) / "vfplane-sim" / "pods.json";
}

// {"pods": [{"namespace", "name", "containers": [{"name", "resource", "ids"}]}]}
std::vector<SimPod> readPods(const fs::path& file) {
  std::vector<SimPod> pods;
  auto text = readFile(file);
  if (!text) return pods;
  auto j = Json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("pods") || !j["pods"].is_array()) return pods;
  for (const auto& p : j["pods"]) {
    SimPod pod{p.value("namespace", ""), p.value("name", ""), {}};
    for (const auto& c : p.value("containers", Json::array())) {
      pod.devices.push_back({c.value("name", ""), c.value("resource", ""),
                             c.value("ids", std::vector<std::string>{})});
    }
    pods.push_back(std::move(pod));
  }
  return pods;
}

Json podsJson(const std::vector<SimPod>& pods) {
  Json out = {{"pods", Json::array()}};
  for (const auto& p : pods) {
    Json containers = Json::array();
    for (const auto& d : p.devices)
      containers.push_back({{"name", d.container}, {"resource", d.resource}, {"ids", d.ids}});
    out["pods"].push_back({{"namespace", p.ns}, {"name", p.name}, {"containers", containers}});
  }
  return out;
}

}  // namespace

class PodResourcesSim::Service final : public v1::PodResourcesLister::Service {
 public:
  Service(bool serveGet, std::string kubeletDir)
      : serveGet_(serveGet), kubeletDir_(std::move(kubeletDir)) {}

  grpc::Status List(grpc::ServerContext*, const v1::ListPodResourcesRequest*,
                    v1::ListPodResourcesResponse* out) override {
    ++calls_;
    for (const auto& p : pods()) fill(p, out->add_pod_resources());
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetPodResourcesRequest* in,
                   v1::GetPodResourcesResponse* out) override {
    ++calls_;
    if (!serveGet_)
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "method Get not implemented");
    for (const auto& p : pods()) {
      if (p.name == in->name() && p.ns == in->namespace_()) {
        fill(p, out->mutable_pod_resources());
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND, fmt::format("pod {} in namespace {} not found",
                                                                 in->name(), in->namespace_()));
  }

  void set(std::vector<SimPod> pods) {
    std::lock_guard lock(mu_);
    pods_ = std::move(pods);
  }
  int calls() const { return calls_; }

 private:
  std::vector<SimPod> pods() const {
    std::vector<SimPod> all;
    {
      std::lock_guard lock(mu_);
      all = pods_;
    }
    for (auto& p : readPods(podsFile(kubeletDir_))) all.push_back(std::move(p));
    return all;
  }

  // As the kubelet answers: one ContainerResources per container, with CPU IDs and topology a
  // reader must skip.
  static void fill(const SimPod& p, v1::PodResources* out) {
    out->set_name(p.name);
    out->set_namespace_(p.ns);
    std::map<std::string, v1::ContainerResources*> containers;
    for (const auto& d : p.devices) {
      auto*& c = containers[d.container];
      if (c == nullptr) {
        c = out->add_containers();
        c->set_name(d.container);
        c->add_cpu_ids(0);
      }
      auto* devices = c->add_devices();
      devices->set_resource_name(d.resource);
      for (const auto& id : d.ids) devices->add_device_ids(id);
      devices->mutable_topology()->add_nodes()->set_id(0);
    }
  }

  const bool serveGet_;
  const std::string kubeletDir_;
  mutable std::mutex mu_;
  std::vector<SimPod> pods_;
  std::atomic<int> calls_{0};
};

Result<std::unique_ptr<PodResourcesSim>> PodResourcesSim::start(Options options) {
  std::unique_ptr<PodResourcesSim> s(new PodResourcesSim());
  fs::path dir = fs::path(options.kubeletDir) / "pod-resources";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(fmt::format("create {}: {}", dir.string(), ec.message()), ec.value());
  s->socketPath_ = (dir / "kubelet.sock").string();
  fs::remove(s->socketPath_, ec);
  s->service_ = std::make_unique<Service>(options.serveGet, options.kubeletDir);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + s->socketPath_, grpc::InsecureServerCredentials());
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_) return fail(fmt::format("serve PodResources on {}", s->socketPath_), EADDRINUSE);
  return s;
}

PodResourcesSim::~PodResourcesSim() {
  if (server_) server_->Shutdown();
}

void PodResourcesSim::setPods(std::vector<SimPod> pods) { service_->set(std::move(pods)); }
int PodResourcesSim::calls() const { return service_->calls(); }
std::string PodResourcesSim::socketPath() const { return socketPath_; }

Result<void> recordPodDevices(const std::string& kubeletDir, const SimPod& pod) {
  fs::path file = podsFile(kubeletDir);
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec) return fail(fmt::format("create {}: {}", file.parent_path().string(), ec.message()));
  // One writer at a time: read, add, replace.
  Fd lock(::open((file.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX) != 0)
    return fail(systemError("lock " + file.string(), errno));
  auto pods = readPods(file);
  auto it = std::find_if(pods.begin(), pods.end(),
                         [&](const SimPod& p) { return p.ns == pod.ns && p.name == pod.name; });
  if (it == pods.end()) {
    pods.push_back(pod);
  } else {
    for (const auto& d : pod.devices) it->devices.push_back(d);
  }
  return writeFileAtomic(file, podsJson(pods).dump(2) + "\n", 0644);
}

}  // namespace vfplane::dp
