"""Shadow fidelity: does the shadow's verdict, and do its figures, predict what production then
does under the same plan and the same load? Run as root:

    .venv/bin/python benchmarks/shadow_fidelity.py [--repeat 3] [--duration 8] [--json F]

A production lab (``default.yaml``, its own controller with a store, prefix ``nbp``) and a shadow
of it (prefix ``nbs``) on this machine. Every scenario, repeated: the plan and the load in the
shadow, then in production (:func:`emulation.production.side_by_side`), compared figure by
figure (:mod:`emulation.fidelity`): per application delivered rate, loss and p95 RTT, per link
direction carried utilisation. Scenarios:

* ``fits``: three applications (two UDP, one TCP) under allocations that carry them;
* ``tight``: the video application's meter 25 % below its load;
* ``bottleneck``: two applications pinned over the same 50 Mbit/s link, 60 Mbit/s between them;
* ``limit``: 128-byte frames at 25 Mbit/s in three flows (about 73 000 packets/s): the machine's
  per-packet limit; a run there must be flagged CPU-bound, not scored.

The same shadow run twice under each scenario gives the measurement's own repeatability (the
shadow against itself): a figure the shadow cannot reproduce from one run to the next, it cannot
be asked to predict. Last, the what-if: a warm shadow's apply + run + verdict of one plan on
``default.yaml`` and ``abilene.yaml`` (``--whatif-duration`` seconds of load, as ``netshadow run
--shadow-duration``).

The shadow's switches run in an Open vSwitch of their own (:mod:`emulation.ovsns`);
``--shared-ovs`` puts them in production's, to measure what that changes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from controller.plan import parse_plan
from emulation.controller_proc import ControllerProcess, free_port
from emulation.fidelity import RTT_ABS_MS, RTT_TOL, compare
from emulation.lab import Lab
from emulation.production import Production, side_by_side
from emulation.shadow import FlowDemand, Shadow, demand_for
from topologies import bundled, load_spec

STEPS = 4  # one rate per step, the horizon compressed into the run


def flow(tenant, app, src, dst, proto, port, mbps) -> FlowDemand:
    return FlowDemand(tenant, app, src, dst, proto, port, (float(mbps),) * STEPS)


VIDEO = ("red", "video", "h1", "h2", "udp", 5004)
DNS = ("blue", "dns", "h4", "h5", "udp", 53)
WEB = ("red", "web", "h1", "h2", "tcp", 80)
METRICS = ("green", "metrics", "h7", "h8", "udp", 8125)


def alloc(t, a, rate, path=None) -> dict:
    return {"tenant": t, "app": a, "rate_mbps": rate, **({"path": path} if path else {})}


SCENARIOS = {
    "fits": dict(demands=[flow(*VIDEO, 20), flow(*DNS, 10), flow(*WEB, 10)],
                 plan=[alloc("red", "video", 25), alloc("blue", "dns", 12), alloc("red", "web", 12)],
                 expect="pass"),
    "tight": dict(demands=[flow(*VIDEO, 20), flow(*DNS, 10), flow(*WEB, 10)],
                  plan=[alloc("red", "video", 15), alloc("blue", "dns", 12), alloc("red", "web", 12)],
                  expect="fail"),
    "bottleneck": dict(demands=[flow(*VIDEO, 30), flow(*DNS, 30)],
                       plan=[alloc("red", "video", 32, ["s1", "s3", "s4"]),
                             alloc("blue", "dns", 32, ["s1", "s3", "s4"])],
                       expect="fail"),
    "limit": dict(demands=[flow(*VIDEO, 25), flow(*DNS, 25), flow(*METRICS, 25)],
                  plan=[alloc("red", "video", 30), alloc("blue", "dns", 30),
                        alloc("green", "metrics", 30)],
                  expect="untrusted", frame_bytes=128),
}


def figures(f) -> dict:
    """The comparison's errors: worst per kind over its applications and links."""
    apps = f.apps
    return {
        "delivered_error": max((a.delivered_error for a in apps), default=None),
        "loss_error_pp": max((a.loss_error_pp for a in apps if a.loss_error_pp is not None), default=None),
        "rtt_error_ms": max((a.rtt_error_ms for a in apps if a.rtt_error_ms is not None), default=None),
        "rtt_worst_ratio": max((a.worst for a in apps), default=None),
        "util_error": max((lk.error for lk in f.links), default=None),
        "score": f.score,
    }


def production_lab(spec_path: str, workdir: Path):
    token = workdir / "token"
    token.write_text("benchmark-token")
    of, rest = free_port(), free_port()
    ctl = ControllerProcess(spec_path, of, rest, log_path=workdir / "controller.log",
                            extra_args=["--token-file", str(token)], db_path=workdir / "prod.db")
    ctl.start()
    lab = Lab(load_spec(spec_path), prefix="nbp", controller_port=of)
    try:
        lab.start()
        ctl.wait_ready(timeout_s=60)
    except BaseException:
        lab.stop()
        ctl.stop()
        raise
    return lab, ctl


def whatif(spec_name: str, duration_s: float, repeat: int, workdir: Path, own_ovs: bool = True) -> dict:
    """A warm shadow: apply + run + verdict of one plan, ``repeat`` times; the build apart."""
    spec = load_spec(bundled(spec_name))
    keys = [(t.id, a.name) for t in spec.tenants for a in t.applications][:3]
    demands = [d for d in (demand_for(spec, t, a, [10.0] * STEPS) for t, a in keys) if d]
    plan = parse_plan({"name": "whatif", "allocations": [alloc(d.tenant, d.app, 12) for d in demands]}, spec)
    times, applies = [], []
    with Shadow(spec, prefix="nbw", workdir=workdir / f"whatif-{spec_name}", own_ovs=own_ovs) as sh:
        build = sh.build_s
        for _ in range(repeat):
            t0 = time.monotonic()
            sh.apply(plan)
            t1 = time.monotonic()
            r = sh.run(demands, duration_s)
            times.append(time.monotonic() - t0)
            applies.append(t1 - t0)
    return {"spec": spec_name, "hosts": len(spec.hosts), "flows": len(demands),
            "load_s": duration_s, "build_s": round(build, 2),
            "whatif_s_median": round(statistics.median(times), 2), "whatif_s_max": round(max(times), 2),
            "apply_s_median": round(statistics.median(applies), 2), "verdict": r.verdict}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of load per run")
    ap.add_argument("--whatif-duration", type=float, default=5.0)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--whatif-specs", default="default,abilene",
                    help="bundled specs to time the what-if on (empty: none)")
    ap.add_argument("--json", default="out/shadow_fidelity.json")
    ap.add_argument("--shared-ovs", action="store_true",
                    help="the shadow's switches in production's Open vSwitch, not in one of their "
                         "own (to measure what that changes)")
    a = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    workdir = Path(tempfile.mkdtemp(prefix="netshadow-fidelity-"))
    spec_path = str(bundled("default"))
    spec = load_spec(spec_path)
    runs = []
    lab, ctl = production_lab(spec_path, workdir)
    try:
        prod = Production(ctl.url, "benchmark-token", "nbp")
        with Shadow(spec, prefix="nbs", workdir=workdir / "shadow", own_ovs=not a.shared_ovs) as sh:
            try:
                for name in a.scenarios.split(","):
                    sc = SCENARIOS[name]
                    plan = parse_plan({"name": name, "allocations": sc["plan"]}, spec)
                    sh.frame_bytes = prod.frame_bytes = sc.get("frame_bytes", 1514)
                    for i in range(a.repeat):
                        s, p, f = side_by_side(sh, prod, plan, sc["demands"], a.duration)
                        row = {"scenario": name, "repeat": i, "expect": sc["expect"],
                               "shadow": s.verdict, "production": p.verdict, "scored": f.scored,
                               "faithful": f.faithful, "untrusted": list(f.untrusted),
                               **figures(f), "fidelity": f.to_dict(),
                               "cpu": {"shadow": s.cpu, "production": p.cpu},
                               "rx_drops": {"shadow": s.rx_drops, "production": p.rx_drops}}
                        if i == 0:  # the shadow against itself: the measurement's repeatability
                            again = sh.run(sc["demands"], a.duration)
                            row["self"] = figures(compare(s, again))
                            row["self_scored"] = compare(s, again).scored
                        runs.append(row)
                        console.print(f"{name} #{i}: shadow {s.verdict}, production {p.verdict}, "
                                      f"score {f.score}, untrusted {len(f.untrusted)}")
            finally:
                prod.restore()
    finally:
        lab.stop()
        ctl.stop()
    whatifs = [whatif(n, a.whatif_duration, a.repeat, workdir, own_ovs=not a.shared_ovs)
               for n in a.whatif_specs.split(",") if n]

    scored = [r for r in runs if r["scored"]]
    summary = {}
    for k in ("delivered_error", "loss_error_pp", "rtt_error_ms", "util_error", "score"):
        vals = [r[k] for r in scored if r[k] is not None]
        selfs = [r["self"][k] for r in runs if r.get("self_scored") and r["self"][k] is not None]
        summary[k] = {"median": round(statistics.median(vals), 4) if vals else None,
                      "worst": round(max(vals), 4) if vals else None,
                      "self_median": round(statistics.median(selfs), 4) if selfs else None,
                      "self_worst": round(max(selfs), 4) if selfs else None}
    contradicted = [f"{r['scenario']}#{r['repeat']}" for r in scored if r["shadow"] != r["production"]]
    flagged = {n: sum(1 for r in runs if r["scenario"] == n and not r["scored"]) for n in SCENARIOS
               if any(r["scenario"] == n for r in runs)}
    t = Table(title=f"shadow against production, {len(scored)} of {len(runs)} runs scored "
                    f"(median / worst; the shadow against itself in brackets)")
    for col in ("figure", "median", "worst", "self median", "self worst", "tolerance"):
        t.add_column(col)
    tol = {"delivered_error": "5 %", "loss_error_pp": "1 pp", "rtt_error_ms": "10 % or 0.5 ms",
           "util_error": "5 %", "score": "<= 1"}
    for k, v in summary.items():
        t.add_row(k, *(("-" if v[x] is None else f"{v[x]:g}") for x in
                       ("median", "worst", "self_median", "self_worst")), tol[k])
    console.print(t)
    console.print(f"verdicts production contradicted: {contradicted or 'none'}")
    # an RTT error with the p50 shifted as far as the p95 is a constant of the path in one of
    # the two networks, not queueing the shadow failed to predict
    for r in scored:
        for ap_ in r["fidelity"]["apps"]:
            s95, p95 = ap_["shadow_rtt_p95_ms"], ap_["production_rtt_p95_ms"]
            if s95 is not None and p95 is not None and abs(s95 - p95) > max(RTT_TOL * p95, RTT_ABS_MS):
                console.print(f"RTT outside tolerance: {r['scenario']}#{r['repeat']} "
                              f"{ap_['tenant']}/{ap_['app']}: p95 {s95} vs {p95} ms "
                              f"(shift {s95 - p95:+.3f}), p50 shift {ap_['rtt_p50_shift_ms']:+g} ms")
    console.print(f"runs flagged CPU-bound (not scored), per scenario: {flagged}")
    for w in whatifs:
        console.print(f"what-if on {w['spec']} ({w['hosts']} hosts, {w['flows']} flows, "
                      f"{w['load_s']:g} s of load): median {w['whatif_s_median']} s, max "
                      f"{w['whatif_s_max']} s (apply {w['apply_s_median']} s; build once "
                      f"{w['build_s']} s)")
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "contradicted": contradicted, "flagged": flagged,
                               "whatif": whatifs, "runs": runs, "duration_s": a.duration,
                               "repeat": a.repeat, "own_ovs": not a.shared_ovs}, indent=1))
    console.print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
