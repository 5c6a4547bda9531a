"""The controller's own work per plan, without switches: compiling a plan into rules and meters
and diffing it against what is installed, for a plan that changes only rates (what a planner
sends every step) against a full compile of the same plan, in the same run.

    .venv/bin/python benchmarks/plan_compile.py [--repeat 30]

On ``topologies/abilene.yaml`` (12 switches, 12 hosts, every host may reach every other on two
applications: about 1 800 rules), each round sends a plan with new random rates for both
applications. ``full`` is :func:`controller.tenancy.compile_network` plus
:func:`controller.core.diff_networks`, what every apply cost before the core reused the last
compile's rules; ``core`` is :meth:`controller.core.ControllerCore.compile` plus the same diff,
what an apply costs now. Both must give the same messages, which the script checks.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from controller.core import ControllerCore, diff_networks  # noqa: E402
from controller.plan import parse_plan  # noqa: E402
from controller.tenancy import compile_network  # noqa: E402
from topologies import load_spec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    a = ap.parse_args()
    spec = load_spec(str(ROOT / "topologies/abilene.yaml"))
    rng = random.Random(0)
    core = ControllerCore(spec, now=0.0)
    full_old = core_old = core.compiled
    times: dict[str, list[float]] = {"full": [], "core": []}
    for i in range(a.repeat):
        plan = parse_plan({"name": f"p{i}", "allocations": [
            {"tenant": "backbone", "app": app, "rate_mbps": round(rng.uniform(1, 40), 3)}
            for app in ("bulk", "stream")]}, spec)
        t0 = time.perf_counter()
        full_new = compile_network(spec, plan)
        full_msgs, _ = diff_networks(full_old, full_new)
        t1 = time.perf_counter()
        core_new = core.compile(plan)
        core_msgs, _ = diff_networks(core_old, core_new)
        t2 = time.perf_counter()
        if full_msgs != core_msgs:
            print(f"round {i}: the two paths disagree", file=sys.stderr)
            return 1
        times["full"].append(t1 - t0)
        times["core"].append(t2 - t1)
        full_old, core_old = full_new, core_new
    rules = sum(len(r) for r in core_old.rules.values())
    print(f"{spec.name}: {len(spec.switches)} switches, {rules} rules, {a.repeat} rate-only plans")
    for k, v in times.items():
        print(f"  {k:5s} compile + diff: median {statistics.median(v) * 1000:6.1f} ms, "
              f"max {max(v) * 1000:6.1f} ms")
    ratio = statistics.median(times["core"]) / statistics.median(times["full"])
    print(f"  ratio (core / full), median: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
