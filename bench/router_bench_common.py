"""What the router benchmark's DPDK and XDP halves share: the traffic and route tables, the
errors, and driving vfplane-router (its kernel tables and /metrics) in its namespace."""
import ipaddress
import os
import re
import struct
import subprocess
import sys
import threading
import time

PORT_IN_MAC = "02:70:63:61:70:00"  # net_pcap0's own MAC ("pcap", 0), which it will not change
SRC_MAC = "02:00:00:00:00:10"       # the traffic's source
NEXT_HOP_MAC = "02:00:00:00:00:20"  # the next hop behind the egress port
SRC4 = ipaddress.ip_network("198.18.0.0/15")    # RFC 2544's benchmarking range
SRC6 = ipaddress.ip_network("2001:2::/48")      # RFC 5180's
DST4_BASE = int(ipaddress.ip_address("16.0.0.0"))  # /24s from 16.0.0.0 (1M of them fit in /4)
DST6_BASE = int(ipaddress.ip_address("2400::"))    # /48s under 2400::/28
MIN_FRAME = {4: 64, 6: 78}  # the smallest UDP frame of each family (FCS included)


def fail(msg):
    print(f"router_bench: {msg}", file=sys.stderr)
    sys.exit(1)


class RowError(Exception):
    """A row that could not be measured: reported, and the run goes on to the next."""


def skip(msg):
    print(f"SKIP: {msg}")
    sys.exit(77)


def say(msg):
    print(f"router_bench: {msg}", flush=True)


# ---- traffic and routes ------------------------------------------------------------------------

def routes_of(family, n):
    """n prefixes spread over the table: IPv4 /24s, IPv6 /48s (one shorter prefix when n == 1)."""
    if n == 1:
        return [ipaddress.ip_network("16.0.0.0/4" if family == 4 else "2400::/12")]
    space = 1 << 20  # /24s under 16.0.0.0/4, /48s under 2400::/28
    if n > space:
        fail(f"{n} routes do not fit the {space} prefixes of the benchmark's space")
    stride = space // n
    if family == 4:
        return [ipaddress.IPv4Network((DST4_BASE + i * stride * 256, 24)) for i in range(n)]
    return [ipaddress.IPv6Network((DST6_BASE + ((i * stride) << 80), 48)) for i in range(n)]


def destinations(routes, count):
    """count host addresses, one in each of count routes picked evenly over the table."""
    out = []
    for d in range(count):
        net = routes[d * len(routes) // count]
        host = 1 + (d * 7919) % min(net.num_addresses - 2, 65000)
        out.append(net.network_address + host)
    return out


def mac(text):
    return bytes(int(b, 16) for b in text.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(family, size, src, dst, sport, dport):
    """One Ethernet/IP/UDP frame of size bytes on the wire (the 4-byte FCS is not captured)."""
    eth = mac(PORT_IN_MAC) + mac(SRC_MAC) + struct.pack("!H", 0x0800 if family == 4 else 0x86DD)
    payload_len = size - 4 - 14 - (20 if family == 4 else 40) - 8
    if payload_len < 0:
        fail(f"{size}-byte frames are too small for IPv{family}/UDP")
    payload = bytes(payload_len)
    udp_len = 8 + payload_len
    if family == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0,
                         src.packed, dst.packed)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, udp_len, 17, 64, src.packed, dst.packed)
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", udp_len, 17)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0)
    c = csum(pseudo + udp + payload) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c)
    return eth + ip + udp + payload


def write_pcap(path, frames):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", i // 1000000, i % 1000000, len(fr), len(fr)))
            f.write(fr)


def traffic(path, family, size, dsts):
    src_net = SRC4 if family == 4 else SRC6
    frames = []
    for i, d in enumerate(dsts):
        src = src_net.network_address + 1 + (i % 4093)
        frames.append(frame(family, size, src, d, 1024 + i % 50000, 5000 + i % 13))
    write_pcap(path, frames)


# ---- processes, vfplane-router -----------------------------------------------------------

def sh(*cmd, input=None):
    p = subprocess.run(cmd, input=input, text=True, capture_output=True)
    if p.returncode != 0:
        fail(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def router_gauge(ns, port, name):
    """A gauge of the router's /metrics, which listens on loopback inside its namespace."""
    fetch = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
             f"'http://127.0.0.1:{port}/metrics', timeout=2).read().decode())")
    p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", fetch],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None
    total = None
    for line in p.stdout.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def cpus():
    return sorted(os.sched_getaffinity(0))


def control_cpus():
    """Where control planes run: every CPU but the last, which forwards (the XDP chain, the DPDK
    forwarding lcore), as an operator would keep them apart. With one CPU, that one."""
    c = cpus()
    return c[:-1] or c


def on_control_cpus():
    """A preexec_fn that moves a child to control_cpus()."""
    where = control_cpus()
    return lambda: os.sched_setaffinity(0, where)


def tsc_hz():
    """The TSC rate the kernel calibrated (dmesg), else the CPU's nominal rate."""
    try:
        log = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
        m = re.findall(r"tsc: Refined TSC clocksource calibration: ([0-9.]+) MHz", log) or \
            re.findall(r"tsc: Detected ([0-9.]+) MHz", log)
        if m:
            return float(m[-1]) * 1e6, "dmesg"
    except OSError:
        pass
    for line in open("/proc/cpuinfo"):
        if line.startswith("cpu MHz"):
            return float(line.split(":")[1]) * 1e6, "/proc/cpuinfo"
    fail("cannot tell the TSC rate")




def router_addresses(ns, fam, next_hop_mac):
    """What every system's router namespace holds: forwarding on, the traffic's source network
    on r1, the next hop's network on r2 and the next hop's MAC (permanent, so nothing waits for
    ARP or ND). Returns the next hop's address, for the routes."""
    if fam == 4:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        cmds = ["addr add 198.18.0.1/15 dev r1", "addr add 10.1.0.1/24 dev r2"]
        via = "10.1.0.2"
    else:
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        cmds = ["addr add 2001:2::1/48 dev r1 nodad", "addr add 2001:db8:1::1/64 dev r2 nodad"]
        via = "2001:db8:1::2"
    cmds = ["link set r1 up", "link set r2 up"] + cmds + [
        f"neigh replace {hop} lladdr {next_hop_mac} dev r2 nud permanent"
        for hop in (via, CHURN_VIA[fam])]
    sh("ip", "-n", ns, "-batch", "-", input="\n".join(cmds) + "\n")
    return via


# The second next hop churn moves routes to and back (same MAC: traffic flows either way).
CHURN_VIA = {4: "10.1.0.3", 6: "2001:db8:1::3"}


class Churn:
    """Route changes through the kernel at `rate` per second while it runs: each of the row's
    routes in turn moves to the other next hop (`ip route replace` lines fed to one
    `ip -batch -`, a hundredth of a second's worth at a time)."""

    def __init__(self, ns, routes, via, rate=1000):
        self.ns, self.routes, self.rate = ns, routes, rate
        self.hops = (CHURN_VIA[routes[0].version], via)
        self.changes = 0
        self.stopping = threading.Event()
        self.proc = subprocess.Popen(["ip", "-n", ns, "-force", "-batch", "-"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=on_control_cpus())
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.started = time.monotonic()
        self.thread.start()

    def run(self):
        tick = 0.01
        start = time.monotonic()
        i = 0
        while not self.stopping.is_set():
            due = int((time.monotonic() - start) * self.rate)
            lines = []
            while self.changes + len(lines) < due:
                n = self.changes + len(lines)
                net = self.routes[n % len(self.routes)]
                hop = self.hops[(n // len(self.routes)) % 2]
                lines.append(f"route replace {net} via {hop} dev r2\n")
            if lines:
                try:
                    self.proc.stdin.write("".join(lines))
                    self.proc.stdin.flush()
                except (BrokenPipeError, OSError):
                    return
                self.changes += len(lines)
            i += 1
            self.stopping.wait(max(0.0, start + i * tick - time.monotonic()))

    def stop(self):
        """Stops, puts every route back on its first next hop, and returns the changes made per
        second."""
        self.stopping.set()
        self.thread.join()
        seconds = time.monotonic() - self.started
        try:
            self.proc.stdin.write("".join(f"route replace {net} via {self.hops[1]} dev r2\n"
                                          for net in self.routes[:min(self.changes,
                                                                      len(self.routes))]))
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        err = self.proc.stderr.read()
        if self.proc.wait() != 0:
            raise RowError(f"the churn's ip -batch failed: {err.strip()[-300:]}")
        return self.changes / seconds


def add_routes(ns, routes, via):
    sh("ip", "-n", ns, "-batch", "-",
       input="".join(f"route add {net} via {via} dev r2\n" for net in routes))


class RouterMetrics:
    """vfplane-router's /metrics in its namespace, and the waits built on them."""

    def __init__(self, ns, port, backend, proc, tail):
        self.ns, self.port, self.prefix, self.proc, self.tail = ns, port, f"vfplane_{backend}_", \
            proc, tail

    def get(self, name):
        return router_gauge(self.ns, self.port, self.prefix + name)

    def still(self, timeout=60):
        """Waits until the route count stops moving and the next hop's MAC is known; returns the
        count."""
        end = time.monotonic() + timeout
        last = None
        while True:
            n = self.get("routes")
            if n is not None and n == last and self.get("neighbours"):
                return n
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router did not learn the next hop: {self.tail()}")
            last = n
            time.sleep(0.3)

    def quiet(self, seconds=1.0, timeout=300):
        """Waits until the router has applied nothing for `seconds`: a million routes added
        through the kernel keep it recompiling for a while after its count is complete, and a
        measurement then would time the control plane's table swaps too."""
        end = time.monotonic() + timeout
        last = None
        while True:
            now = (self.get("syncs_total"), self.get("route_updates_total"))
            if now == last and None not in now:
                return
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router did not settle in {timeout} s: {self.tail()}")
            last = now
            time.sleep(seconds)

    def routes_at_least(self, want, timeout=300, gauge="routes"):
        """Waits until the router has read `want` routes from the kernel, and then until its
        fast path holds at least as many entries."""
        end = time.monotonic() + timeout
        while True:
            n = self.get(gauge)
            if n is not None and n >= want:
                if gauge == "routes":
                    return self.routes_at_least(want, end - time.monotonic(), "table_entries")
                return n
            # The routes are all in the kernel by now: a failed re-read will fail again.
            errors = self.get("sync_errors_total")
            if errors or self.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router did not take the routes ({self.prefix}{gauge} = "
                               f"{n} of {want}, sync errors {errors}): {self.tail()}")
            time.sleep(0.2)
