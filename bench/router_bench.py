#!/usr/bin/python3
"""vfplane-router's DPDK fast path beside DPDK's l3fwd (LPM) and testpmd (io), in one run.

Every system forwards the same frames, read by a net_pcap port with infinite_rx from one pcap of
--destinations flows spread over the route table, to a net_null port that drops them, on one
forwarding lcore. Rates come from each process's own DPDK telemetry socket (/ethdev/stats, read
twice, the difference over the window), so all three are counted the same way: the ingress
port's ipackets ("sent" to the forwarder) and the egress port's opackets ("received" at the
sink). Cycles per packet is the TSC rate over the packet rate: the lcore polls all the time.

  router_bench.py --build-dir BUILD [--quick] [--out DIR] [--repetitions N] [--seconds S]

The baselines are built outside the tree, in --cache (default /var/cache/vfplane/bench), from
Debian's dpdk-doc sources with a patch applied here (see patch_l3fwd). Writes
DIR/router-<date>.json and .md (and PNG plots when matplotlib is there); prints the table.
--quick runs one frame size and the small tables once, for a few seconds: it checks that every
row runs and that the loss check works, and asserts no timing. Exit 0, 1 naming what failed, 77
when the machine cannot run it (not root, a tool missing). VFPLANE_BENCH_KEEP_LOGS=DIR copies
each forwarder's log there (the run's own dir is removed at the end).
"""
import argparse
import datetime
import ipaddress
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
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


# ---- DPDK telemetry ----------------------------------------------------------------------------

class Telemetry:
    """DPDK's telemetry socket (v2: SOCK_SEQPACKET, one JSON answer per command)."""

    def __init__(self, prefix, timeout):
        self.path = f"/var/run/dpdk/{prefix}/dpdk_telemetry.v2"
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.connect(self.path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > end:
                    raise RuntimeError(f"no DPDK telemetry socket at {self.path}")
                time.sleep(0.2)
        json.loads(self.sock.recv(65536))  # the greeting

    def query(self, cmd):
        self.sock.send(cmd.encode())
        return json.loads(self.sock.recv(1 << 20))[cmd.split(",")[0]]

    def stats(self, port):
        s = self.query(f"/ethdev/stats,{port}")
        return s["ipackets"], s["opackets"], s.get("imissed", 0), s.get("oerrors", 0)

    def close(self):
        self.sock.close()


def sample(tele, port_in, port_out):
    """Packets in at port_in, and out at port_out at the same instant: the egress counter is read
    before and after the ingress one and interpolated to its time, so that the backlog (in minus
    out) is what the forwarder holds or has dropped, not the gap between two reads."""
    t0, out0 = time.monotonic(), tele.stats(port_out)[1]
    t1, inn = time.monotonic(), tele.stats(port_in)[0]
    t2, out2 = time.monotonic(), tele.stats(port_out)[1]
    out = out0 + (out2 - out0) * ((t1 - t0) / (t2 - t0) if t2 > t0 else 0)
    return t1, inn, out, t2 - t0


def forwarding(tele, port_out, proc, what, timeout=300):
    """Waits until frames leave port_out: a process may load its tables after its EAL is up."""
    end = time.monotonic() + timeout
    first = tele.stats(port_out)[1]
    while tele.stats(port_out)[1] == first:
        if proc.poll() is not None:
            raise RowError(f"{what} exited {proc.returncode} before it forwarded anything")
        if time.monotonic() > end:
            raise RowError(f"{what} forwarded nothing in {timeout} s")
        time.sleep(0.1)


def measure(tele, port_in, port_out, seconds, tsc_hz):
    """One window: packets in ("sent" to the forwarder), out ("received" at the sink), the rate
    out, and what went in but not out (lost)."""
    ta, ia, oa, spread_a = sample(tele, port_in, port_out)
    time.sleep(seconds)
    tb, ib, ob, spread_b = sample(tele, port_in, port_out)
    sent, received = ib - ia, round(ob - oa)
    pps = received / (tb - ta)
    # The interpolation is as good as the reads are quick: what passes while they run, and a
    # ring's worth held inside, is below what the check can see.
    unseen = pps * (spread_a + spread_b) + 1024
    lost = round((ib - ob) - (ia - oa))
    return {"sent": sent, "received": received, "seconds": round(tb - ta, 3),
            "lost": lost if lost > unseen else 0,
            "mpps": round(pps / 1e6, 3),
            "cycles_per_packet": round(tsc_hz / pps, 1) if pps else None}


# ---- the systems ------------------------------------------------------------------------------

def patch_l3fwd(src):
    """The harness's patch to Debian's l3fwd example: vdevs refuse RX checksum offload (ask only
    for what the device has), a pool that holds a preloaded pcap, and tables for 1M routes."""
    edits = {
        "main.c": [
            ("\t\tlocal_port_conf.rx_adv_conf.rss_conf.rss_hf &=",
             "\t\tlocal_port_conf.rxmode.offloads &= dev_info.rx_offload_capa;\n"
             "\t\tlocal_port_conf.rx_adv_conf.rss_conf.rss_hf &="),
            ("rxq_conf.offloads = port_conf.rxmode.offloads;",
             "rxq_conf.offloads = port_conf.rxmode.offloads & dev_info.rx_offload_capa;"),
            ("(unsigned)8192)", "(unsigned)65536)"),
        ],
        "l3fwd_lpm.c": [
            ("#define IPV4_L3FWD_LPM_MAX_RULES         1024",
             "#define IPV4_L3FWD_LPM_MAX_RULES         (1 << 21)"),
            ("#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 8)",
             "#define IPV4_L3FWD_LPM_NUMBER_TBL8S (1 << 16)"),
            ("#define IPV6_L3FWD_LPM_MAX_RULES         1024",
             "#define IPV6_L3FWD_LPM_MAX_RULES         (1 << 21)"),
        ],
    }
    for name, pairs in edits.items():
        p = os.path.join(src, name)
        text = open(p).read()
        for old, new in pairs:
            if old not in text:
                fail(f"the l3fwd patch does not apply to {p}: no {old.strip()!r}")
            text = text.replace(old, new, 1)
        open(p, "w").write(text)


def build_l3fwd(cache):
    examples = "/usr/share/dpdk/examples"
    if not os.path.isdir(f"{examples}/l3fwd"):
        skip("DPDK's l3fwd source is missing (Debian's dpdk-doc; scripts/setup installs it)")
    binary = os.path.join(cache, "l3fwd", "build", "l3fwd-shared")
    stamp = os.path.join(cache, "l3fwd", ".patched")
    if os.path.exists(binary) and os.path.exists(stamp):
        return binary
    say("building l3fwd from dpdk-doc's examples (once)")
    shutil.rmtree(os.path.join(cache, "l3fwd"), ignore_errors=True)
    os.makedirs(cache, exist_ok=True)
    shutil.copytree(f"{examples}/l3fwd", os.path.join(cache, "l3fwd"))
    shutil.rmtree(os.path.join(cache, "common"), ignore_errors=True)
    shutil.copytree(f"{examples}/common", os.path.join(cache, "common"))
    patch_l3fwd(os.path.join(cache, "l3fwd"))
    log = os.path.join(cache, "l3fwd-build.log")
    with open(log, "w") as out:
        rc = subprocess.call(["make", "-C", os.path.join(cache, "l3fwd"), "shared"],
                             stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        fail(f"l3fwd did not build (make exit {rc}; see {log})")
    open(stamp, "w").close()
    return binary


class Run:
    """One forwarder process, its telemetry, and the teardown."""

    def __init__(self, argv, prefix, log, netns=None):
        self.prefix = prefix
        self.log = open(log, "w")
        cmd = (["ip", "netns", "exec", netns] if netns else []) + argv
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE, start_new_session=True)
        self.logpath = log

    def telemetry(self, timeout=60):
        try:
            return Telemetry(self.prefix, timeout)
        except RuntimeError as e:
            raise RowError(f"{e}; the process exited {self.proc.poll()}: {self.tail()}")

    def tail(self):
        self.log.flush()
        lines = [l.strip() for l in open(self.logpath, errors="replace") if l.strip()]
        return " | ".join(lines[-3:]) or "no output"

    def stop(self):
        if os.environ.get("VFPLANE_BENCH_KEEP_LOGS"):
            shutil.copy(self.logpath, os.environ["VFPLANE_BENCH_KEEP_LOGS"])
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        shutil.rmtree(f"/var/run/dpdk/{self.prefix}", ignore_errors=True)


def eal(prefix, lcores, mem_mb, pcap):
    return ["--no-huge", "--no-pci", "-m", str(mem_mb), "--file-prefix", prefix,
            "--log-level=error", "--lcores", lcores,
            "--vdev", f"net_pcap0,rx_pcap={pcap},tx_pcap=/dev/null,infinite_rx=1",
            "--vdev", "net_null0,no-rx=1"]


def cpus():
    return sorted(os.sched_getaffinity(0))


def run_testpmd(ctx, pcap):
    c = cpus()
    r = Run(["dpdk-testpmd"] + eal("vfb-testpmd", f"0@{c[0]},1@{c[-1]}", 1024, pcap) +
            ["--", "--forward-mode=io", "--nb-cores=1", "--auto-start", "--total-num-mbufs=65536",
             "--no-lsc-interrupt"], "vfb-testpmd", os.path.join(ctx.tmp, "testpmd.log"))
    try:
        tele = r.telemetry()
        forwarding(tele, 1, r.proc, "dpdk-testpmd")
        time.sleep(ctx.warmup)
        return measure(tele, 0, 1, ctx.seconds, ctx.tsc_hz)
    finally:
        r.stop()


def rule_files(ctx, routes):
    """l3fwd's route files: every route of the row to port 1, and one of the other family."""
    v4 = os.path.join(ctx.tmp, "l3fwd-v4.cfg")
    v6 = os.path.join(ctx.tmp, "l3fwd-v6.cfg")
    fam = routes[0].version
    with open(v4, "w") as f4, open(v6, "w") as f6:
        for net in routes:
            (f4 if fam == 4 else f6).write(f"R{net} 1\n")
        if fam == 4:
            f6.write("R2400::/12 1\n")
        else:
            f4.write("R16.0.0.0/4 1\n")
    return v4, v6


def run_l3fwd(ctx, pcap, routes):
    v4, v6 = rule_files(ctx, routes)
    c = cpus()
    r = Run([ctx.l3fwd] + eal("vfb-l3fwd", f"0@{c[-1]}", 2048, pcap) +
            ["--", "-p", "0x3", "--config", "(0,0,0),(1,0,0)", "--lookup", "lpm",
             "--parse-ptype", "--rule_ipv4", v4, "--rule_ipv6", v6,
             "--eth-dest", f"1,{NEXT_HOP_MAC}"], "vfb-l3fwd", os.path.join(ctx.tmp, "l3fwd.log"))
    try:
        tele = r.telemetry(timeout=120)
        forwarding(tele, 1, r.proc, "l3fwd")  # it loads its routes after the EAL is up
        time.sleep(ctx.warmup)
        return measure(tele, 0, 1, ctx.seconds, ctx.tsc_hz)
    finally:
        r.stop()


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


def run_vfplane(ctx, pcap, routes):
    ns = "vfb-router"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sh("ip", "netns", "add", ns)
    fam = routes[0].version
    r = None
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        metrics = 9199
        argv = [ctx.router, "--backend", "dpdk", "--lcores", "1",
                "--port", f"r1=net_pcap0,rx_pcap={pcap},tx_pcap=/dev/null,infinite_rx=1",
                "--port", "r2=net_null0,no-rx=1",
                "--max-routes", str(max(65536, len(routes) + len(routes) // 8)), "--mbufs", "65536",
                "--metrics-address", f"127.0.0.1:{metrics}", "--stats-interval", "0",
                "--log-level", "warn",
                "--", "--no-huge", "-m", "3072", "--file-prefix", "vfb-router", "--log-level=error"]
        r = Run(argv, "vfb-router", os.path.join(ctx.tmp, "vfplane-router.log"), netns=ns)
        tele = r.telemetry()
        end = time.monotonic() + 60
        while any(subprocess.run(["ip", "-n", ns, "link", "show", t], capture_output=True).returncode
                  for t in ("r1", "r2")):
            if r.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router made no TAP mirrors r1 and r2: {r.tail()}")
            time.sleep(0.1)
        # The kernel is the control plane: addresses on the TAP mirrors and the next hop's MAC
        # first; once the fast path knows the MAC and its route count is still, the row's routes
        # in one ip -batch, and the measurement once the count has grown by all of them.
        cmds = ["link set r1 up", "link set r2 up",
                "addr add 198.18.0.1/15 dev r1" if fam == 4 else "addr add 2001:2::1/48 dev r1",
                "addr add 10.1.0.1/24 dev r2" if fam == 4 else "addr add 2001:db8:1::1/64 dev r2",
                "neigh add 10.1.0.2 lladdr %s dev r2 nud permanent" % NEXT_HOP_MAC if fam == 4 else
                "neigh add 2001:db8:1::2 lladdr %s dev r2 nud permanent" % NEXT_HOP_MAC]
        via = "10.1.0.2" if fam == 4 else "2001:db8:1::2"
        if fam == 6:
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.r2.accept_dad=0")
        else:
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", ns, "-batch", "-", input="\n".join(cmds) + "\n")
        gauge = "vfplane_dpdk_routes"
        end = time.monotonic() + 60
        last = None
        while True:
            n = router_gauge(ns, metrics, gauge)
            if n is not None and n == last and router_gauge(ns, metrics, "vfplane_dpdk_neighbours"):
                break
            if r.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router did not learn the next hop: {r.tail()}")
            last = n
            time.sleep(0.3)
        want = last + len(routes)
        sh("ip", "-n", ns, "-batch", "-",
           input="".join(f"route add {net} via {via} dev r2\n" for net in routes))
        end = time.monotonic() + 300
        while True:
            n = router_gauge(ns, metrics, gauge)
            if n is not None and n >= want:
                break
            # The routes are all in the kernel by now (ip -batch returned): a failed re-read
            # will fail again.
            errors = router_gauge(ns, metrics, "vfplane_dpdk_sync_errors_total")
            if errors or r.proc.poll() is not None or time.monotonic() > end:
                raise RowError(f"vfplane-router did not take the {len(routes)} routes ({gauge} = "
                               f"{n} of {want}, sync errors {errors}): {r.tail()}")
            time.sleep(0.2)
        time.sleep(ctx.warmup)
        return measure(tele, 0, 1, ctx.seconds, ctx.tsc_hz)
    finally:
        if r:
            r.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ---- the run ----------------------------------------------------------------------------------

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


def header(ctx):
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown")
    dpdk = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                          text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ctx.root, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return {"cpu": model, "cpus": len(cpus()), "tsc_ghz": round(ctx.tsc_hz / 1e9, 3),
            "tsc_source": ctx.tsc_source, "kernel": platform.release(), "dpdk": dpdk,
            "pmd": "net_pcap (infinite_rx) -> net_null (no-rx)", "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "repetitions": ctx.repetitions, "seconds": ctx.seconds,
            "note": "virtual ports on a VM: no NIC figures, no line-rate comparison"}


def markdown(head, rows):
    out = [f"# vfplane-router beside l3fwd and testpmd ({head['date']})", "",
           f"{head['cpu']}, {head['cpus']} CPUs, TSC {head['tsc_ghz']} GHz, kernel "
           f"{head['kernel']}, DPDK {head['dpdk']}, {head['pmd']}, commit {head['commit']}. "
           f"Medians of {head['repetitions']} runs of {head['seconds']} s; one forwarding lcore. "
           f"{head['note']}.", "",
           "| family | frame B | routes | system | Mpps | cycles/pkt | vs l3fwd (cycles) | "
           "loss | runs (Mpps) |",
           "|---|---|---|---|---|---|---|---|---|"]
    l3 = {(r["family"], r["frame_bytes"], r["routes"]): r for r in rows
          if r["system"] == "l3fwd" and "error" not in r}
    for r in rows:
        if "error" in r:
            out.append(f"| IPv{r['family']} | {r['frame_bytes']} | {r['routes']} | {r['system']} | "
                       f"did not run: {r['error'][:200]} | | | | |")
            continue
        base = l3.get((r["family"], r["frame_bytes"], r["routes"]))
        ratio = (f"{r['cycles_per_packet'] / base['cycles_per_packet']:.2f}x"
                 if base and r["cycles_per_packet"] and base["cycles_per_packet"] else "")
        out.append(f"| IPv{r['family']} | {r['frame_bytes']} | {r['routes']} | {r['system']} | "
                   f"{r['mpps']} | {r['cycles_per_packet']} | {ratio} | {r['loss']} | "
                   f"{', '.join(str(x) for x in r['runs_mpps'])} |")
    return "\n".join(out) + "\n"


def plots(out_base, rows):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib is missing: no plots (python3-matplotlib)")
        return []
    def line_plot(path, title, xlabel, ylabel, series, logx=False):
        fig, ax = plt.subplots(figsize=(7, 4))
        for label, pts in series.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
        if logx:
            ax.set_xscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        ax.legend()
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(path)

    written = []
    for fam in (4, 6):
        fr = [r for r in rows if r["family"] == fam and "error" not in r]
        if not fr:
            continue
        small = min(r["routes"] for r in fr)
        line_plot(f"{out_base}-mpps-ipv{fam}.png", f"IPv{fam}, {small} route(s): Mpps by frame size",
                  "frame bytes", "Mpps (one lcore)",
                  {system: sorted((r["frame_bytes"], r["mpps"]) for r in fr
                                  if r["system"] == system and r["routes"] == small)
                   for system in dict.fromkeys(r["system"] for r in fr)})
        size = min(r["frame_bytes"] for r in fr)
        line_plot(f"{out_base}-cycles-ipv{fam}.png",
                  f"IPv{fam}, {size}-byte frames: cycles per packet by route count",
                  "routes", "cycles per packet",
                  {system: sorted((r["routes"], r["cycles_per_packet"]) for r in fr
                                  if r["system"] == system and r["frame_bytes"] == size)
                   for system in dict.fromkeys(r["system"] for r in fr if r["system"] != "testpmd")},
                  logx=True)
    return written


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="where the report goes (default bench/results)")
    ap.add_argument("--cache", default=os.environ.get("VFPLANE_BENCH_CACHE",
                                                      "/var/cache/vfplane/bench"))
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--destinations", type=int, default=4096)
    ap.add_argument("--families", default="4,6")
    ap.add_argument("--frames", default="64,128,256,512,1024,1518")
    ap.add_argument("--routes", default="1,10000,1000000")
    a = ap.parse_args()

    if os.geteuid() != 0:
        skip("needs root (network namespaces, DPDK's telemetry dirs)")
    for tool in ("dpdk-testpmd", "make", "ip"):
        if shutil.which(tool) is None:
            skip(f"{tool} is missing (scripts/setup installs it)")
    ctx = Ctx()
    ctx.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ctx.router = os.path.join(a.build_dir, "dataplane", "cmd", "vfplane-router")
    if not os.access(ctx.router, os.X_OK):
        skip(f"{ctx.router} is not built (DPDK off?)")
    ctx.tsc_hz, ctx.tsc_source = tsc_hz()
    ctx.repetitions, ctx.seconds, ctx.warmup = a.repetitions, a.seconds, 1.0
    families = [int(x) for x in a.families.split(",")]
    frames = [int(x) for x in a.frames.split(",")]
    route_counts = [int(x) for x in a.routes.split(",")]
    if a.quick:
        ctx.repetitions, ctx.seconds, ctx.warmup = 1, 0.5, 0.2
        frames, route_counts = [64], [1, 10000]
    ctx.l3fwd = build_l3fwd(a.cache)
    out_dir = a.out or os.path.join(ctx.root, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    head = header(ctx)
    rows = []
    problems = []
    with tempfile.TemporaryDirectory(prefix="vfplane-router-bench.") as tmp:
        ctx.tmp = tmp
        for fam in families:
            for n in route_counts:
                routes = routes_of(fam, n)
                dsts = destinations(routes, a.destinations)
                for size in frames:
                    size = max(size, MIN_FRAME[fam])
                    pcap = os.path.join(tmp, f"in-v{fam}-{size}.pcap")
                    traffic(pcap, fam, size, dsts)
                    runs = {"testpmd": [], "l3fwd": [], "vfplane": []}
                    errors = {}
                    systems = {"testpmd": lambda: run_testpmd(ctx, pcap),
                               "l3fwd": lambda: run_l3fwd(ctx, pcap, routes),
                               "vfplane": lambda: run_vfplane(ctx, pcap, routes)}
                    for rep in range(ctx.repetitions):
                        # Interleaved, so drift on a noisy machine hits every system alike.
                        for system, run in systems.items():
                            if system in errors:
                                continue
                            try:
                                runs[system].append(run())
                            except RowError as e:
                                errors[system] = str(e)
                    for system, msg in errors.items():
                        what = f"{system} IPv{fam} {size} B {n} routes"
                        problems.append(f"{what}: {msg}")
                        rows.append({"system": system, "backend": "dpdk", "family": fam,
                                     "frame_bytes": size, "routes": n, "destinations": len(dsts),
                                     "lcores": 1, "error": msg})
                        say(f"{what}: FAILED: {msg}")
                    for system, rs in runs.items():
                        if system in errors:
                            continue
                        med = statistics.median(r["mpps"] for r in rs)
                        best = min(rs, key=lambda r: abs(r["mpps"] - med))
                        sent = sum(r["sent"] for r in rs)
                        received = sum(r["received"] for r in rs)
                        loss = sum(r["lost"] for r in rs)
                        row = {"system": system, "backend": "dpdk", "family": fam,
                               "frame_bytes": size, "routes": n, "destinations": len(dsts),
                               "lcores": 1, "mpps": med,
                               "cycles_per_packet": best["cycles_per_packet"],
                               "sent": sent, "received": received, "loss": loss, "churn": False,
                               "runs_mpps": [r["mpps"] for r in rs]}
                        rows.append(row)
                        say(f"IPv{fam} {size} B {n} routes {system}: {med} Mpps, "
                            f"{row['cycles_per_packet']} cycles/pkt, sent {sent} received "
                            f"{received}")
                        if received == 0:
                            problems.append(f"{system} IPv{fam} {size} B {n} routes forwarded "
                                            f"nothing (sent {sent})")
                        elif loss:
                            problems.append(f"{system} IPv{fam} {size} B {n} routes lost {loss} "
                                            f"of {sent} packets")
        if a.quick:
            # The loss check's own control: traffic the forwarder has no route for must show as
            # lost, or the check sees nothing.
            routes = routes_of(4, 1)
            unrouted = [ipaddress.ip_address("100.64.0.0") + 1 + i for i in range(256)]
            pcap = os.path.join(tmp, "unrouted.pcap")
            traffic(pcap, 4, 64, unrouted)
            try:
                c = run_vfplane(ctx, pcap, routes)
                if c["lost"] <= c["sent"] // 2:
                    problems.append(f"the loss check missed traffic with no route: sent "
                                    f"{c['sent']}, received {c['received']}, lost {c['lost']}")
                else:
                    say(f"loss check control: {c['lost']} of {c['sent']} unrouted frames lost, "
                        f"as they must be")
            except RowError as e:
                problems.append(f"the loss check's control did not run: {e}")
    stamp = datetime.date.today().isoformat() + ("-quick" if a.quick else "")
    base = os.path.join(out_dir, f"router-{stamp}")
    with open(base + ".json", "w") as f:
        json.dump({"header": head, "rows": rows}, f, indent=1)
    md = markdown(head, rows)
    pngs = plots(base, rows)
    with open(base + ".md", "w") as f:
        f.write(md)
        for p in pngs:
            f.write(f"\n![{os.path.basename(p)}]({os.path.basename(p)})\n")
    print(md)
    say(f"wrote {base}.json, {base}.md" + (f" and {len(pngs)} plots" if pngs else ""))
    if problems:
        for p in problems:
            say(f"FAILED: {p}")
        sys.exit(1)


if __name__ == "__main__":
    main()
