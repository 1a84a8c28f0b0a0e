"""The XDP rows of the router benchmark, on one chain of veth links:

  vfx-gen: g0 ==veth== r1 [vfx-router] r2 ==veth== s0 :vfx-sink

build/bench/xdp_chain's generator sends the row's frames from g0 with BPF_PROG_TEST_RUN in
live-frames mode, pinned to one CPU; the sink on s0 counts them in XDP and drops them. Every rate
is counted at the sink. The systems, one after the other on the same chain, routes and frames:

  vfplane          vfplane-router --backend xdp --port r1 --port r2
  bpf_fib_lookup   the chain's baseline router on r1 (the kernel's FIB, TTL, MACs, redirect)
  kernel           ip_forward, with a pass-through program on r1 (veth hands frames from an XDP
                   sender only to a link that runs XDP)
  redirect floor   every frame from r1 to r2, no lookup and no rewrite: both veth hops and the
                   sink, with no router

veth runs its peer's NAPI on the CPU that sends, and a live test run lets softirqs run between
its batches, so the whole chain runs on the generator's CPU: cycles per packet are the chain's.
Each row also has the router program's own cost under BPF_PROG_TEST_RUN beside a pass-through
program's, on the same frames and table: every frame once in the chain's order, and warm (a few
frames, each repeated on its own buffer).

The next hop's MAC is r1's own: a rewritten frame is addressed to r1 again, so a test run that
repeats one buffer keeps taking the forwarding path (the sink takes any MAC)."""
import json
import os
import subprocess
import time

from router_bench_common import (PORT_IN_MAC, SRC_MAC, RouterMetrics, RowError, add_routes,
                                 on_control_cpus, router_addresses, router_gauge, sh)

NS_GEN, NS_ROUTER, NS_SINK = "vfx-gen", "vfx-router", "vfx-sink"
R1_MAC = PORT_IN_MAC  # the frames are addressed to it, as for net_pcap0 in the DPDK rows
R2_MAC = "02:00:00:00:00:21"
SINK_MAC = "02:00:00:00:00:20"
SYSTEMS = ("vfplane", "bpf_fib_lookup", "kernel", "redirect floor")
CHURN_SYSTEMS = ("vfplane", "bpf_fib_lookup", "kernel")  # those that follow the kernel's routes
SENT_TTL = 64  # what router_bench_common.frame writes
# Frames a measurement cannot see as lost: the two veth rings (256 each) and a batch in flight.
UNSEEN = 2 * 256 + 1024


def ns_del(*names):
    for n in names:
        subprocess.run(["ip", "netns", "del", n], capture_output=True)


class Chain:
    """The three namespaces and two veth pairs, with the router namespace's addresses, next hop
    and the row's routes in its kernel."""

    def __init__(self, ctx, routes):
        self.ctx = ctx
        ns_del(NS_GEN, NS_ROUTER, NS_SINK)
        for n in (NS_GEN, NS_ROUTER, NS_SINK):
            sh("ip", "netns", "add", n)
            # IPv6 link-local addresses settle at once, not after DAD: their notifications
            # would reach the router mid-measurement, and an address change re-reads its tables.
            for conf in ("all", "default"):
                sh("ip", "netns", "exec", n, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
            sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "-n", NS_GEN, "link", "add", "g0", "address", SRC_MAC, "type", "veth", "peer",
           "name", "r1", "netns", NS_ROUTER, "address", R1_MAC)
        sh("ip", "-n", NS_ROUTER, "link", "add", "r2", "address", R2_MAC, "type", "veth", "peer",
           "name", "s0", "netns", NS_SINK, "address", SINK_MAC)
        sh("ip", "-n", NS_GEN, "link", "set", "g0", "up")
        sh("ip", "-n", NS_SINK, "link", "set", "s0", "up")
        self.via = router_addresses(NS_ROUTER, routes[0].version, R1_MAC)
        t = time.monotonic()
        add_routes(NS_ROUTER, routes, self.via)
        self.route_seconds = time.monotonic() - t
        self.routes = routes

    def close(self):
        ns_del(NS_GEN, NS_ROUTER, NS_SINK)

    def chain_tool(self, ns, *args, timeout=120):
        p = subprocess.run(["ip", "netns", "exec", ns, self.ctx.xdp_chain] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RowError(f"xdp_chain {args[0]} exit {p.returncode}: "
                           f"{p.stderr.strip().splitlines()[-1:] or 'no output'}")
        return json.loads(p.stdout) if p.stdout.strip() else {}


class System:
    """One system on the chain's router namespace: started before its frames, stopped after."""

    def __init__(self, chain, name, logdir):
        self.chain, self.name = chain, name
        self.proc = None
        self.metrics = None
        if name == "vfplane":
            self.start_vfplane(logdir)
        else:
            prog = {"bpf_fib_lookup": "fib", "kernel": "pass", "redirect floor": "floor"}[name]
            chain.chain_tool(NS_ROUTER, "attach", "--prog", prog, "--dev", "r1", "--tx", "r2")

    def start_vfplane(self, logdir):
        ctx, n = self.chain.ctx, len(self.chain.routes)
        self.logpath = os.path.join(logdir, "vfplane-router-xdp.log")
        self.log = open(self.logpath, "w")
        port = 9198
        argv = ["ip", "netns", "exec", NS_ROUTER, ctx.router, "--backend", "xdp",
                "--port", "r1", "--port", "r2", "--max-routes", str(max(65536, n + n // 8)),
                "--metrics-address", f"127.0.0.1:{port}", "--stats-interval", "0",
                "--log-level", "warn"]
        # Its control plane stays off the chain's CPU, as the DPDK rows' main lcore does.
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=on_control_cpus())
        # The routes are in the kernel before it starts: its first full read takes them all.
        self.metrics = RouterMetrics(NS_ROUTER, port, "xdp", self.proc, self.tail)
        self.metrics.routes_at_least(n)
        self.metrics.still()
        self.metrics.quiet()

    def tail(self):
        self.log.flush()
        lines = [l.strip() for l in open(self.logpath, errors="replace") if l.strip()]
        return " | ".join(lines[-3:]) or "no output"

    def forwarded_in_xdp(self):
        """What the system's program forwarded itself so far (None where that is not a
        question: the kernel and the floor)."""
        if self.name == "vfplane":
            return router_gauge(NS_ROUTER, self.metrics.port,
                                'vfplane_xdp_packets_total{verdict="forwarded"}')
        if self.name == "bpf_fib_lookup":
            return -self.chain.chain_tool(NS_ROUTER, "passed", "--dev", "r1")["passed"]
        return None

    def stop(self):
        if self.proc:
            if self.proc.poll() is None:
                self.proc.send_signal(2)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.log.close()
            if os.environ.get("VFPLANE_BENCH_KEEP_LOGS"):
                subprocess.run(["cp", self.logpath, os.environ["VFPLANE_BENCH_KEEP_LOGS"]])
        else:
            subprocess.run(["ip", "-n", NS_ROUTER, "link", "set", "r1", "xdp", "off"],
                           capture_output=True)


def measure(ctx, system, pcap, cost=True):
    """One window of the system on pcap's frames, and its program's own cost."""
    chain = system.chain
    before = system.forwarded_in_xdp()
    out = chain.chain_tool(NS_GEN, "run", "--gen-dev", "g0", "--sink-netns", NS_SINK,
                           "--sink-dev", "s0", "--pcap", pcap, "--seconds", str(ctx.seconds),
                           "--warmup", str(ctx.warmup), "--cpu", str(ctx.chain_cpu),
                           "--sent-ttl", str(SENT_TTL),
                           timeout=ctx.seconds + ctx.warmup + 120)
    after = system.forwarded_in_xdp()
    sent, received = out["sent"], out["received"]
    pps = received / out["seconds"]
    lost = sent - received
    row = {"sent": sent, "received": received, "seconds": round(out["seconds"], 3),
           "lost": lost if lost > UNSEEN else 0, "mpps": round(pps / 1e6, 3),
           "cycles_per_packet": round(ctx.tsc_hz / pps, 1) if pps else None,
           "kernel_ns_per_packet": round(out["kernel_ns_per_packet"], 1)}
    if received == 0:
        raise RowError(f"{system.name}: nothing reached the sink (sent {sent})")
    # The path, proved: a router's frames come with the TTL one lower, and the XDP routers say
    # they forwarded them themselves rather than leaving them to the kernel behind them.
    if system.name != "redirect floor" and out["forwarded"] < received - UNSEEN:
        raise RowError(f"{system.name}: {received - out['forwarded']} of {received} frames "
                       f"reached the sink without the TTL a router leaves")
    if before is not None and after is not None:
        if system.name == "vfplane" and after - before < received - UNSEEN:
            raise RowError(f"vfplane forwarded {after - before:.0f} frames in XDP of the "
                           f"{received} that arrived: the kernel carried the rest")
        if system.name == "bpf_fib_lookup" and before - after > UNSEEN:
            raise RowError(f"bpf_fib_lookup left {before - after:.0f} frames to the kernel")
    if cost and system.name != "kernel":
        # Each frame once, in the chain's order (what the chain sees), and 64 of them 60 times
        # each on their own buffers (the program warm in the caches).
        cold = chain.chain_tool(NS_ROUTER, "cost", "--dev", "r1", "--pcap", pcap,
                                "--expect", "redirect")
        warm = chain.chain_tool(NS_ROUTER, "cost", "--dev", "r1", "--pcap", pcap,
                                "--expect", "redirect", "--samples", "64", "--repeat", "60")
        row["program_ns"] = round(cold["ns_per_packet"], 1)
        row["pass_ns"] = round(cold["pass_ns_per_packet"], 1)
        row["program_warm_ns"] = round(warm["ns_per_packet"], 1)
        row["pass_warm_ns"] = round(warm["pass_ns_per_packet"], 1)
    return row
