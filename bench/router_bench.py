#!/usr/bin/python3
"""vfplane-router beside the forwarders users would pick instead, in one run.

DPDK rows (router_bench_dpdk.py): vfplane-router --backend dpdk, DPDK's l3fwd (LPM) and testpmd
(io), each on one forwarding lcore, on the same net_pcap (infinite_rx) frames to net_null, rates
from each process's own telemetry socket.
XDP rows (router_bench_xdp.py): vfplane-router --backend xdp, a bpf_fib_lookup router, kernel
forwarding and a redirect-only floor, on one veth chain fed by a live-frames BPF_PROG_TEST_RUN
generator and counted at an XDP sink; each with its program's own cost beside a pass-through
program's.

Every system of a backend forwards the same frames (--destinations flows spread over the route
table) with the same routes and next hop, repetitions interleaved so drift on a noisy machine
hits every system alike. Cycles per packet is the TSC rate over the packet rate.

  router_bench.py --build-dir BUILD [--quick] [--backends dpdk,xdp] [--out DIR]
                  [--repetitions N] [--seconds S] [--frames ...] [--routes ...]

The DPDK baselines are built outside the tree, in --cache (default /var/cache/vfplane/bench),
from Debian's dpdk-doc sources with a patch applied here. Writes DIR/router-<date>.json and .md
(and PNG plots when matplotlib is there), rewritten after every row group so an interrupted run
keeps what it measured; prints the table. --quick runs one frame size and the small tables once,
for a few seconds: it checks that every row runs and that the loss checks work, and asserts no
timing. Exit 0, 1 naming what failed, 77 when the machine cannot run it (not root, a tool
missing). VFPLANE_BENCH_KEEP_LOGS=DIR copies each forwarder's log there.
"""
import argparse
import datetime
import ipaddress
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile

import router_bench_dpdk as dpdk
import router_bench_xdp as xdp
from router_bench_common import (MIN_FRAME, Churn, RowError, control_cpus, cpus, destinations,
                                 routes_of, say, skip, traffic, tsc_hz)


def header(ctx):
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                  if l.startswith("model name")), "unknown")
    dpdk_version = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                                  text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", ctx.root, "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return {"cpu": model, "cpus": len(cpus()), "tsc_ghz": round(ctx.tsc_hz / 1e9, 3),
            "tsc_source": ctx.tsc_source, "kernel": platform.release(), "dpdk": dpdk_version,
            "pmd": "net_pcap (infinite_rx) -> net_null (no-rx)",
            "xdp_chain": "live-frames BPF_PROG_TEST_RUN generator -> veth -> router -> veth -> "
                         "XDP sink, all on one CPU",
            "forwarding_cpu": cpus()[-1], "control_cpus": control_cpus(),
            "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "repetitions": ctx.repetitions, "seconds": ctx.seconds,
            "note": "virtual ports on a VM: no NIC figures, no line-rate comparison"}


def ratio(a, b, digits=2):
    return f"{a / b:.{digits}f}x" if a and b else ""


def markdown(head, rows):
    out = [f"# vfplane-router beside the forwarders users would pick instead ({head['date']})", "",
           f"{head['cpu']}, {head['cpus']} CPUs, TSC {head['tsc_ghz']} GHz, kernel "
           f"{head['kernel']}, DPDK {head['dpdk']}, commit {head['commit']}. Medians of "
           f"{head['repetitions']} runs of {head['seconds']} s. Forwarding on CPU "
           f"{head['forwarding_cpu']}; control planes (vfplane-router's daemon on XDP, the DPDK "
           f"main lcores, the churn's ip) on CPU {','.join(map(str, head['control_cpus']))}. "
           f"{head['note']}.", ""]
    key = lambda r: (r["family"], r["frame_bytes"], r["routes"])
    ok = [r for r in rows if "error" not in r and not r["churn"]]
    by = {(r["backend"], r["system"]) + key(r): r for r in ok}
    steady = [r for r in rows if not r["churn"]]
    dp = [r for r in steady if r["backend"] == "dpdk"]
    if dp:
        out += [f"## DPDK: {head['pmd']}, one forwarding lcore", "",
                "| family | frame B | routes | system | Mpps | cycles/pkt | vs l3fwd (cycles) | "
                "loss | runs (Mpps) |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in dp:
            lead = f"| IPv{r['family']} | {r['frame_bytes']} | {r['routes']} | {r['system']} |"
            if "error" in r:
                out.append(f"{lead} did not run: {r['error'][:200]} | | | | |")
                continue
            base = by.get(("dpdk", "l3fwd") + key(r))
            out.append(f"{lead} {r['mpps']} | {r['cycles_per_packet']} | "
                       f"{ratio(r['cycles_per_packet'], base and base['cycles_per_packet'])} | "
                       f"{r['loss']} | {', '.join(str(x) for x in r['runs_mpps'])} |")
        out.append("")
    xd = [r for r in steady if r["backend"] == "xdp"]
    if xd:
        out += [f"## XDP: {head['xdp_chain']}", "",
                "Rates at the sink. \"vs\" columns: packet rate over the bpf_fib_lookup router's "
                "and kernel forwarding's, the chain's cycles over the redirect floor's, and the "
                "program's own ns under BPF_PROG_TEST_RUN over a pass-through program's: each "
                "frame once in the chain's order (the kernel's timer is in both), and warm (64 "
                "frames, each 60 times on its own buffer).", "",
                "| family | frame B | routes | system | Mpps | cycles/pkt | kernel ns/pkt | "
                "vs fib | vs kernel | vs floor | program ns | vs pass | warm ns | vs pass | loss | "
                "runs (Mpps) |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in xd:
            lead = f"| IPv{r['family']} | {r['frame_bytes']} | {r['routes']} | {r['system']} |"
            if "error" in r:
                out.append(f"{lead} did not run: {r['error'][:200]} |" + " |" * 11)
                continue
            fib = by.get(("xdp", "bpf_fib_lookup") + key(r))
            kern = by.get(("xdp", "kernel") + key(r))
            floor = by.get(("xdp", "redirect floor") + key(r))
            out.append(
                f"{lead} {r['mpps']} | {r['cycles_per_packet']} | {r['kernel_ns_per_packet']} | "
                f"{ratio(r['mpps'], fib and fib['mpps']) if r['system'] != 'bpf_fib_lookup' else ''} | "
                f"{ratio(r['mpps'], kern and kern['mpps']) if r['system'] != 'kernel' else ''} | "
                f"{ratio(r['cycles_per_packet'], floor and floor['cycles_per_packet'])} | "
                f"{r.get('program_ns', '')} | {ratio(r.get('program_ns'), r.get('pass_ns'), 1)} | "
                f"{r.get('program_warm_ns', '')} | "
                f"{ratio(r.get('program_warm_ns'), r.get('pass_warm_ns'), 1)} | {r['loss']} | {', '.join(str(x) for x in r['runs_mpps'])} |")
        out.append("")
    ch = [r for r in rows if r["churn"]]
    if ch:
        out += ["## Under route churn", "",
                "The same traffic while route changes go through the kernel (each of the row's "
                "routes in turn to the other next hop), against the steady rate of the same run.",
                "",
                "| backend | family | frame B | routes | system | Mpps | steady Mpps | of steady | "
                "changes/s | router syncs | loss | runs (Mpps) |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ch:
            lead = (f"| {r['backend']} | IPv{r['family']} | {r['frame_bytes']} | {r['routes']} | "
                    f"{r['system']} |")
            if "error" in r:
                out.append(f"{lead} did not run: {r['error'][:200]} |" + " |" * 6)
                continue
            base = by.get((r["backend"], r["system"]) + key(r))
            out.append(f"{lead} {r['mpps']} | {base['mpps'] if base else ''} | "
                       f"{ratio(r['mpps'], base and base['mpps'])} | {r.get('churn_rate', '')} | "
                       f"{r.get('router_syncs', '')} | {r['loss']} | "
                       f"{', '.join(str(x) for x in r['runs_mpps'])} |")
        out.append("")
    return "\n".join(out)


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
    for backend in ("dpdk", "xdp"):
        for fam in (4, 6):
            fr = [r for r in rows if r["family"] == fam and r["backend"] == backend
                  and "error" not in r and not r["churn"]]
            if not fr:
                continue
            small = min(r["routes"] for r in fr)
            systems = list(dict.fromkeys(r["system"] for r in fr))
            # router-<date>-xdp-mpps-ipv4.png: the backend once, whether the run named it or not.
            name = out_base if out_base.endswith(f"-{backend}") else f"{out_base}-{backend}"
            line_plot(f"{name}-mpps-ipv{fam}.png",
                      f"{backend.upper()}, IPv{fam}, {small} route(s): Mpps by frame size",
                      "frame bytes", "Mpps (one CPU)",
                      {s: sorted((r["frame_bytes"], r["mpps"]) for r in fr
                                 if r["system"] == s and r["routes"] == small) for s in systems})
            size = min(r["frame_bytes"] for r in fr)
            line_plot(f"{name}-cycles-ipv{fam}.png",
                      f"{backend.upper()}, IPv{fam}, {size}-byte frames: cycles per packet by "
                      f"route count", "routes", "cycles per packet",
                      {s: sorted((r["routes"], r["cycles_per_packet"]) for r in fr
                                 if r["system"] == s and r["frame_bytes"] == size)
                       for s in systems if s not in ("testpmd", "redirect floor")},
                      logx=True)
    return written


class Report:
    """The rows so far, written out after every group: an interrupted run keeps them."""

    def __init__(self, base, head, quick):
        self.base, self.head, self.quick = base, head, quick
        self.rows, self.problems, self.warnings = [], [], []

    def add(self, backend, fam, size, n, ndst, lcores, system, runs, error, churn=False):
        what = (f"{backend} {system} IPv{fam} {size} B {n} routes" +
                (" under route churn" if churn else ""))
        common = {"system": system, "backend": backend, "family": fam, "frame_bytes": size,
                  "routes": n, "destinations": ndst, "lcores": lcores, "churn": churn}
        if error:
            self.problems.append(f"{what}: {error}")
            self.rows.append(dict(common, error=error))
            say(f"{what}: FAILED: {error}")
            return
        med = statistics.median(r["mpps"] for r in runs)
        best = min(runs, key=lambda r: abs(r["mpps"] - med))
        sent = sum(r["sent"] for r in runs)
        received = sum(r["received"] for r in runs)
        loss = sum(r["lost"] for r in runs)
        row = dict(common, mpps=med, cycles_per_packet=best["cycles_per_packet"], sent=sent,
                   received=received, loss=loss, runs_mpps=[r["mpps"] for r in runs])
        for extra in ("kernel_ns_per_packet", "program_ns", "pass_ns", "program_warm_ns",
                      "pass_warm_ns", "churn_rate", "router_syncs"):
            if extra in best:
                row[extra] = statistics.median(r[extra] for r in runs)
        self.rows.append(row)
        say(f"{what}: {med} Mpps, {row['cycles_per_packet']} cycles/pkt, sent {sent} received "
            f"{received}" + (f", program {row['program_ns']} ns (pass {row['pass_ns']})"
                             if "program_ns" in row else ""))
        if received == 0:
            self.problems.append(f"{what} forwarded nothing (sent {sent})")
        elif loss:
            # The quick run checks the machinery, not the machine: a burst lost while another
            # task held the CPU is in its table, and only the full run fails on it.
            (self.warnings if self.quick else self.problems).append(
                f"{what} lost {loss} of {sent} packets")

    def write(self, final=False):
        with open(self.base + ".json", "w") as f:
            json.dump({"header": self.head, "rows": self.rows, "complete": final}, f, indent=1)
        md = markdown(self.head, self.rows)
        pngs = plots(self.base, self.rows) if final else []
        with open(self.base + ".md", "w") as f:
            f.write(md)
            for p in pngs:
                f.write(f"\n![{os.path.basename(p)}]({os.path.basename(p)})\n")
        return md, pngs


def dpdk_rows(ctx, report, fam, n, routes, dsts, frames):
    for size in frames:
        pcap = os.path.join(ctx.tmp, f"in-v{fam}-{size}.pcap")
        traffic(pcap, fam, size, dsts)
        runs = {"testpmd": [], "l3fwd": [], "vfplane": []}
        errors = {}
        systems = {"testpmd": lambda: dpdk.run_testpmd(ctx, pcap),
                   "l3fwd": lambda: dpdk.run_l3fwd(ctx, pcap, routes),
                   "vfplane": lambda: dpdk.run_vfplane(ctx, pcap, routes)}
        for _ in range(ctx.repetitions):
            for system, run in systems.items():
                if system in errors:
                    continue
                try:
                    runs[system].append(run())
                except RowError as e:
                    errors[system] = str(e)
        for system in systems:
            report.add("dpdk", fam, size, n, len(dsts), 1, system, runs[system],
                       errors.get(system))
        if ctx.churn and size == frames[0]:
            # vfplane follows the kernel's routes; l3fwd's are fixed at start.
            runs, error = [], None
            for _ in range(ctx.repetitions):
                try:
                    runs.append(dpdk.run_vfplane(ctx, pcap, routes, churn=True))
                except RowError as e:
                    error = str(e)
                    break
            report.add("dpdk", fam, size, n, len(dsts), 1, "vfplane", runs, error, churn=True)
        report.write()


def xdp_rows(ctx, report, fam, n, routes, dsts, frames):
    pcaps = {}
    for size in frames:
        pcaps[size] = os.path.join(ctx.tmp, f"xdp-v{fam}-{size}.pcap")
        traffic(pcaps[size], fam, size, dsts)
    runs = {(s, size): [] for s in xdp.SYSTEMS for size in frames}
    churned = {s: [] for s in xdp.CHURN_SYSTEMS}
    errors = {}
    chain = xdp.Chain(ctx, routes)
    say(f"xdp IPv{fam} {n} routes: chain up, routes in the kernel in {chain.route_seconds:.1f} s")
    try:
        for _ in range(ctx.repetitions):
            for name in xdp.SYSTEMS:
                if name in errors:
                    continue
                system = None
                try:
                    system = xdp.System(chain, name, ctx.tmp)
                    for size in frames:
                        runs[(name, size)].append(xdp.measure(ctx, system, pcaps[size]))
                    if ctx.churn and name in churned:
                        syncs = system.metrics.get("syncs_total") if system.metrics else None
                        changes = Churn(xdp.NS_ROUTER, routes, chain.via, ctx.churn)
                        try:
                            r = xdp.measure(ctx, system, pcaps[frames[0]], cost=False)
                        finally:
                            rate = changes.stop()
                        r["churn_rate"] = round(rate)
                        if syncs is not None:
                            r["router_syncs"] = (system.metrics.get("syncs_total") or 0) - syncs
                        churned[name].append(r)
                except RowError as e:
                    errors[name] = str(e)
                finally:
                    if system:
                        system.stop()
    finally:
        chain.close()
    for size in frames:
        for name in xdp.SYSTEMS:
            report.add("xdp", fam, size, n, len(dsts), 1, name, runs[(name, size)],
                       errors.get(name))
    for name, rs in churned.items():
        if ctx.churn:
            report.add("xdp", fam, frames[0], n, len(dsts), 1, name, rs, errors.get(name),
                       churn=True)
    report.write()


def control(report, backend, c, must_lose, what):
    if c["lost"] < must_lose:
        report.problems.append(f"the {backend} loss check missed traffic with no route: sent "
                               f"{c['sent']}, received {c['received']}, lost {c['lost']}")
    else:
        say(f"{backend} loss check control: {c['lost']} of {c['sent']} frames ({what}) lost, as "
            f"they must be")


def loss_control(ctx, report):
    """The loss checks' own control: traffic the router has no route for must show as lost, or
    the check sees nothing."""
    unrouted = [ipaddress.ip_address("100.64.0.0") + 1 + i for i in range(256)]
    pcap = os.path.join(ctx.tmp, "unrouted.pcap")
    traffic(pcap, 4, 64, unrouted)
    if "dpdk" in ctx.backends:
        try:
            c = dpdk.run_vfplane(ctx, pcap, routes_of(4, 1))
            control(report, "DPDK", c, c["sent"] // 2 + 1, "all unrouted")
        except RowError as e:
            report.problems.append(f"the DPDK loss check's control did not run: {e}")
    if "xdp" in ctx.backends:
        # Every other frame has a route: the check must see half of them lost.
        routes = routes_of(4, 1)
        mixed = [x for pair in zip(destinations(routes, 128), unrouted[:128]) for x in pair]
        pcap = os.path.join(ctx.tmp, "half-unrouted.pcap")
        traffic(pcap, 4, 64, mixed)
        chain = xdp.Chain(ctx, routes)
        system = None
        try:
            system = xdp.System(chain, "kernel", ctx.tmp)
            c = xdp.measure(ctx, system, pcap)
            control(report, "XDP", c, c["sent"] // 3, "half of them unrouted")
        except RowError as e:
            report.problems.append(f"the XDP loss check's control did not run: {e}")
        finally:
            if system:
                system.stop()
            chain.close()


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backends", default="dpdk,xdp")
    ap.add_argument("--out", default=None, help="where the report goes (default bench/results)")
    ap.add_argument("--cache", default=os.environ.get("VFPLANE_BENCH_CACHE",
                                                      "/var/cache/vfplane/bench"))
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--destinations", type=int, default=4096)
    ap.add_argument("--families", default="4,6")
    ap.add_argument("--frames", default="64,128,256,512,1024,1518")
    ap.add_argument("--routes", default="1,10000,1000000")
    ap.add_argument("--tag", default="", help="appended to the report's name (router-<date>-"
                    "<backend>-TAG), for a partial run beside a full one")
    ap.add_argument("--churn", type=int, default=1000, metavar="PER_SECOND",
                    help="route changes per second for the churn rows (0: no churn rows)")
    a = ap.parse_args()

    if os.geteuid() != 0:
        skip("needs root (network namespaces, BPF, DPDK's telemetry dirs)")
    ctx = Ctx()
    ctx.backends = [b for b in a.backends.split(",") if b]
    for b in ctx.backends:
        if b not in ("dpdk", "xdp"):
            ap.error(f"--backends: {b!r} is neither dpdk nor xdp")
    tools = ["ip"] + (["dpdk-testpmd", "make"] if "dpdk" in ctx.backends else [])
    for tool in tools:
        if shutil.which(tool) is None:
            skip(f"{tool} is missing (scripts/setup installs it)")
    ctx.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ctx.router = os.path.join(a.build_dir, "dataplane", "cmd", "vfplane-router")
    ctx.xdp_chain = os.path.join(a.build_dir, "bench", "xdp_chain")
    if not os.access(ctx.router, os.X_OK):
        skip(f"{ctx.router} is not built")
    if "xdp" in ctx.backends and not os.access(ctx.xdp_chain, os.X_OK):
        skip(f"{ctx.xdp_chain} is not built (eBPF off?)")
    ctx.tsc_hz, ctx.tsc_source = tsc_hz()
    ctx.chain_cpu = cpus()[-1]
    ctx.repetitions, ctx.seconds, ctx.warmup = a.repetitions, a.seconds, 1.0
    ctx.churn = a.churn
    families = [int(x) for x in a.families.split(",")]
    frames = [int(x) for x in a.frames.split(",")]
    route_counts = [int(x) for x in a.routes.split(",")]
    if a.quick:
        ctx.repetitions, ctx.seconds, ctx.warmup = 1, 0.5, 0.2
        frames, route_counts = [64], [1, 10000]
    if "dpdk" in ctx.backends:
        ctx.l3fwd = dpdk.build_l3fwd(a.cache)
    out_dir = a.out or os.path.join(ctx.root, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    # One file per day and kind of run: the quick run, or the backends it measured.
    stamp = datetime.date.today().isoformat() + ("-quick" if a.quick else "") + (
        "" if a.quick or len(ctx.backends) == 2 else "-" + ctx.backends[0]) + (
        "-" + a.tag if a.tag else "")
    report = Report(os.path.join(out_dir, f"router-{stamp}"), header(ctx), a.quick)
    with tempfile.TemporaryDirectory(prefix="vfplane-router-bench.") as tmp:
        ctx.tmp = tmp
        for backend in ctx.backends:
            for fam in families:
                for n in route_counts:
                    routes = routes_of(fam, n)
                    dsts = destinations(routes, a.destinations)
                    sizes = sorted({max(size, MIN_FRAME[fam]) for size in frames})
                    rows = dpdk_rows if backend == "dpdk" else xdp_rows
                    rows(ctx, report, fam, n, routes, dsts, sizes)
        if a.quick:
            loss_control(ctx, report)
    md, pngs = report.write(final=True)
    print(md)
    say(f"wrote {report.base}.json, {report.base}.md" +
        (f" and {len(pngs)} plots" if pngs else ""))
    for w in report.warnings:
        say(f"warning: {w}")
    if report.problems:
        for p in report.problems:
            say(f"FAILED: {p}")
        sys.exit(1)


if __name__ == "__main__":
    main()
