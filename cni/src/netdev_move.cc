#include "vfplane/cni/netdev_move.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vfplane::cni {
namespace {

using netlink::Client;
using netlink::LinkChange;
using netlink::LinkInfo;

bool nameFree(Client& c, const std::string& name) {
  auto l = c.link(name);
  return l && !*l;
}

}  // namespace

CniExpected<Client*> NamespaceClients::host() {
  if (!host_) {
    auto c = factory_(nullptr);
    if (!c) return ioError(c.error(), "netlink");
    host_ = std::move(*c);
  }
  return host_.get();
}

CniExpected<Client*> NamespaceClients::pod() {
  if (!pod_) {
    if (podNs_ == nullptr)
      return cniFail(ErrorCode::kIoFailure, "netlink: the pod's network namespace is gone");
    auto c = factory_(podNs_);
    if (!c) return ioError(c.error(), "netlink");
    pod_ = std::move(*c);
  }
  return pod_.get();
}

CniExpected<std::pair<Client*, Client*>> NamespaceClients::hostAndPod() {
  auto h = host();
  if (!h) return std::unexpected(h.error());
  auto p = pod();
  if (!p) return std::unexpected(p.error());
  return std::pair{*h, *p};
}

CniExpected<std::unique_ptr<Client>> NamespaceClients::open(const netlink::Netns& ns) const {
  auto c = factory_(&ns);
  if (!c) return ioError(c.error(), "netlink");
  return std::move(*c);
}

std::string fallbackName(const LinkInfo& podLink, const std::optional<sriov::PciAddress>& pci) {
  if (pci)
    return fmt::format("pci{:04x}{:02x}{:02x}{:x}", pci->domain(), pci->bus(), pci->device(),
                       pci->function());
  return fmt::format("if{}", podLink.ifindex);
}

CniExpected<std::vector<std::string>> clashingAltnames(Client& other, const LinkInfo& link) {
  std::vector<std::string> out;
  for (const auto& alt : link.altnames) {
    auto there = other.link(alt);
    if (!there) return ioError(there.error(), fmt::format("look up altname {}", alt));
    if (*there) out.push_back(alt);
  }
  return out;
}

CniExpected<LinkInfo> moveIntoPod(Client& host, Client& pod, const netlink::Netns& podNs,
                                  const MoveIntoPod& m) {
  for (const auto& alt : m.dropAltnames) {
    if (auto r = host.execute(netlink::buildAltname(m.hostLink.ifindex, alt, false),
                              fmt::format("drop altname {}", alt));
        !r) {
      return ioError(r.error());
    }
  }
  if (auto r = host.execute(
          netlink::buildMoveLink(m.hostLink.ifindex, podNs.fd(), m.podName, m.then),
          fmt::format("move {} into {} as {}", m.hostLink.name, podNs.path(), m.podName));
      !r) {
    // Still at home: it keeps the names it had.
    for (const auto& alt : m.dropAltnames) {
      (void)host.execute(netlink::buildAltname(m.hostLink.ifindex, alt, true), "restore altname");
    }
    return ioError(r.error());
  }
  auto moved = pod.link(m.podName);
  if (!moved) return ioError(moved.error());
  if (!*moved)
    return cniFail(ErrorCode::kIoFailure,
                   fmt::format("{} vanished from {} after the move", m.podName, podNs.path()));
  return **moved;
}

CniExpected<Homecoming> bringHome(Client& pod, Client& host, const netlink::Netns& hostNs,
                                  const BringHome& b, spdlog::logger& log) {
  Homecoming out{b.home, false};
  if (!nameFree(host, out.name)) {
    std::string fallback = fallbackName(b.podLink, b.pci);
    if (!nameFree(host, fallback)) {
      return cniFail(ErrorCode::kIoFailure,
                     fmt::format("both {} and {} are taken in the host", b.home, fallback));
    }
    log.warn("{}: {} is taken in the host; it comes home as {}", b.podLink.name, b.home, fallback);
    out = {fallback, true};
  }
  for (const auto& alt : b.podLink.altnames) {
    if (nameFree(host, alt)) continue;
    if (auto r = pod.execute(netlink::buildAltname(b.podLink.ifindex, alt, false),
                             fmt::format("drop altname {}", alt));
        !r) {
      log.warn("{}: {}", b.podLink.name, r.error().message());
    }
  }
  std::string what = fmt::format("move {} home as {}", b.podLink.name, out.name);
  auto moved = pod.execute(
      netlink::buildMoveLink(b.podLink.ifindex, hostNs.fd(), out.name, b.restore), what);
  if (!moved && (b.restore.mac || b.restore.mtu)) {
    log.warn("{}; moving it home without restoring MAC/MTU", moved.error().message());
    LinkChange bare = b.restore;
    bare.mac.reset();
    bare.mtu.reset();
    moved =
        pod.execute(netlink::buildMoveLink(b.podLink.ifindex, hostNs.fd(), out.name, bare), what);
  }
  if (!moved) return ioError(moved.error());
  if (!b.altnames.empty()) {
    if (auto back = host.link(out.name); back && *back) {
      for (const auto& alt : b.altnames) {
        if (nameFree(host, alt))
          (void)host.execute(netlink::buildAltname((*back)->ifindex, alt, true), "restore altname");
      }
    }
  }
  return out;
}

}  // namespace vfplane::cni
