"""The DPDK rows of the router benchmark: vfplane-router --backend dpdk, DPDK's l3fwd (LPM) and
testpmd (io), each on one forwarding lcore, reading the same pcap with net_pcap (infinite_rx) and
sending to net_null. Rates come from each process's own DPDK telemetry socket."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

from router_bench_common import (NEXT_HOP_MAC, Churn, RouterMetrics, RowError, add_routes, cpus,
                                 fail, router_addresses, say, sh, skip)


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


def run_vfplane(ctx, pcap, routes, churn=False):
    ns = "vfb-router"
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sh("ip", "netns", "add", ns)
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
        # in one ip -batch, and the measurement once the count has grown by all of them (the
        # connected routes alone could satisfy a wait for ">= N").
        via = router_addresses(ns, routes[0].version, NEXT_HOP_MAC)
        m = RouterMetrics(ns, metrics, "dpdk", r.proc, r.tail)
        before = m.still()
        add_routes(ns, routes, via)
        m.routes_at_least(before + len(routes))
        m.quiet()
        time.sleep(ctx.warmup)
        if not churn:
            return measure(tele, 0, 1, ctx.seconds, ctx.tsc_hz)
        changes = Churn(ns, routes, via, ctx.churn)
        syncs = m.get("syncs_total")
        try:
            row = measure(tele, 0, 1, ctx.seconds, ctx.tsc_hz)
        finally:
            row_rate = changes.stop()
        row["churn_rate"] = round(row_rate)
        row["router_syncs"] = (m.get("syncs_total") or 0) - (syncs or 0)
        return row
    finally:
        if r:
            r.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
