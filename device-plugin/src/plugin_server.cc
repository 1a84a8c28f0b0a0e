#include "vfplane/dp/plugin_server.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "deviceplugin_v1beta1.grpc.pb.h"
#include "pluginregistration_v1.grpc.pb.h"
#include "vfplane/base/files.h"
#include "vfplane/dp/allocation.h"

namespace vfplane::dp {
namespace {

namespace fs = std::filesystem;
constexpr const char* kApiVersion = "v1beta1";
constexpr auto kStreamRecheck = std::chrono::milliseconds(500);

v1beta1::ListAndWatchResponse toProto(const PoolSnapshot& snap) {
  v1beta1::ListAndWatchResponse resp;
  for (const auto& d : snap.pool.devices) {
    auto* dev = resp.add_devices();
    dev->set_id(d.id);
    dev->set_health(snap.isHealthy(d.id) ? "Healthy" : "Unhealthy");
    if (!snap.pool.config.excludeTopology && d.numaNode()) {
      dev->mutable_topology()->add_nodes()->set_id(*d.numaNode());
    }
  }
  return resp;
}

}  // namespace

RegistrationMode detectRegistrationMode(const std::string& kubeletDir) {
  std::error_code ec;
  return fs::is_directory(fs::path(kubeletDir) / "plugins_registry", ec)
             ? RegistrationMode::kPluginWatcher
             : RegistrationMode::kLegacy;
}

std::string socketNameFor(const std::string& resourceName) {
  std::string name = resourceName;
  std::replace(name.begin(), name.end(), '/', '_');
  return name + ".sock";
}

// Allocate and GetPreferredAllocation run on gRPC's callback API: they answer on the thread
// that read the request, without the hand-off to a worker thread that the synchronous API makes.
// That hand-off was a third of an Allocate round trip here. ListAndWatch blocks, so it stays
// synchronous.
using ServiceBase = v1beta1::DevicePlugin::WithCallbackMethod_Allocate<
    v1beta1::DevicePlugin::WithCallbackMethod_GetPreferredAllocation<
        v1beta1::DevicePlugin::Service>>;

class PluginServer::Service final : public ServiceBase {
 public:
  explicit Service(PluginServer& owner) : owner_(owner) {}

  grpc::Status GetDevicePluginOptions(grpc::ServerContext*, const v1beta1::Empty*,
                                      v1beta1::DevicePluginOptions* options) override {
    options->set_pre_start_required(false);
    options->set_get_preferred_allocation_available(true);
    return grpc::Status::OK;
  }

  grpc::Status ListAndWatch(grpc::ServerContext* ctx, const v1beta1::Empty*,
                            grpc::ServerWriter<v1beta1::ListAndWatchResponse>* writer) override {
    uint64_t sent = 0;
    auto& state = *owner_.state_;
    while (!owner_.stopping_.load() && !ctx->IsCancelled()) {
      auto snap = state.snapshot();
      if (snap->version != sent) {
        if (!writer->Write(toProto(*snap))) break;
        sent = snap->version;
      }
      state.waitForChange(sent, kStreamRecheck, owner_.stopping_);
    }
    return grpc::Status::OK;
  }

  grpc::ServerUnaryReactor* GetPreferredAllocation(
      grpc::CallbackServerContext* ctx, const v1beta1::PreferredAllocationRequest* req,
      v1beta1::PreferredAllocationResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(preferred(req, resp));
    return reactor;
  }

  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* ctx,
                                     const v1beta1::AllocateRequest* req,
                                     v1beta1::AllocateResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(allocate(req, resp));
    return reactor;
  }

  grpc::Status PreStartContainer(grpc::ServerContext*, const v1beta1::PreStartContainerRequest*,
                                 v1beta1::PreStartContainerResponse*) override {
    return grpc::Status::OK;
  }

 private:
  grpc::Status preferred(const v1beta1::PreferredAllocationRequest* req,
                         v1beta1::PreferredAllocationResponse* resp) {
    auto snap = owner_.state_->snapshot();
    for (const auto& c : req->container_requests()) {
      PreferredRequest pr{{c.available_deviceids().begin(), c.available_deviceids().end()},
                          {c.must_include_deviceids().begin(), c.must_include_deviceids().end()},
                          c.allocation_size()};
      auto* out = resp->add_container_responses();
      for (auto& id : preferredAllocation(snap->pool, pr)) out->add_deviceids(std::move(id));
    }
    return grpc::Status::OK;
  }

  grpc::Status allocate(const v1beta1::AllocateRequest* req, v1beta1::AllocateResponse* resp) {
    auto snap = owner_.state_->snapshot();
    for (const auto& c : req->container_requests()) {
      std::vector<std::string> ids(c.devices_ids().begin(), c.devices_ids().end());
      auto alloc = allocateDevices(
          snap->pool, ids, [&](const PoolDevice& d) { return snap->isHealthy(d.id); },
          owner_.options_.devinfoDir, owner_.options_.useCdi);
      if (!alloc) {
        spdlog::warn("{}", alloc.error().message());
        if (owner_.events_.onAllocate) owner_.events_.onAllocate(owner_.resourceName_, false);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, alloc.error().message());
      }
      auto* out = resp->add_container_responses();
      for (const auto& [k, v] : alloc->envs) (*out->mutable_envs())[k] = v;
      for (const auto& [k, v] : alloc->annotations) (*out->mutable_annotations())[k] = v;
      for (const auto& spec : alloc->devices) {
        auto* d = out->add_devices();
        d->set_container_path(spec.containerPath);
        d->set_host_path(spec.hostPath);
        d->set_permissions(spec.permissions);
      }
      for (const auto& file : alloc->deviceInfoFiles) {
        // As upstream: a device-info file that cannot be written is logged, not fatal to the pod.
        if (auto ok = writeFileIfChanged(file.path, file.content); !ok) {
          spdlog::error("{}: device-info file: {}", owner_.resourceName_, ok.error().message());
        }
      }
      owner_.state_->markAllocated(ids);
      spdlog::info("{}: allocated {}", owner_.resourceName_, fmt::join(ids, ","));
    }
    if (owner_.events_.onAllocate) owner_.events_.onAllocate(owner_.resourceName_, true);
    return grpc::Status::OK;
  }

  PluginServer& owner_;
};

class PluginServer::WatcherService final : public pluginregistration::Registration::Service {
 public:
  explicit WatcherService(PluginServer& owner) : owner_(owner) {}

  grpc::Status GetInfo(grpc::ServerContext*, const pluginregistration::InfoRequest*,
                       pluginregistration::PluginInfo* info) override {
    info->set_type("DevicePlugin");
    info->set_name(owner_.resourceName_);
    // Empty: the kubelet then talks DevicePlugin on this same socket.
    info->set_endpoint("");
    info->add_supported_versions(kApiVersion);
    return grpc::Status::OK;
  }

  grpc::Status NotifyRegistrationStatus(grpc::ServerContext*,
                                        const pluginregistration::RegistrationStatus* status,
                                        pluginregistration::RegistrationStatusResponse*) override {
    owner_.registered_ = status->plugin_registered();
    owner_.registrationFailed_ = !status->plugin_registered();
    if (status->plugin_registered()) {
      spdlog::info("{}: registered with the kubelet (plugin watcher)", owner_.resourceName_);
    } else {
      spdlog::error("{}: the kubelet refused the registration: {}", owner_.resourceName_,
                    status->error());
    }
    if (owner_.events_.onRegistration) {
      owner_.events_.onRegistration(owner_.resourceName_, status->plugin_registered(),
                                    status->error());
    }
    return grpc::Status::OK;
  }

 private:
  PluginServer& owner_;
};

PluginServer::PluginServer(std::shared_ptr<PoolState> state, PluginServerOptions options,
                           PluginServerEvents events)
    : state_(std::move(state)), options_(std::move(options)), events_(std::move(events)) {
  resourceName_ = state_->name();
  fs::path dir =
      fs::path(options_.kubeletDir) /
      (options_.mode == RegistrationMode::kPluginWatcher ? "plugins_registry" : "device-plugins");
  socketPath_ = (dir / socketNameFor(resourceName_)).string();
}

PluginServer::~PluginServer() { stop(); }

Result<void> PluginServer::start() {
  if (server_) return {};
  std::error_code ec;
  fs::path dir = fs::path(socketPath_).parent_path();
  if (!fs::is_directory(dir, ec)) {
    return fail(Error(fmt::format("{}: serve {}: {} does not exist (is --kubelet-dir right?)",
                                  resourceName_, socketPath_, dir.string()),
                      ENOENT));
  }
  // A socket left by an earlier run would make bind() fail.
  if (::unlink(socketPath_.c_str()) != 0 && errno != ENOENT) {
    return fail(
        systemError(fmt::format("{}: remove stale socket {}", resourceName_, socketPath_), errno));
  }
  stopping_ = false;
  registered_ = false;
  registrationFailed_ = false;
  service_ = std::make_unique<Service>(*this);
  grpc::ServerBuilder builder;
  // The kubelet is the only client: one completion queue and few pollers per resource keep
  // threads (and their memory) down on nodes with many resources.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 2);
  builder.AddListeningPort("unix:" + socketPath_, grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  if (options_.mode == RegistrationMode::kPluginWatcher) {
    watcherService_ = std::make_unique<WatcherService>(*this);
    builder.RegisterService(watcherService_.get());
  }
  server_ = builder.BuildAndStart();
  if (!server_) {
    return fail(
        Error(fmt::format("{}: cannot listen on {}", resourceName_, socketPath_), EADDRINUSE));
  }
  return {};
}

Result<void> PluginServer::registerWithKubelet() {
  if (options_.mode == RegistrationMode::kPluginWatcher) return {};
  std::string kubeletSock =
      (fs::path(options_.kubeletDir) / "device-plugins/kubelet.sock").string();
  auto channel = grpc::CreateChannel("unix:" + kubeletSock, grpc::InsecureChannelCredentials());
  auto stub = v1beta1::Registration::NewStub(channel);
  v1beta1::RegisterRequest req;
  req.set_version(kApiVersion);
  req.set_endpoint(fs::path(socketPath_).filename().string());
  req.set_resource_name(resourceName_);
  req.mutable_options()->set_pre_start_required(false);
  req.mutable_options()->set_get_preferred_allocation_available(true);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1beta1::Empty empty;
  grpc::Status status = stub->Register(&ctx, req, &empty);
  bool ok = status.ok();
  if (events_.onRegistration) events_.onRegistration(resourceName_, ok, status.error_message());
  if (!ok) {
    return fail(Error(fmt::format("{}: register with the kubelet at {}: {}", resourceName_,
                                  kubeletSock, status.error_message()),
                      status.error_code() == grpc::StatusCode::UNAVAILABLE ? EAGAIN : EIO));
  }
  registered_ = true;
  return {};
}

void PluginServer::stop() {
  if (!server_) return;
  stopping_ = true;
  state_->wake();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
  service_.reset();
  watcherService_.reset();
  ::unlink(socketPath_.c_str());
}

}  // namespace vfplane::dp
