#include "vfplane/dp/kubelet_sim.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "deviceplugin_v1beta1.grpc.pb.h"
#include "pluginregistration_v1.grpc.pb.h"
#include "proto_devices.h"

namespace vfplane::dp {
namespace fs = std::filesystem;

class KubeletSim::RegistrationService final : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(KubeletSim& owner) : owner_(owner) {}

  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* req,
                        v1beta1::Empty*) override {
    if (req->version() != "v1beta1") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          fmt::format("unsupported device plugin API version {}", req->version()));
    }
    if (!owner_.options_.refuseWith.empty()) {
      owner_.record({SimEvent::kRefused,
                     req->resource_name(),
                     req->endpoint(),
                     {},
                     owner_.options_.refuseWith});
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, owner_.options_.refuseWith);
    }
    std::string socket =
        (fs::path(owner_.options_.kubeletDir) / "device-plugins" / req->endpoint()).string();
    owner_.record({SimEvent::kRegistered, req->resource_name(), socket, {}, ""});
    std::lock_guard lock(owner_.mu_);
    owner_.threads_.emplace_back(
        [this, name = req->resource_name(), socket] { owner_.follow(name, socket); });
    return grpc::Status::OK;
  }

 private:
  KubeletSim& owner_;
};

KubeletSim::KubeletSim(Options options, std::function<void(const SimEvent&)> onEvent)
    : options_(std::move(options)), onEvent_(std::move(onEvent)) {}

Result<std::unique_ptr<KubeletSim>> KubeletSim::start(
    Options options, std::function<void(const SimEvent&)> onEvent) {
  std::unique_ptr<KubeletSim> sim(new KubeletSim(std::move(options), std::move(onEvent)));
  std::error_code ec;
  fs::create_directories(fs::path(sim->options_.kubeletDir) /
                             (sim->options_.pluginWatcher ? "plugins_registry" : "device-plugins"),
                         ec);
  if (ec)
    return fail(
        Error(fmt::format("create {}: {}", sim->options_.kubeletDir, ec.message()), ec.value()));
  if (auto ok = sim->serve(); !ok) return fail(std::move(ok.error()));
  return sim;
}

Result<void> KubeletSim::serve() {
  stopping_ = false;
  if (options_.pluginWatcher) {
    std::lock_guard lock(mu_);
    followed_.clear();
    threads_.emplace_back([this] { watchRegistry(); });
    return {};
  }
  std::string sock = (fs::path(options_.kubeletDir) / "device-plugins/kubelet.sock").string();
  ::unlink(sock.c_str());
  service_ = std::make_unique<RegistrationService>(*this);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + sock, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) return fail(Error("kubelet sim: cannot listen on " + sock, EADDRINUSE));
  return {};
}

// The kubelet's side of one plugin: options first, then the device stream until it ends.
void KubeletSim::follow(const std::string& resource, const std::string& socketPath) {
  auto channel = grpc::CreateChannel("unix:" + socketPath, grpc::InsecureChannelCredentials());
  auto stub = v1beta1::DevicePlugin::NewStub(channel);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1beta1::Empty empty;
    v1beta1::DevicePluginOptions opts;
    if (!stub->GetDevicePluginOptions(&ctx, empty, &opts).ok()) {
      record({SimEvent::kStreamEnded, resource, socketPath, {}, "GetDevicePluginOptions failed"});
      return;
    }
  }
  auto ctx = std::make_shared<grpc::ClientContext>();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    contexts_.push_back(ctx);
  }
  v1beta1::Empty empty;
  auto reader = stub->ListAndWatch(ctx.get(), empty);
  v1beta1::ListAndWatchResponse resp;
  while (reader->Read(&resp)) {
    record({SimEvent::kDevices, resource, socketPath, devicesOf(resp), ""});
  }
  grpc::Status status = reader->Finish();
  record({SimEvent::kStreamEnded, resource, socketPath, {}, status.error_message()});
}

// The plugin watcher: every new socket under plugins_registry is asked GetInfo, told whether it
// is registered, and then followed like a legacy plugin.
void KubeletSim::watchRegistry() {
  fs::path dir = fs::path(options_.kubeletDir) / "plugins_registry";
  while (!stopping_) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (!entry.is_socket(ec)) continue;
      std::string path = entry.path().string();
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) continue;
      {
        std::lock_guard lock(mu_);
        auto it = followed_.find(path);
        // Inodes are reused at once, so the change time tells a new socket from the old one.
        uint64_t identity = st.st_ino ^ (static_cast<uint64_t>(st.st_ctim.tv_sec) << 32) ^
                            static_cast<uint64_t>(st.st_ctim.tv_nsec);
        if (it != followed_.end() && it->second == identity) continue;
        followed_[path] = identity;
      }
      auto channel = grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials());
      auto reg = pluginregistration::Registration::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      pluginregistration::InfoRequest infoReq;
      pluginregistration::PluginInfo info;
      if (!reg->GetInfo(&ctx, infoReq, &info).ok() || info.type() != "DevicePlugin") continue;
      pluginregistration::RegistrationStatus status;
      status.set_plugin_registered(options_.refuseWith.empty());
      status.set_error(options_.refuseWith);
      grpc::ClientContext notifyCtx;
      notifyCtx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      pluginregistration::RegistrationStatusResponse notifyResp;
      (void)reg->NotifyRegistrationStatus(&notifyCtx, status, &notifyResp);
      if (!options_.refuseWith.empty()) {
        record({SimEvent::kRefused, info.name(), path, {}, options_.refuseWith});
        continue;
      }
      record({SimEvent::kRegistered, info.name(), path, {}, ""});
      std::string endpoint = info.endpoint().empty() ? path : info.endpoint();
      std::lock_guard lock(mu_);
      threads_.emplace_back([this, name = info.name(), endpoint] { follow(name, endpoint); });
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(50), [&] { return stopping_.load(); });
  }
}

void KubeletSim::record(SimEvent event) {
  {
    std::lock_guard lock(mu_);
    switch (event.kind) {
      case SimEvent::kRegistered:
        ++registrations_[event.resource];
        endpoints_[event.resource] = event.endpoint;
        break;
      case SimEvent::kDevices:
        devices_[event.resource] = event.devices;
        ++updates_[event.resource];
        break;
      default:
        break;
    }
  }
  cv_.notify_all();
  if (onEvent_) onEvent_(event);
}

bool KubeletSim::waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  // Woken by every event; the short slices also catch conditions outside the sim (daemon
  // counters, files).
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lock(mu_);
  for (;;) {
    lock.unlock();
    bool ok = pred();
    lock.lock();
    if (ok) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
}

std::optional<std::vector<SimDevice>> KubeletSim::devices(const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto it = devices_.find(resource);
  if (it == devices_.end()) return std::nullopt;
  return it->second;
}

int KubeletSim::updates(const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto it = updates_.find(resource);
  return it == updates_.end() ? 0 : it->second;
}

int KubeletSim::registrations(const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto it = registrations_.find(resource);
  return it == registrations_.end() ? 0 : it->second;
}

std::string KubeletSim::endpoint(const std::string& resource) const {
  std::lock_guard lock(mu_);
  auto it = endpoints_.find(resource);
  return it == endpoints_.end() ? "" : it->second;
}

Result<void> KubeletSim::restart() {
  stop();
  return serve();
}

void KubeletSim::stop() {
  stopping_ = true;
  cv_.notify_all();
  if (server_) {
    // First: no new Register calls, so no new follower threads from there.
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
    ::unlink((fs::path(options_.kubeletDir) / "device-plugins/kubelet.sock").c_str());
  }
  // Followers check stopping_ before they open a stream, so this loop ends.
  for (;;) {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      for (auto& c : contexts_) c->TryCancel();
      contexts_.clear();
      threads.swap(threads_);
    }
    if (threads.empty()) break;
    for (auto& t : threads) t.join();
  }
}

KubeletSim::~KubeletSim() { stop(); }

}  // namespace vfplane::dp
