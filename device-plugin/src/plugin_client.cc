#include "vfplane/dp/plugin_client.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "deviceplugin_v1beta1.grpc.pb.h"
#include "proto_devices.h"

namespace vfplane::dp {
namespace {

constexpr auto kDeadline = std::chrono::seconds(10);

template <class Message>
std::string toJson(const Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

Error rpcError(const std::string& what, const std::string& socket, const grpc::Status& s) {
  return Error(fmt::format("{} on {}: {} ({})", what, socket, s.error_message(),
                           static_cast<int>(s.error_code())),
               s.error_code() == grpc::StatusCode::UNAVAILABLE ? ECONNREFUSED : EIO);
}

}  // namespace

struct PluginClient::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub;
  void deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + kDeadline);
  }
};

PluginClient::PluginClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PluginClient::~PluginClient() = default;
PluginClient::PluginClient(PluginClient&&) noexcept = default;

Result<PluginClient> PluginClient::connect(const std::string& socketPath) {
  std::error_code ec;
  if (!std::filesystem::is_socket(socketPath, ec)) {
    return fail(
        Error(fmt::format("{}: not a socket (is the plugin running?)", socketPath), ENOENT));
  }
  auto impl = std::make_unique<Impl>();
  impl->channel = grpc::CreateChannel("unix:" + socketPath, grpc::InsecureChannelCredentials());
  impl->stub = v1beta1::DevicePlugin::NewStub(impl->channel);
  PluginClient client(std::move(impl));
  client.socketPath_ = socketPath;
  return client;
}

Result<std::string> PluginClient::allocate(const std::vector<std::string>& ids) {
  v1beta1::AllocateRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : ids) c->add_devices_ids(id);
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  impl_->deadline(ctx);
  auto status = impl_->stub->Allocate(&ctx, req, &resp);
  if (!status.ok()) return fail(rpcError("Allocate", socketPath_, status));
  return toJson(resp);
}

Result<std::string> PluginClient::preferred(const std::vector<std::string>& available,
                                            const std::vector<std::string>& mustInclude, int size) {
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const auto& id : available) c->add_available_deviceids(id);
  for (const auto& id : mustInclude) c->add_must_include_deviceids(id);
  c->set_allocation_size(size);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ClientContext ctx;
  impl_->deadline(ctx);
  auto status = impl_->stub->GetPreferredAllocation(&ctx, req, &resp);
  if (!status.ok()) return fail(rpcError("GetPreferredAllocation", socketPath_, status));
  return toJson(resp);
}

Result<std::vector<SimDevice>> PluginClient::list() {
  grpc::ClientContext ctx;
  impl_->deadline(ctx);
  v1beta1::Empty empty;
  auto reader = impl_->stub->ListAndWatch(&ctx, empty);
  v1beta1::ListAndWatchResponse resp;
  if (!reader->Read(&resp)) {
    ctx.TryCancel();
    return fail(rpcError("ListAndWatch", socketPath_, reader->Finish()));
  }
  ctx.TryCancel();
  return devicesOf(resp);
}

Result<std::string> PluginClient::options() {
  grpc::ClientContext ctx;
  impl_->deadline(ctx);
  v1beta1::Empty empty;
  v1beta1::DevicePluginOptions resp;
  auto status = impl_->stub->GetDevicePluginOptions(&ctx, empty, &resp);
  if (!status.ok()) return fail(rpcError("GetDevicePluginOptions", socketPath_, status));
  return toJson(resp);
}

}  // namespace vfplane::dp
