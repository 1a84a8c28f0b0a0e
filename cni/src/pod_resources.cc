#include "vfplane/cni/pod_resources.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "vfplane/base/fd.h"
#include "vfplane/base/files.h"

namespace vfplane::cni {
namespace {

// ---- protobuf wire format -------------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };

// Reads one message's fields in order; every read checks the bounds.
class WireReader {
 public:
  explicit WireReader(std::string_view bytes) : s_(bytes) {}
  bool done() const { return at_ == s_.size(); }

  Result<uint64_t> varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at_ == s_.size()) return fail("protobuf: a varint runs past the end", EPROTO);
      auto b = static_cast<uint8_t>(s_[at_++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail("protobuf: a varint longer than 10 bytes", EPROTO);
  }
  // The next field's number and wire type.
  Result<std::pair<uint32_t, uint32_t>> tag() {
    auto t = varint();
    if (!t) return fail(std::move(t.error()));
    auto field = static_cast<uint32_t>(*t >> 3);
    if (field == 0 || *t >> 32 != 0)
      return fail("protobuf: field number 0 or out of range", EPROTO);
    return std::pair{field, static_cast<uint32_t>(*t & 7)};
  }
  Result<std::string_view> bytes() {
    auto n = varint();
    if (!n) return fail(std::move(n.error()));
    if (*n > s_.size() - at_) return fail("protobuf: a field runs past the end", EPROTO);
    std::string_view v = s_.substr(at_, static_cast<size_t>(*n));
    at_ += static_cast<size_t>(*n);
    return v;
  }
  // A field of `type` this reader does not want.
  Result<void> skip(uint32_t type) {
    size_t n = 0;
    switch (type) {
      case kVarint:
        if (auto v = varint(); !v) return fail(std::move(v.error()));
        return {};
      case kLength:
        if (auto v = bytes(); !v) return fail(std::move(v.error()));
        return {};
      case kFixed64:
        n = 8;
        break;
      case kFixed32:
        n = 4;
        break;
      default:
        return fail(fmt::format("protobuf: wire type {} (groups are not used here)", type), EPROTO);
    }
    if (n > s_.size() - at_) return fail("protobuf: a fixed field runs past the end", EPROTO);
    at_ += n;
    return {};
  }

 private:
  std::string_view s_;
  size_t at_ = 0;
};

// Calls on(field, value) for every length-delimited field and skips the others; a field this
// schema declares as a string or message but that comes with another wire type is an error.
template <typename F>
Result<void> eachLengthField(std::string_view message, std::initializer_list<uint32_t> wanted,
                             F&& on) {
  WireReader r(message);
  while (!r.done()) {
    auto t = r.tag();
    if (!t) return fail(std::move(t.error()));
    auto [field, type] = *t;
    bool want = std::find(wanted.begin(), wanted.end(), field) != wanted.end();
    if (!want) {
      VFP_TRY(r.skip(type));
      continue;
    }
    if (type != kLength)
      return fail(fmt::format("protobuf: field {} has wire type {}, not 2", field, type), EPROTO);
    auto v = r.bytes();
    if (!v) return fail(std::move(v.error()));
    VFP_TRY(on(field, *v));
  }
  return {};
}

// ContainerDevices{resource_name = 1, device_ids = 2}.
Result<void> parseContainerDevices(std::string_view m, ContainerDevices& out) {
  return eachLengthField(m, {1, 2}, [&](uint32_t field, std::string_view v) -> Result<void> {
    if (field == 1) out.resource = std::string(v);
    if (field == 2) out.ids.emplace_back(v);
    return {};
  });
}

// ContainerResources{name = 1, devices = 2}: devices may come before the name.
Result<void> parseContainer(std::string_view m, PodResources& pod) {
  std::string name;
  std::vector<ContainerDevices> devices;
  auto ok = eachLengthField(m, {1, 2}, [&](uint32_t field, std::string_view v) -> Result<void> {
    if (field == 1) {
      name = std::string(v);
      return {};
    }
    ContainerDevices d;
    VFP_TRY(parseContainerDevices(v, d));
    devices.push_back(std::move(d));
    return {};
  });
  if (!ok) return ok;
  for (auto& d : devices) {
    d.container = name;
    pod.devices.push_back(std::move(d));
  }
  return {};
}

// PodResources{name = 1, namespace = 2, containers = 3}.
Result<PodResources> parsePod(std::string_view m) {
  PodResources pod;
  auto ok = eachLengthField(m, {1, 2, 3}, [&](uint32_t field, std::string_view v) -> Result<void> {
    if (field == 1) pod.name = std::string(v);
    if (field == 2) pod.ns = std::string(v);
    if (field == 3) return parseContainer(v, pod);
    return {};
  });
  if (!ok) return fail(std::move(ok.error()));
  return pod;
}

void putVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void putString(std::string& out, uint32_t field, std::string_view s) {
  if (s.empty()) return;  // proto3: the default is not written
  putVarint(out, field << 3 | kLength);
  putVarint(out, s.size());
  out.append(s);
}

}  // namespace

Result<std::vector<PodResources>> parseListResponse(std::string_view message) {
  std::vector<PodResources> pods;
  auto ok = eachLengthField(message, {1}, [&](uint32_t, std::string_view v) -> Result<void> {
    auto pod = parsePod(v);
    if (!pod) return fail(std::move(pod.error()));
    pods.push_back(std::move(*pod));
    return {};
  });
  if (!ok) return fail(std::move(ok.error()).withContext("PodResources List answer"));
  return pods;
}

Result<std::optional<PodResources>> parseGetResponse(std::string_view message) {
  // A message field given more than once is merged, as protobuf does: the same as parsing the
  // concatenation of its payloads.
  std::optional<std::string> merged;
  auto ok = eachLengthField(message, {1}, [&](uint32_t, std::string_view v) -> Result<void> {
    merged = merged.value_or("") + std::string(v);
    return {};
  });
  if (!ok) return fail(std::move(ok.error()).withContext("PodResources Get answer"));
  if (!merged) return std::optional<PodResources>();
  auto pod = parsePod(*merged);
  if (!pod) return fail(std::move(pod.error()).withContext("PodResources Get answer"));
  return std::optional<PodResources>(std::move(*pod));
}

std::string encodeGetRequest(std::string_view name, std::string_view ns) {
  std::string out;
  putString(out, 1, name);
  putString(out, 2, ns);
  return out;
}

Result<std::vector<std::string>> checkpointDevices(std::string_view json, std::string_view podUid,
                                                   std::string_view resource) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("the device checkpoint is not JSON", EPROTO);
  const auto* data = j.contains("Data") && j["Data"].is_object() ? &j["Data"] : nullptr;
  if (data == nullptr || !data->contains("PodDeviceEntries"))
    return fail("the device checkpoint has no Data.PodDeviceEntries", EPROTO);
  const auto& entries = (*data)["PodDeviceEntries"];
  if (entries.is_null()) return std::vector<std::string>{};  // a node with no allocations
  if (!entries.is_array()) return fail("Data.PodDeviceEntries is not a list", EPROTO);
  std::vector<std::string> ids;
  auto take = [&](const nlohmann::json& list) -> Result<void> {
    if (list.is_null()) return {};
    if (!list.is_array()) return fail("DeviceIDs holds something other than lists", EPROTO);
    for (const auto& id : list) {
      if (!id.is_string()) return fail("a device ID in the checkpoint is not a string", EPROTO);
      ids.push_back(id.get<std::string>());
    }
    return {};
  };
  for (const auto& e : entries) {
    if (!e.is_object()) return fail("a PodDeviceEntries item is not an object", EPROTO);
    auto str = [&](const char* key) {
      auto it = e.find(key);
      return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (str("PodUID") != podUid || str("ResourceName") != resource) continue;
    auto it = e.find("DeviceIDs");
    if (it == e.end()) continue;
    if (it->is_object()) {
      // NUMA node -> IDs; nlohmann's object iterates in key order, so the answer is stable.
      for (const auto& [numa, list] : it->items()) VFP_TRY(take(list));
    } else {
      VFP_TRY(take(*it));
    }
  }
  return ids;
}

// ---- gRPC over nghttp2 ----------------------------------------------------------------------

namespace {

struct Call {
  int fd = -1;
  int32_t stream = -1;
  std::string request;  // framed
  size_t sent = 0;
  std::string data;  // framed response
  std::optional<int> grpcStatus;
  std::string grpcMessage;
  std::string httpStatus;
  bool closed = false;
  uint32_t closeCode = 0;
  bool tooLarge = false;
};

constexpr size_t kMaxResponse = 64u << 20;

nghttp2_nv header(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

std::string percentDecode(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) << 4 | hex(s[i + 2])));
      i += 2;
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

ssize_t sendCallback(nghttp2_session*, const uint8_t* data, size_t length, int, void* user) {
  auto* call = static_cast<Call*>(user);
  ssize_t n = ::send(call->fd, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return NGHTTP2_ERR_WOULDBLOCK;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return n;
}

ssize_t readRequest(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                    nghttp2_data_source*, void* user) {
  auto* call = static_cast<Call*>(user);
  size_t n = std::min(length, call->request.size() - call->sent);
  std::memcpy(buf, call->request.data() + call->sent, n);
  call->sent += n;
  if (call->sent == call->request.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
             const uint8_t* value, size_t valuelen, uint8_t, void* user) {
  auto* call = static_cast<Call*>(user);
  if (frame->hd.stream_id != call->stream) return 0;
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") call->httpStatus = std::string(v);
  if (n == "grpc-status") {
    int status = 0;
    for (char c : v) status = c >= '0' && c <= '9' ? status * 10 + (c - '0') : -1;
    call->grpcStatus = status;
  }
  if (n == "grpc-message") call->grpcMessage = percentDecode(v);
  return 0;
}

int onData(nghttp2_session*, uint8_t, int32_t stream, const uint8_t* data, size_t len, void* user) {
  auto* call = static_cast<Call*>(user);
  if (stream != call->stream) return 0;
  if (call->data.size() + len > kMaxResponse) {
    call->tooLarge = true;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  call->data.append(reinterpret_cast<const char*>(data), len);
  return 0;
}

int onClose(nghttp2_session*, int32_t stream, uint32_t code, void* user) {
  auto* call = static_cast<Call*>(user);
  if (stream == call->stream) {
    call->closed = true;
    call->closeCode = code;
  }
  return 0;
}

struct SessionDeleter {
  void operator()(nghttp2_session* s) const { nghttp2_session_del(s); }
};

}  // namespace

Result<GrpcReply> grpcUnaryCall(const std::filesystem::path& socket, std::string_view path,
                                std::string_view request, std::chrono::milliseconds timeout) {
  const std::string what = fmt::format("gRPC {} on {}", path, socket.string());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof addr.sun_path)
    return fail(fmt::format("{}: the socket path is too long", what), ENAMETOOLONG);
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fail(systemError(what + ": socket", errno));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return fail(systemError(what + ": connect", errno));

  Call call;
  call.fd = fd.get();
  call.request.reserve(5 + request.size());
  call.request.push_back(0);  // not compressed
  for (int shift = 24; shift >= 0; shift -= 8)
    call.request.push_back(static_cast<char>(request.size() >> shift & 0xff));
  call.request.append(request);

  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return fail(what + ": out of memory", ENOMEM);
  nghttp2_session_callbacks_set_send_callback(cbs, sendCallback);
  nghttp2_session_callbacks_set_on_header_callback(cbs, onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, onData);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, onClose);
  nghttp2_session* raw = nullptr;
  int rc = nghttp2_session_client_new(&raw, cbs, &call);
  nghttp2_session_callbacks_del(cbs);
  if (rc != 0) return fail(fmt::format("{}: {}", what, nghttp2_strerror(rc)), ENOMEM);
  std::unique_ptr<nghttp2_session, SessionDeleter> session(raw);

  // A window as large as the largest answer accepted, so the server never waits for updates.
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(kMaxResponse)},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  nghttp2_submit_settings(session.get(), NGHTTP2_FLAG_NONE, settings, 2);
  nghttp2_session_set_local_window_size(session.get(), NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(kMaxResponse));
  std::string p(path);
  nghttp2_nv headers[] = {header(":method", "POST"),
                          header(":scheme", "http"),
                          header(":authority", "localhost"),
                          header(":path", p),
                          header("content-type", "application/grpc"),
                          header("te", "trailers")};
  nghttp2_data_provider body{};
  body.read_callback = readRequest;
  call.stream =
      nghttp2_submit_request(session.get(), nullptr, headers, std::size(headers), &body, nullptr);
  if (call.stream < 0)
    return fail(fmt::format("{}: {}", what, nghttp2_strerror(call.stream)), EPROTO);

  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (!call.closed) {
    if (int s = nghttp2_session_send(session.get()); s != 0)
      return fail(fmt::format("{}: send: {}", what, nghttp2_strerror(s)), EPIPE);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return fail(fmt::format("{}: no answer within {} ms", what, timeout.count()), ETIMEDOUT);
    pollfd pfd{fd.get(), POLLIN, 0};
    if (nghttp2_session_want_write(session.get())) pfd.events |= POLLOUT;
    int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return fail(systemError(what + ": poll", errno));
    if (n <= 0 || (pfd.revents & POLLIN) == 0) {
      if (pfd.revents & (POLLHUP | POLLERR))
        return fail(what + ": the kubelet closed the connection", ECONNRESET);
      continue;
    }
    ssize_t got = ::recv(fd.get(), buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return fail(systemError(what + ": recv", errno));
    if (got == 0) return fail(what + ": the kubelet closed the connection", ECONNRESET);
    ssize_t used = nghttp2_session_mem_recv(session.get(), reinterpret_cast<uint8_t*>(buf),
                                            static_cast<size_t>(got));
    if (call.tooLarge)
      return fail(fmt::format("{}: an answer over {} MB", what, kMaxResponse >> 20), EMSGSIZE);
    if (used < 0)
      return fail(fmt::format("{}: {}", what, nghttp2_strerror(static_cast<int>(used))), EPROTO);
  }
  if (call.closeCode != 0 && !call.grpcStatus) {
    return fail(
        fmt::format("{}: the stream was reset ({})", what, nghttp2_http2_strerror(call.closeCode)),
        EPROTO);
  }
  if (!call.grpcStatus) {
    return fail(fmt::format("{}: no grpc-status in the answer (HTTP status {})", what,
                            call.httpStatus.empty() ? "none" : call.httpStatus),
                EPROTO);
  }
  GrpcReply reply{*call.grpcStatus, call.grpcMessage, {}};
  if (reply.status != 0) return reply;
  if (call.data.size() < 5) return fail(what + ": an OK answer without a message", EPROTO);
  if (call.data[0] != 0) return fail(what + ": a compressed answer (none was offered)", EPROTO);
  size_t len = 0;
  for (int i = 1; i <= 4; ++i)
    len = len << 8 | static_cast<uint8_t>(call.data[static_cast<size_t>(i)]);
  if (len != call.data.size() - 5)
    return fail(fmt::format("{}: the answer's length {} is not its {} bytes", what, len,
                            call.data.size() - 5),
                EPROTO);
  reply.body = call.data.substr(5);
  return reply;
}

}  // namespace vfplane::cni

// ---- a pod's devices ------------------------------------------------------------------------

namespace vfplane::cni {

CniExpected<PodRef> podFromArgs(const Environment& env, std::string_view why) {
  PodRef pod{env.arg("K8S_POD_NAMESPACE").value_or(""), env.arg("K8S_POD_NAME").value_or(""),
             env.arg("K8S_POD_UID").value_or("")};
  std::vector<std::string> missing;
  if (pod.ns.empty()) missing.emplace_back("K8S_POD_NAMESPACE");
  if (pod.name.empty()) missing.emplace_back("K8S_POD_NAME");
  if (!missing.empty()) {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("{} needs to know the pod, but CNI_ARGS has no {} (Multus and the "
                               "CRI runtimes set K8S_POD_NAMESPACE and K8S_POD_NAME)",
                               why, fmt::join(missing, " or ")));
  }
  return pod;
}

namespace {

std::vector<std::string> idsOf(const PodResources& pod, const std::string& resource,
                               std::vector<std::string>* others) {
  std::vector<std::string> ids;
  for (const auto& d : pod.devices) {
    if (d.resource == resource) {
      ids.insert(ids.end(), d.ids.begin(), d.ids.end());
    } else if (others && std::find(others->begin(), others->end(), d.resource) == others->end()) {
      others->push_back(d.resource);
    }
  }
  return ids;
}

}  // namespace

CniExpected<PodDeviceList> podDevices(const PodRef& pod, const std::string& resource,
                                      const KubeletPaths& paths,
                                      std::chrono::milliseconds timeout) {
  const std::string what = fmt::format("pod {}, resource {}", pod.str(), resource);
  std::error_code ec;
  PodDeviceList out;
  std::vector<std::string> others;
  if (std::filesystem::exists(paths.socket(), ec)) {
    std::optional<PodResources> found;
    auto get = grpcUnaryCall(paths.socket(), "/v1.PodResourcesLister/Get",
                             encodeGetRequest(pod.name, pod.ns), timeout);
    if (!get) {
      return cniFail(ErrorCode::kTryAgainLater,
                     fmt::format("{}: ask the kubelet: {}", what, get.error().message()));
    }
    if (get->status == 0) {
      auto parsed = parseGetResponse(get->body);
      if (!parsed) {
        return cniFail(ErrorCode::kTryAgainLater,
                       fmt::format("{}: {}", what, parsed.error().message()));
      }
      found = std::move(*parsed);
      out.source = "PodResources Get";
    } else {
      // Not served (kubelet < 1.27: UNIMPLEMENTED; feature gate off: UNKNOWN): List has it all.
      auto list = grpcUnaryCall(paths.socket(), "/v1.PodResourcesLister/List", "", timeout);
      if (!list) {
        return cniFail(ErrorCode::kTryAgainLater,
                       fmt::format("{}: ask the kubelet: {}", what, list.error().message()));
      }
      if (list->status != 0) {
        return cniFail(ErrorCode::kTryAgainLater,
                       fmt::format("{}: the kubelet answered List with gRPC status {} ({}); Get "
                                   "with {} ({})",
                                   what, list->status, list->message, get->status, get->message));
      }
      auto pods = parseListResponse(list->body);
      if (!pods) {
        return cniFail(ErrorCode::kTryAgainLater,
                       fmt::format("{}: {}", what, pods.error().message()));
      }
      for (auto& p : *pods) {
        if (p.ns == pod.ns && p.name == pod.name) found = std::move(p);
      }
      out.source = "PodResources List";
    }
    if (!found) {
      return cniFail(ErrorCode::kTryAgainLater,
                     fmt::format("{}: the kubelet's PodResources ({}) does not list the pod", what,
                                 paths.socket().string()));
    }
    out.ids = idsOf(*found, resource, &others);
  } else if (std::filesystem::exists(paths.checkpoint(), ec)) {
    if (pod.uid.empty()) {
      return cniFail(
          ErrorCode::kInvalidConfig,
          fmt::format("{}: without the kubelet's socket {}, the device checkpoint is read "
                      "by pod UID, and CNI_ARGS has no K8S_POD_UID",
                      what, paths.socket().string()));
    }
    auto text = readFile(paths.checkpoint());
    if (!text) {
      return cniFail(ErrorCode::kTryAgainLater,
                     fmt::format("{}: {}", what, text.error().message()));
    }
    auto ids = checkpointDevices(*text, pod.uid, resource);
    if (!ids) {
      return cniFail(
          ErrorCode::kTryAgainLater,
          fmt::format("{}: {}: {}", what, paths.checkpoint().string(), ids.error().message()));
    }
    out.ids = std::move(*ids);
    out.source = "the device checkpoint";
  } else {
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("{}: no kubelet state under {}: neither {} nor {} exists (set "
                               "\"kubeletRootDir\" if the kubelet's --root-dir is elsewhere)",
                               what, paths.root.string(), paths.socket().string(),
                               paths.checkpoint().string()));
  }
  if (out.ids.empty()) {
    std::string has = others.empty() ? std::string("no devices at all")
                                     : fmt::format("devices of {} only", fmt::join(others, ", "));
    return cniFail(ErrorCode::kInvalidConfig,
                   fmt::format("pod {} has no devices of {} (it has {}, by {}); it requests none: "
                               "add {}: \"1\" to its resources.limits",
                               pod.str(), resource, has, out.source, resource));
  }
  return out;
}

}  // namespace vfplane::cni
