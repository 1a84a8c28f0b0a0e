#include "fake_pod_resources.h"

#include <grpcpp/grpcpp.h>

#include <atomic>

#include "podresources_v1.grpc.pb.h"

namespace vfplane::test {

class FakePodResources::Service final : public v1::PodResourcesLister::Service {
 public:
  explicit Service(bool serveGet) : serveGet_(serveGet) {}

  grpc::Status List(grpc::ServerContext*, const v1::ListPodResourcesRequest*,
                    v1::ListPodResourcesResponse* out) override {
    ++calls_;
    std::lock_guard lock(mu_);
    for (const auto& p : pods_) fill(p, out->add_pod_resources());
    return grpc::Status::OK;
  }

  grpc::Status Get(grpc::ServerContext*, const v1::GetPodResourcesRequest* in,
                   v1::GetPodResourcesResponse* out) override {
    ++calls_;
    if (!serveGet_)
      return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "method Get not implemented");
    std::lock_guard lock(mu_);
    for (const auto& p : pods_) {
      if (p.name == in->name() && p.ns == in->namespace_()) {
        fill(p, out->mutable_pod_resources());
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "pod " + in->name() + " in namespace " + in->namespace_() + " not found");
  }

  void set(std::vector<cni::PodResources> pods) {
    std::lock_guard lock(mu_);
    pods_ = std::move(pods);
  }
  int calls() const { return calls_; }

 private:
  // As the kubelet answers: one ContainerResources per container, with a CPU list and topology
  // the CNI must skip.
  static void fill(const cni::PodResources& p, v1::PodResources* out) {
    out->set_name(p.name);
    out->set_namespace_(p.ns);
    std::map<std::string, v1::ContainerResources*> containers;
    for (const auto& d : p.devices) {
      auto*& c = containers[d.container];
      if (c == nullptr) {
        c = out->add_containers();
        c->set_name(d.container);
        c->add_cpu_ids(3);
      }
      auto* devices = c->add_devices();
      devices->set_resource_name(d.resource);
      for (const auto& id : d.ids) devices->add_device_ids(id);
      devices->mutable_topology()->add_nodes()->set_id(0);
    }
  }

  const bool serveGet_;
  mutable std::mutex mu_;
  std::vector<cni::PodResources> pods_;
  std::atomic<int> calls_{0};
};

FakePodResources::FakePodResources(const std::filesystem::path& kubeletRoot, bool serveGet)
    : service_(std::make_unique<Service>(serveGet)) {
  std::filesystem::create_directories(kubeletRoot / "pod-resources");
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + (kubeletRoot / "pod-resources" / "kubelet.sock").string(),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
}

FakePodResources::~FakePodResources() {
  if (server_) server_->Shutdown();
}

void FakePodResources::setPods(std::vector<cni::PodResources> pods) {
  service_->set(std::move(pods));
}

int FakePodResources::calls() const { return service_->calls(); }

}  // namespace vfplane::test
