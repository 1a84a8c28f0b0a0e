// vfplane-router's command line as data: what --backend, --port and --mac say, checked before any
// device is touched, so that a typo exits 2 naming the flag or the port and leaves the node as it
// was. Pure: the environment and the checks of what exists come in as functions, so every rule
// here has a unit test.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vfplane/base/error.h"
#include "vfplane/dataplane/packet.h"
#include "vfplane/netlink/rtnl.h"

namespace vfplane::dataplane {

enum class Backend { kXdp, kDpdk };
Result<Backend> parseBackend(std::string_view text);

// A DPDK port's device: a PCI function (a VF on vfio-pci) or a virtual device.
struct DpdkDevice {
  enum Kind { kPci, kVdev };
  Kind kind = kPci;
  std::string spec;  // as the EAL takes it: "0000:03:02.0", "net_af_packet0,iface=eth1"
  std::string name;  // what DPDK calls the port: the PCI address, or the vdev's name
  std::optional<std::string> iface;  // a vdev's iface= (must be a netdev of this namespace)
  std::vector<std::string> files;    // a vdev's rx_pcap= / tx_pcap= inputs (rx must exist)
};
// "0000:03:02.0" (or "03:02.0"), or "<driver><n>[,key=value...]" with a net_ driver. A usage
// error otherwise, saying what is accepted.
Result<DpdkDevice> parseDpdkDevice(std::string_view text);

struct PortSpec {
  std::string name;                  // the kernel netdev (XDP) or the TAP mirror's name (DPDK)
  std::optional<DpdkDevice> device;  // DPDK only
  std::optional<netlink::MacAddress> mac;  // --mac NAME=MAC (DPDK only)
  std::optional<uint16_t> mtu;             // --mtu NAME=BYTES (DPDK only)
};

// The largest MTU: a frame's length must fit the 16 bits DPDK keeps it in. (The smallest is
// kMinMtu, packet.h.)
inline constexpr unsigned kMaxMtu = 65535 - 18;

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

// The --port and --mac values for the backend. XDP ports are plain names; DPDK ports are
// NAME=DEVICE, where DEVICE may be env:VAR or env:VAR#N: the N-th (1-based, default 1) ID of the
// comma-separated list in VAR, as vfplane-device-plugin and sriov-network-device-plugin set
// PCIDEVICE_<RESOURCE>. Errors name the flag and the value: a bad or duplicate name, a missing
// DEVICE, an env variable that is unset or too short, a MAC that is not unicast or names no port.
Result<std::vector<PortSpec>> parsePorts(Backend backend, const std::vector<std::string>& ports,
                                         const std::vector<std::string>& macs,
                                         const Getenv& getenv);

// --mtu NAME=BYTES for DPDK ports: the port's MTU, and so its TAP mirror's. Usage errors name the
// flag: another backend, no such port, a number outside kMinMtu..kMaxMtu, a port given twice.
// Whether the device can take it is DpdkRouter::create()'s to say.
Result<void> parsePortMtus(Backend backend, const std::vector<std::string>& mtus,
                           std::vector<PortSpec>& ports);

// What the existence checks ask of the node.
struct DeviceProbe {
  std::function<bool(const std::string& pci)> pciExists;
  std::function<bool(const std::string& netdev)> netdevExists;
  std::function<bool(const std::string& path)> fileExists;
};
// The node's own: /sys/bus/pci/devices, if_nametoindex(), access().
DeviceProbe nodeProbe();

// Usage errors naming the port: an XDP port that is not a netdev here, a PCI device that does not
// exist, a vdev whose iface is not a netdev here or whose rx_pcap file is missing. A DPDK port's
// name must not be a netdev already: the router creates its TAP mirror under that name.
Result<void> checkPortsExist(Backend backend, const std::vector<PortSpec>& ports,
                             const DeviceProbe& probe);

// The CPUs this process may run on (its affinity: in a pod, the cpuset the kubelet gave it),
// ascending.
std::vector<int> processCpus();

// The EAL's command line: argv0, the user's arguments after `--`, then what the ports need: an
// allow-list entry per PCI device (or --no-pci when there is none), a --vdev per virtual device,
// and --in-memory unless the user chose how the EAL keeps its files (--in-memory, --file-prefix,
// --no-shconf; --no-huge, which --in-memory conflicts with).
// Unless the user chose lcores (-l, -c, --lcores), they are placed on `cpus`, the CPUs the
// process may use: the main lcore (the control plane) on the first and each of the `workers`
// polling lcores on one of its own after it (`--lcores 0@4,1@5,2@6` for cpus {4,5,6}). With one
// CPU too few for that, the main lcore shares the first worker's CPU; with fewer still, a usage
// error names the CPUs there are.
Result<std::vector<std::string>> ealArguments(const std::string& argv0,
                                              const std::vector<PortSpec>& ports, uint16_t workers,
                                              const std::vector<std::string>& user,
                                              const std::vector<int>& cpus);

}  // namespace vfplane::dataplane
