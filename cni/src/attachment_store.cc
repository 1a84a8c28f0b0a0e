#include "vfplane/cni/attachment_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>

#include "vfplane/base/fd.h"

namespace vfplane::cni {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Json settingsJson(const sriov::VfSettings& s) {
  Json j = Json::object();
  if (s.mac) j["mac"] = s.mac->str();
  if (s.vlan) j["vlan"] = *s.vlan;
  if (s.qos) j["vlanQoS"] = *s.qos;
  if (s.vlanProto) j["vlanProto"] = sriov::vlanProtoName(*s.vlanProto);
  if (s.spoofchk) j["spoofchk"] = *s.spoofchk;
  if (s.trust) j["trust"] = *s.trust;
  if (s.minTxRate) j["min_tx_rate"] = *s.minTxRate;
  if (s.maxTxRate) j["max_tx_rate"] = *s.maxTxRate;
  if (s.linkState) j["link_state"] = static_cast<uint32_t>(*s.linkState);
  return j;
}

sriov::VlanProto protoFrom(const std::string& s) {
  return s == "802.1ad" ? sriov::VlanProto::k8021AD : sriov::VlanProto::k8021Q;
}

Result<sriov::VfSettings> settingsFrom(const Json& j) {
  sriov::VfSettings s;
  if (j.contains("mac")) {
    auto mac = netlink::MacAddress::parse(j["mac"].get<std::string>());
    if (!mac) return fail(std::move(mac.error()));
    s.mac = *mac;
  }
  if (j.contains("vlan")) s.vlan = j["vlan"].get<int>();
  if (j.contains("vlanQoS")) s.qos = j["vlanQoS"].get<int>();
  if (j.contains("vlanProto")) s.vlanProto = protoFrom(j["vlanProto"].get<std::string>());
  if (j.contains("spoofchk")) s.spoofchk = j["spoofchk"].get<bool>();
  if (j.contains("trust")) s.trust = j["trust"].get<bool>();
  if (j.contains("min_tx_rate")) s.minTxRate = j["min_tx_rate"].get<uint32_t>();
  if (j.contains("max_tx_rate")) s.maxTxRate = j["max_tx_rate"].get<uint32_t>();
  if (j.contains("link_state"))
    s.linkState = static_cast<sriov::VfLinkState>(j["link_state"].get<uint32_t>());
  return s;
}

Json stateJson(const sriov::VfState& s) {
  Json j;
  j["vf"] = s.vf;
  j["mac"] = s.mac.str();
  j["vlan"] = s.vlan;
  j["qos"] = s.qos;
  j["vlanProto"] = sriov::vlanProtoName(s.vlanProto);
  if (s.spoofchk) j["spoofchk"] = *s.spoofchk;
  if (s.trust) j["trust"] = *s.trust;
  j["minTxRate"] = s.minTxRate;
  j["maxTxRate"] = s.maxTxRate;
  if (s.linkState) j["linkState"] = static_cast<uint32_t>(*s.linkState);
  return j;
}

Result<sriov::VfState> stateFrom(const Json& j) {
  sriov::VfState s;
  s.vf = j.at("vf").get<int>();
  auto mac = netlink::MacAddress::parse(j.at("mac").get<std::string>());
  if (!mac) return fail(std::move(mac.error()));
  s.mac = *mac;
  s.vlan = j.at("vlan").get<int>();
  s.qos = j.at("qos").get<int>();
  s.vlanProto = protoFrom(j.at("vlanProto").get<std::string>());
  if (j.contains("spoofchk")) s.spoofchk = j["spoofchk"].get<bool>();
  if (j.contains("trust")) s.trust = j["trust"].get<bool>();
  s.minTxRate = j.at("minTxRate").get<uint32_t>();
  s.maxTxRate = j.at("maxTxRate").get<uint32_t>();
  if (j.contains("linkState"))
    s.linkState = static_cast<sriov::VfLinkState>(j["linkState"].get<uint32_t>());
  return s;
}

Result<Json> readJson(const fs::path& path) {
  auto text = readFile(path);
  if (!text) return fail(std::move(text.error()));
  auto j = Json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail(fmt::format("{}: not a JSON object", path.string()), EINVAL);
  return j;
}

Result<void> removeFile(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return fail(systemError(fmt::format("remove {}", path.string()), errno));
  }
  return {};
}

}  // namespace

Json toJson(const VfAttachment& a) {
  Json j;
  j["network"] = a.network;
  j["containerID"] = a.containerId;
  j["ifname"] = a.ifname;
  j["netns"] = a.netns;
  j["cniVersion"] = a.cniVersion;
  j["deviceID"] = a.device.str();
  if (!a.resourceName.empty()) j["resourceName"] = a.resourceName;
  j["pf"] = a.pf;
  j["vfIndex"] = a.vfIndex;
  j["mode"] = a.dpdk ? "dpdk" : "netdev";
  if (a.pfSnapshot) j["pfSnapshot"] = stateJson(*a.pfSnapshot);
  j["pfSettings"] = settingsJson(a.pfSettings);
  j["pfApplyStarted"] = a.pfApplyStarted;
  j["hostName"] = a.hostName;
  j["hostMac"] = a.hostMac;
  j["hostMtu"] = a.hostMtu;
  j["removedAltnames"] = a.removedAltnames;
  j["moveStarted"] = a.moveStarted;
  j["podMac"] = a.podMac;
  j["podMtu"] = a.podMtu;
  j["ipamStarted"] = a.ipamStarted;
  j["ipamType"] = a.ipamType;
  j["config"] = a.config;
  j["complete"] = a.complete;
  j["stranded"] = a.stranded;
  if (!a.strandedReason.empty()) j["strandedReason"] = a.strandedReason;
  return j;
}

Result<VfAttachment> attachmentFromJson(const Json& j) {
  try {
    VfAttachment a;
    a.network = j.at("network").get<std::string>();
    a.containerId = j.at("containerID").get<std::string>();
    a.ifname = j.at("ifname").get<std::string>();
    a.netns = j.at("netns").get<std::string>();
    a.cniVersion = j.at("cniVersion").get<std::string>();
    auto pci = sriov::PciAddress::parse(j.at("deviceID").get<std::string>());
    if (!pci) return fail(std::move(pci.error()).withContext("deviceID"));
    a.device = *pci;
    a.resourceName = j.value("resourceName", "");
    a.pf = j.at("pf").get<std::string>();
    a.vfIndex = j.at("vfIndex").get<int>();
    a.dpdk = j.at("mode").get<std::string>() == "dpdk";
    if (j.contains("pfSnapshot")) {
      auto s = stateFrom(j["pfSnapshot"]);
      if (!s) return fail(std::move(s.error()).withContext("pfSnapshot"));
      a.pfSnapshot = *s;
    }
    auto settings = settingsFrom(j.at("pfSettings"));
    if (!settings) return fail(std::move(settings.error()).withContext("pfSettings"));
    a.pfSettings = *settings;
    a.pfApplyStarted = j.at("pfApplyStarted").get<bool>();
    a.hostName = j.at("hostName").get<std::string>();
    a.hostMac = j.at("hostMac").get<std::string>();
    a.hostMtu = j.at("hostMtu").get<int>();
    a.removedAltnames = j.at("removedAltnames").get<std::vector<std::string>>();
    a.moveStarted = j.at("moveStarted").get<bool>();
    a.podMac = j.at("podMac").get<std::string>();
    a.podMtu = j.at("podMtu").get<int>();
    a.ipamStarted = j.at("ipamStarted").get<bool>();
    a.ipamType = j.at("ipamType").get<std::string>();
    a.config = j.at("config").get<std::string>();
    a.complete = j.at("complete").get<bool>();
    a.stranded = j.at("stranded").get<bool>();
    a.strandedReason = j.value("strandedReason", "");
    return a;
  } catch (const Json::exception& e) {
    return fail(fmt::format("malformed attachment journal: {}", e.what()), EINVAL);
  }
}

fs::path AttachmentStore::attachmentPath(const AttachmentId& id) const {
  // Both parts are validated by the CNI environment parser: no '/', no "..".
  return root_ / "attachments" / fmt::format("{}_{}.json", id.containerId, id.ifname);
}

Result<void> AttachmentStore::save(const VfAttachment& a) const {
  return writeFileAtomic(attachmentPath(a.id()), toJson(a).dump(2) + "\n");
}

Result<std::optional<VfAttachment>> AttachmentStore::load(const AttachmentId& id) const {
  auto path = attachmentPath(id);
  auto j = readJson(path);
  if (!j) {
    if (j.error().sysErrno() == ENOENT) return std::optional<VfAttachment>();
    return fail(std::move(j.error()));
  }
  auto a = attachmentFromJson(*j);
  if (!a) return fail(std::move(a.error()).withContext(path.string()));
  return std::optional<VfAttachment>(std::move(*a));
}

Result<void> AttachmentStore::remove(const AttachmentId& id) const {
  return removeFile(attachmentPath(id));
}

Result<std::vector<VfAttachment>> AttachmentStore::list(std::vector<std::string>* problems) const {
  std::vector<VfAttachment> out;
  std::error_code ec;
  fs::directory_iterator it(root_ / "attachments", ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return out;
    return fail(fmt::format("list {}: {}", (root_ / "attachments").string(), ec.message()),
                ec.value());
  }
  for (const auto& entry : it) {
    if (entry.path().extension() != ".json") continue;
    auto j = readJson(entry.path());
    Result<VfAttachment> a = j ? attachmentFromJson(*j) : fail(std::move(j.error()));
    if (!a) {
      if (problems != nullptr)
        problems->push_back(fmt::format("{}: {}", entry.path().string(), a.error().message()));
      continue;
    }
    out.push_back(std::move(*a));
  }
  return out;
}

Result<std::optional<VfOwner>> AttachmentStore::owner(const sriov::PciAddress& device) const {
  auto j = readJson(root_ / "owners" / (device.str() + ".json"));
  if (!j) {
    if (j.error().sysErrno() == ENOENT) return std::optional<VfOwner>();
    return fail(std::move(j.error()));
  }
  VfOwner o;
  o.containerId = j->value("containerID", "");
  o.ifname = j->value("ifname", "");
  o.netns = j->value("netns", "");
  o.network = j->value("network", "");
  return std::optional<VfOwner>(std::move(o));
}

Result<void> AttachmentStore::setOwner(const sriov::PciAddress& device, const VfOwner& o) const {
  Json j;
  j["containerID"] = o.containerId;
  j["ifname"] = o.ifname;
  j["netns"] = o.netns;
  j["network"] = o.network;
  return writeFileAtomic(root_ / "owners" / (device.str() + ".json"), j.dump() + "\n");
}

Result<void> AttachmentStore::clearOwner(const sriov::PciAddress& device) const {
  return removeFile(root_ / "owners" / (device.str() + ".json"));
}

Result<void> AttachmentStore::releaseOwner(const sriov::PciAddress& device,
                                           const AttachmentId& id) const {
  auto o = owner(device);
  if (!o) return fail(std::move(o.error()));
  if (!*o || (*o)->containerId != id.containerId || (*o)->ifname != id.ifname) return {};
  return clearOwner(device);
}

Result<void> AttachmentStore::ensureWritable() const {
  for (const char* sub : {"attachments", "owners", "locks"}) {
    std::error_code ec;
    fs::create_directories(root_ / sub, ec);
    if (ec)
      return fail(fmt::format("create {}: {}", (root_ / sub).string(), ec.message()), ec.value());
    if (::access((root_ / sub).c_str(), W_OK) != 0) {
      return fail(systemError(fmt::format("{} is not writable", (root_ / sub).string()), errno));
    }
  }
  return {};
}

}  // namespace vfplane::cni
