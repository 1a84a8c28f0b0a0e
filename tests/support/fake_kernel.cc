#include "fake_kernel.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace vfplane::test {

class FakeClient final : public netlink::Client {
 public:
  FakeClient(FakeKernel& kernel, FakeKernel::Ns ns) : kernel_(kernel), ns_(ns) {}
  Result<void> execute(netlink::NlMsg msg, std::string_view what) override {
    return kernel_.execute(ns_, netlink::header(msg), what);
  }
  Result<std::vector<std::vector<uint8_t>>> query(netlink::NlMsg msg,
                                                  std::string_view what) override {
    return kernel_.query(ns_, netlink::header(msg), what);
  }

 private:
  FakeKernel& kernel_;
  FakeKernel::Ns ns_;
};

namespace {

const char* nsName(FakeKernel::Ns ns) { return ns == FakeKernel::kHost ? "host" : "pod"; }

std::string attrString(const nlattr* a) {
  const char* s = static_cast<const char*>(nla_data(a));
  return std::string(s, strnlen(s, static_cast<size_t>(nla_len(a))));
}

std::vector<uint8_t> copyOf(const netlink::NlMsg& m) {
  const nlmsghdr* h = netlink::header(m);
  auto* p = reinterpret_cast<const uint8_t*>(h);
  return std::vector<uint8_t>(p, p + h->nlmsg_len);
}

// An RTM_NEWLINK as the kernel answers a lookup.
std::vector<uint8_t> linkReply(const FakeKernel::Link& l) {
  netlink::NlMsg m(nlmsg_alloc_simple(RTM_NEWLINK, 0));
  ifinfomsg ifi{};
  ifi.ifi_index = l.ifindex;
  ifi.ifi_flags = l.flags | ((l.flags & IFF_UP) ? IFF_LOWER_UP : 0);
  nlmsg_append(m.get(), &ifi, sizeof ifi, NLMSG_ALIGNTO);
  nla_put_string(m.get(), IFLA_IFNAME, l.name.c_str());
  if (auto mac = netlink::MacAddress::parse(l.mac))
    nla_put(m.get(), IFLA_ADDRESS, 6, mac->bytes.data());
  nla_put_u32(m.get(), IFLA_MTU, static_cast<uint32_t>(l.mtu));
  if (!l.alias.empty()) nla_put_string(m.get(), IFLA_IFALIAS, l.alias.c_str());
  if (!l.parentDevice.empty())
    nla_put_string(m.get(), IFLA_PARENT_DEV_NAME, l.parentDevice.c_str());
  if (!l.altnames.empty()) {
    nlattr* list = nla_nest_start(m.get(), IFLA_PROP_LIST);
    for (const auto& a : l.altnames) nla_put_string(m.get(), IFLA_ALT_IFNAME, a.c_str());
    nla_nest_end(m.get(), list);
  }
  return copyOf(m);
}

std::vector<uint8_t> addressReply(int ifindex, const netlink::IpPrefix& p) {
  netlink::NlMsg m = netlink::buildAddress(ifindex, p, true);
  netlink::header(m);
  auto bytes = copyOf(m);
  reinterpret_cast<nlmsghdr*>(bytes.data())->nlmsg_type = RTM_NEWADDR;
  return bytes;
}

}  // namespace

int FakeKernel::addLink(Ns ns, Link link) {
  std::lock_guard lock(mu_);
  link.ifindex = nextIndex_++;
  int index = link.ifindex;
  links_[ns][index] = std::move(link);
  return index;
}

std::optional<FakeKernel::Link> FakeKernel::find(Ns ns, std::string_view name) const {
  std::lock_guard lock(mu_);
  for (const auto& [i, l] : links_[ns]) {
    if (l.name == name || std::find(l.altnames.begin(), l.altnames.end(), name) != l.altnames.end())
      return l;
  }
  return std::nullopt;
}

size_t FakeKernel::linkCount(Ns ns) const {
  std::lock_guard lock(mu_);
  return links_[ns].size();
}

std::vector<std::string> FakeKernel::routes(Ns ns) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [oif, text] : routes_[ns]) out.push_back(text);
  return out;
}

std::vector<std::string> FakeKernel::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

netlink::ClientFactory FakeKernel::factory() {
  return [this](const netlink::Netns* ns) -> Result<std::unique_ptr<netlink::Client>> {
    return std::unique_ptr<netlink::Client>(
        std::make_unique<FakeClient>(*this, ns == nullptr ? kHost : kPod));
  };
}

FakeKernel::Link* FakeKernel::byIndex(Ns ns, int ifindex) {
  auto it = links_[ns].find(ifindex);
  return it == links_[ns].end() ? nullptr : &it->second;
}

FakeKernel::Link* FakeKernel::byName(Ns ns, std::string_view name) {
  for (auto& [i, l] : links_[ns]) {
    if (l.name == name || std::find(l.altnames.begin(), l.altnames.end(), name) != l.altnames.end())
      return &l;
  }
  return nullptr;
}

Result<void> FakeKernel::execute(Ns ns, const nlmsghdr* h, std::string_view what) {
  std::lock_guard lock(mu_);
  auto* hdr = const_cast<nlmsghdr*>(h);
  if (auto it = failures_.find(h->nlmsg_type); it != failures_.end()) {
    int err = it->second;
    failures_.erase(it);
    return fail(systemError(what, err));
  }
  switch (h->nlmsg_type) {
    case RTM_NEWLINK: {
      auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr));
      nlattr* tb[IFLA_MAX + 1] = {};
      nlmsg_parse(hdr, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr);
      if (h->nlmsg_flags & NLM_F_CREATE) return fail(systemError(what, EOPNOTSUPP));
      Link* l = byIndex(ns, ifi->ifi_index);
      if (l == nullptr) return fail(systemError(what, ENODEV));
      requests_.push_back(fmt::format("{} RTM_NEWLINK {}", nsName(ns), ifi->ifi_index));
      Link changed = *l;
      Ns target = ns;
      if (tb[IFLA_NET_NS_FD])
        target = static_cast<int>(nla_get_u32(tb[IFLA_NET_NS_FD])) == podFd_ ? kPod : kHost;
      if (tb[IFLA_IFNAME]) changed.name = attrString(tb[IFLA_IFNAME]);
      if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
        changed.mac = fmt::format(
            "{:02x}", fmt::join(static_cast<uint8_t*>(nla_data(tb[IFLA_ADDRESS])),
                                static_cast<uint8_t*>(nla_data(tb[IFLA_ADDRESS])) + 6, ":"));
      }
      if (tb[IFLA_MTU]) changed.mtu = static_cast<int>(nla_get_u32(tb[IFLA_MTU]));
      if (tb[IFLA_IFALIAS]) changed.alias = attrString(tb[IFLA_IFALIAS]);
      if (ifi->ifi_change & IFF_UP)
        changed.flags = (changed.flags & ~IFF_UP) | (ifi->ifi_flags & IFF_UP);
      // Every name the link will have must be free where it ends up.
      for (const auto& [i, other] : links_[target]) {
        if (i == changed.ifindex && target == ns) continue;
        std::vector<std::string> names = other.altnames;
        names.push_back(other.name);
        for (const auto& n : names) {
          if (n == changed.name || std::find(changed.altnames.begin(), changed.altnames.end(), n) !=
                                       changed.altnames.end()) {
            return fail(systemError(what, EEXIST));
          }
        }
      }
      if (target != ns) {
        changed.addresses.clear();  // the kernel flushes them on the way out
        std::erase_if(routes_[ns], [&](const auto& r) { return r.first == changed.ifindex; });
        links_[ns].erase(changed.ifindex);
      }
      links_[target][changed.ifindex] = changed;
      return {};
    }
    case RTM_DELLINK: {
      auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr));
      if (links_[ns].erase(ifi->ifi_index) == 0) return fail(systemError(what, ENODEV));
      requests_.push_back(fmt::format("{} RTM_DELLINK {}", nsName(ns), ifi->ifi_index));
      return {};
    }
    case RTM_NEWLINKPROP:
    case RTM_DELLINKPROP: {
      auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr));
      Link* l = byIndex(ns, ifi->ifi_index);
      if (l == nullptr) return fail(systemError(what, ENODEV));
      nlattr* tb[IFLA_MAX + 1] = {};
      nlmsg_parse(hdr, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr);
      if (!tb[IFLA_PROP_LIST]) return fail(systemError(what, EINVAL));
      nlattr* pos = nullptr;
      int rem = 0;
      nla_for_each_nested(pos, tb[IFLA_PROP_LIST], rem) {
        std::string alt = attrString(pos);
        if (h->nlmsg_type == RTM_NEWLINKPROP) {
          if (byName(ns, alt) != nullptr) return fail(systemError(what, EEXIST));
          l->altnames.push_back(alt);
        } else {
          auto it = std::find(l->altnames.begin(), l->altnames.end(), alt);
          if (it == l->altnames.end()) return fail(systemError(what, ENODEV));
          l->altnames.erase(it);
        }
      }
      requests_.push_back(
          fmt::format("{} {} {}", nsName(ns),
                      h->nlmsg_type == RTM_NEWLINKPROP ? "RTM_NEWLINKPROP" : "RTM_DELLINKPROP",
                      ifi->ifi_index));
      return {};
    }
    case RTM_NEWADDR:
    case RTM_DELADDR: {
      std::vector<uint8_t> bytes(reinterpret_cast<const uint8_t*>(h),
                                 reinterpret_cast<const uint8_t*>(h) + h->nlmsg_len);
      reinterpret_cast<nlmsghdr*>(bytes.data())->nlmsg_type = RTM_NEWADDR;
      auto a = netlink::parseAddress(reinterpret_cast<const nlmsghdr*>(bytes.data()));
      if (!a) return fail(systemError(what, EINVAL));
      Link* l = byIndex(ns, a->ifindex);
      if (l == nullptr) return fail(systemError(what, ENODEV));
      auto it = std::find(l->addresses.begin(), l->addresses.end(), a->prefix);
      if (h->nlmsg_type == RTM_NEWADDR) {
        if (it != l->addresses.end()) return fail(systemError(what, EEXIST));
        l->addresses.push_back(a->prefix);
      } else {
        if (it == l->addresses.end()) return fail(systemError(what, EADDRNOTAVAIL));
        l->addresses.erase(it);
      }
      requests_.push_back(fmt::format("{} {} {}", nsName(ns),
                                      h->nlmsg_type == RTM_NEWADDR ? "RTM_NEWADDR" : "RTM_DELADDR",
                                      a->prefix.str()));
      return {};
    }
    case RTM_NEWROUTE: {
      std::vector<uint8_t> bytes(reinterpret_cast<const uint8_t*>(h),
                                 reinterpret_cast<const uint8_t*>(h) + h->nlmsg_len);
      auto r = netlink::parseRoute(reinterpret_cast<const nlmsghdr*>(bytes.data()));
      if (!r) return fail(systemError(what, EINVAL));
      if (byIndex(ns, r->oif) == nullptr) return fail(systemError(what, ENODEV));
      std::string text = fmt::format("{}{} dev {}", r->dst.str(),
                                     r->gateway ? " via " + r->gateway->addressStr() : "", r->oif);
      routes_[ns].emplace_back(r->oif, text);
      requests_.push_back(fmt::format("{} RTM_NEWROUTE {}", nsName(ns), text));
      return {};
    }
    default:
      return fail(systemError(what, EOPNOTSUPP));
  }
}

Result<std::vector<std::vector<uint8_t>>> FakeKernel::query(Ns ns, const nlmsghdr* h,
                                                            std::string_view what) {
  std::lock_guard lock(mu_);
  auto* hdr = const_cast<nlmsghdr*>(h);
  std::vector<std::vector<uint8_t>> out;
  switch (h->nlmsg_type) {
    case RTM_GETLINK: {
      if ((h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP) {
        for (const auto& [i, l] : links_[ns]) out.push_back(linkReply(l));
        return out;
      }
      auto* ifi = static_cast<ifinfomsg*>(nlmsg_data(hdr));
      nlattr* tb[IFLA_MAX + 1] = {};
      nlmsg_parse(hdr, sizeof(ifinfomsg), tb, IFLA_MAX, nullptr);
      Link* l =
          tb[IFLA_IFNAME] ? byName(ns, attrString(tb[IFLA_IFNAME])) : byIndex(ns, ifi->ifi_index);
      if (l == nullptr) return fail(systemError(what, ENODEV));
      out.push_back(linkReply(*l));
      return out;
    }
    case RTM_GETADDR:
      for (const auto& [i, l] : links_[ns]) {
        for (const auto& a : l.addresses) out.push_back(addressReply(i, a));
      }
      return out;
    case RTM_GETROUTE:
    case RTM_GETNEIGH:
      return out;
    default:
      return fail(systemError(what, EOPNOTSUPP));
  }
}

}  // namespace vfplane::test
