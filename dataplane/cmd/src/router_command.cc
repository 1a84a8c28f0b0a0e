#include "vfplane/dataplane/router_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <net/if.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <set>

#include "vfplane/sriov/pci_address.h"

namespace vfplane::dataplane {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t at = s.find(sep);
    out.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

// A netdev name the kernel accepts: 1-15 bytes, none of '/', ':', whitespace; not "." or "..".
std::optional<std::string> badNetdevName(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() >= IFNAMSIZ) return fmt::format("is longer than {} bytes", IFNAMSIZ - 1);
  if (name == "." || name == "..") return "is not a name";
  for (char c : name) {
    if (c == '/' || c == ':' || c == '=' || c == ',' || std::isspace(static_cast<unsigned char>(c)))
      return fmt::format("has '{}' in it", c);
  }
  return std::nullopt;
}

// env:VAR or env:VAR#N.
Result<std::string> fromEnv(std::string_view flag, std::string_view ref, const Getenv& getenv) {
  std::string_view var = ref;
  size_t index = 1;
  if (size_t hash = ref.find('#'); hash != std::string_view::npos) {
    var = ref.substr(0, hash);
    std::string_view n = ref.substr(hash + 1);
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), index);
    if (n.empty() || ec != std::errc() || end != n.data() + n.size() || index == 0) {
      return usageError(
          fmt::format("{}env:{}: #{} is not a position (1 is the first ID)", flag, ref, n));
    }
  }
  if (var.empty()) return usageError(fmt::format("{}env:{}: no variable name", flag, ref));
  auto value = getenv(std::string(var));
  if (!value || value->empty()) {
    return usageError(fmt::format(
        "{}env:{}: {} is not set (is the pod's resources.limits asking for the device?)", flag, ref,
        var));
  }
  std::vector<std::string> ids;
  for (auto id : split(*value, ',')) {
    if (!id.empty()) ids.emplace_back(id);
  }
  if (index > ids.size()) {
    return usageError(fmt::format("{}env:{}: {} lists {} device{} (\"{}\"), not {}", flag, ref, var,
                                  ids.size(), ids.size() == 1 ? "" : "s", *value, index));
  }
  return ids[index - 1];
}

bool hasArg(const std::vector<std::string>& args, std::initializer_list<std::string_view> names) {
  for (const auto& a : args) {
    for (auto n : names) {
      if (a == n || (a.starts_with(n) && a.size() > n.size() && a[n.size()] == '=') ||
          (n.size() == 2 && a.starts_with(n) && a.size() > 2))
        return true;
    }
  }
  return false;
}

}  // namespace

Result<Backend> parseBackend(std::string_view text) {
  if (text == "xdp") return Backend::kXdp;
  if (text == "dpdk") return Backend::kDpdk;
  return usageError(fmt::format("--backend {}: must be xdp or dpdk", text));
}

Result<DpdkDevice> parseDpdkDevice(std::string_view text) {
  DpdkDevice d;
  d.spec = std::string(text);
  if (text.find(',') == std::string_view::npos && !text.starts_with("net_")) {
    auto pci = sriov::PciAddress::parse(text);
    if (!pci) {
      return usageError(
          fmt::format("\"{}\" is neither a PCI address (0000:03:02.0) nor a DPDK virtual device "
                      "(net_af_packet0,iface=eth1): {}",
                      text, pci.error().message()));
    }
    d.kind = DpdkDevice::kPci;
    d.spec = d.name = pci->str();
    return d;
  }
  auto parts = split(text, ',');
  std::string_view name = parts[0];
  // net_<driver><instance>: lower-case letters and '_' , then digits.
  size_t digits = name.find_first_of("0123456789");
  bool shaped = name.starts_with("net_") && name.size() > 4 && digits != std::string_view::npos &&
                digits > 4 &&
                std::all_of(name.begin(), name.begin() + static_cast<long>(digits),
                            [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; }) &&
                std::all_of(name.begin() + static_cast<long>(digits), name.end(),
                            [](char c) { return c >= '0' && c <= '9'; });
  if (!shaped) {
    return usageError(fmt::format(
        "\"{}\": a DPDK virtual device is named net_<driver><n> (net_af_packet0, net_pcap1), "
        "then ,key=value arguments",
        text));
  }
  d.kind = DpdkDevice::kVdev;
  d.name = std::string(name);
  for (size_t i = 1; i < parts.size(); ++i) {
    size_t eq = parts[i].find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return usageError(fmt::format("\"{}\": \"{}\" is not a key=value argument", text, parts[i]));
    }
    std::string_view key = parts[i].substr(0, eq), value = parts[i].substr(eq + 1);
    if (key == "iface") d.iface = std::string(value);
    if (key == "rx_pcap") d.files.emplace_back(value);
  }
  return d;
}

namespace {

// The port and the value of a per-port flag's NAME=VALUE, for the backend that takes the flag.
Result<std::pair<PortSpec*, std::string_view>> portValue(Backend takes, Backend backend,
                                                         std::string_view flag,
                                                         std::string_view arg,
                                                         std::vector<PortSpec>& ports) {
  if (backend != takes) {
    return usageError(
        fmt::format("{} {}: the XDP backend keeps each netdev's own; {} is for "
                    "--backend dpdk",
                    flag, arg, flag));
  }
  size_t eq = arg.find('=');
  std::string_view name = arg.substr(0, eq);
  auto it =
      std::find_if(ports.begin(), ports.end(), [&](const PortSpec& s) { return s.name == name; });
  if (eq == std::string_view::npos || it == ports.end()) {
    return usageError(fmt::format("{} {}: must be NAME={} for a --port NAME", flag, arg,
                                  flag == "--mac" ? "MAC" : "BYTES"));
  }
  return std::pair{&*it, arg.substr(eq + 1)};
}

}  // namespace

Result<std::vector<PortSpec>> parsePorts(Backend backend, const std::vector<std::string>& ports,
                                         const std::vector<std::string>& macs,
                                         const Getenv& getenv) {
  if (ports.empty()) return usageError("--port: at least one port is needed");
  std::vector<PortSpec> out;
  std::set<std::string> names, devices;
  for (const auto& p : ports) {
    size_t eq = p.find('=');
    PortSpec spec;
    spec.name = p.substr(0, eq);
    if (auto bad = badNetdevName(spec.name))
      return usageError(fmt::format("--port {}: the name {}", p, *bad));
    if (!names.insert(spec.name).second)
      return usageError(fmt::format("--port {}: {} is given twice", p, spec.name));
    if (backend == Backend::kXdp) {
      if (eq != std::string::npos) {
        return usageError(fmt::format(
            "--port {}: the XDP backend takes netdev names; NAME=DEVICE is for --backend dpdk", p));
      }
      out.push_back(std::move(spec));
      continue;
    }
    if (eq == std::string::npos || eq + 1 == p.size()) {
      return usageError(fmt::format(
          "--port {}: the DPDK backend takes NAME=DEVICE (a PCI address, a vdev or env:VAR)", p));
    }
    std::string device = p.substr(eq + 1);
    if (device.starts_with("env:")) {
      auto id = fromEnv("--port " + spec.name + "=", std::string_view(device).substr(4), getenv);
      if (!id) return fail(std::move(id.error()));
      device = *id;
    }
    auto d = parseDpdkDevice(device);
    if (!d) return fail(std::move(d.error()).withContext("--port " + p));
    if (!devices.insert(d->name).second)
      return usageError(fmt::format("--port {}: device {} is given twice", p, d->name));
    spec.device = std::move(*d);
    out.push_back(std::move(spec));
  }
  for (const auto& m : macs) {
    auto port = portValue(Backend::kDpdk, backend, "--mac", m, out);
    if (!port) return fail(std::move(port.error()));
    auto& [spec, text] = *port;
    auto mac = netlink::MacAddress::parse(text);
    if (!mac) return usageError(fmt::format("--mac {}: {}", m, mac.error().message()));
    if ((mac->bytes[0] & 1) != 0 || mac->isZero())
      return usageError(fmt::format("--mac {}: not a unicast address", m));
    if (spec->mac) return usageError(fmt::format("--mac {}: {} has a MAC already", m, spec->name));
    spec->mac = *mac;
  }
  return out;
}

Result<void> parsePortMtus(Backend backend, const std::vector<std::string>& mtus,
                           std::vector<PortSpec>& ports) {
  for (const auto& m : mtus) {
    auto port = portValue(Backend::kDpdk, backend, "--mtu", m, ports);
    if (!port) return fail(std::move(port.error()));
    auto& [spec, text] = *port;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < kMinMtu ||
        value > kMaxMtu) {
      return usageError(fmt::format("--mtu {}: the MTU must be a number of bytes, {} to {}", m,
                                    kMinMtu, kMaxMtu));
    }
    if (spec->mtu) return usageError(fmt::format("--mtu {}: {} has an MTU already", m, spec->name));
    spec->mtu = static_cast<uint16_t>(value);
  }
  return {};
}

DeviceProbe nodeProbe() {
  return {
      [](const std::string& pci) {
        return std::filesystem::exists(std::filesystem::path("/sys/bus/pci/devices") / pci);
      },
      [](const std::string& netdev) { return ::if_nametoindex(netdev.c_str()) != 0; },
      [](const std::string& path) { return ::access(path.c_str(), R_OK) == 0; },
  };
}

Result<void> checkPortsExist(Backend backend, const std::vector<PortSpec>& ports,
                             const DeviceProbe& probe) {
  for (const auto& p : ports) {
    if (backend == Backend::kXdp) {
      if (!probe.netdevExists(p.name))
        return usageError(fmt::format("port {}: no such link in this namespace", p.name), ENODEV);
      continue;
    }
    const DpdkDevice& d = *p.device;
    if (probe.netdevExists(p.name)) {
      return usageError(fmt::format(
          "port {}: a link of that name exists already; the router creates its TAP mirror under "
          "this name, so pick another",
          p.name));
    }
    if (d.kind == DpdkDevice::kPci && !probe.pciExists(d.name))
      return usageError(fmt::format("port {}: no PCI device {}", p.name, d.name), ENODEV);
    if (d.iface && !probe.netdevExists(*d.iface)) {
      return usageError(fmt::format("port {}: {}: iface {} is not a link in this namespace", p.name,
                                    d.name, *d.iface),
                        ENODEV);
    }
    for (const auto& f : d.files) {
      if (!probe.fileExists(f))
        return usageError(fmt::format("port {}: {}: cannot read {}", p.name, d.name, f), ENOENT);
    }
  }
  return {};
}

std::vector<int> processCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

Result<std::vector<std::string>> ealArguments(const std::string& argv0,
                                              const std::vector<PortSpec>& ports, uint16_t workers,
                                              const std::vector<std::string>& user,
                                              const std::vector<int>& cpus) {
  std::vector<std::string> args{argv0};
  args.insert(args.end(), user.begin(), user.end());
  if (!hasArg(user, {"-l", "--lcores", "-c"})) {
    if (cpus.size() < workers) {
      return usageError(
          fmt::format("--lcores {}: {} polling workers need {} CPUs ({} with one for the control "
                      "plane); this process may run on {} ({}). Ask for fewer, or place the "
                      "lcores yourself with --lcores after --",
                      workers, workers, workers, workers + 1, cpus.size(),
                      cpus.empty() ? std::string("none") : fmt::format("{}", fmt::join(cpus, ","))),
          EINVAL);
    }
    // The main lcore on the first CPU, unless that leaves a worker without one of its own.
    size_t first = cpus.size() > workers ? 1 : 0;
    std::string map = fmt::format("0@{}", cpus[0]);
    for (uint16_t w = 0; w < workers; ++w) map += fmt::format(",{}@{}", w + 1, cpus[first + w]);
    args.push_back("--lcores");
    args.push_back(map);
  }
  if (!hasArg(user, {"--in-memory", "--file-prefix", "--no-shconf", "--no-huge"}))
    args.push_back("--in-memory");
  bool pci = false;
  for (const auto& p : ports) {
    if (!p.device) continue;
    if (p.device->kind == DpdkDevice::kPci) {
      pci = true;
      args.push_back("-a");
    } else {
      args.push_back("--vdev");
    }
    args.push_back(p.device->spec);
  }
  if (!pci && !hasArg(user, {"--no-pci"})) args.push_back("--no-pci");
  return args;
}

}  // namespace vfplane::dataplane
