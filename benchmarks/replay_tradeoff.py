"""Cost against violations, without the lab: the predictive policy at several forecast quantiles
and allocator headrooms, the reactive policy at several thresholds, on one replayed day of a
trace (idealised replay, :mod:`emulation.replay_ideal`: demand offered exactly, the excess over
the rate dropped). It shows the trade-off each policy can buy and is how the predictive
policy's quantile is chosen on a held-out day before the lab replays the day that counts.

    python benchmarks/replay_tradeoff.py abilene --start 2004-03-13T00:00   # held-out day
    python benchmarks/replay_tradeoff.py abilene                            # the last day
    python benchmarks/replay_tradeoff.py demo

Reserve is reported against the oracle's (demand x 1.05, known in advance) and the default
reactive policy's; a setting is on the frontier when no other setting of either online policy
has at most its violation-seconds and its reserve (and less of one). The Abilene data is read
at run time, never written.

The "hindsight" rows are a reference, not a policy: the last measurement times a constant per
application, the constants chosen knowing the day to cost the least while violating at most a
given number of steps (:func:`emulation.policies.hindsight_multipliers`), for the budgets that
the target "at most 0.2x reactive's violation-seconds" allows and a few more. They show what a
violation target costs a forecaster as good as persistence with perfectly tuned margins. The
"persistence" rows are the same constants tuned on the day before the replayed one (an online
policy, on the frontier like the others).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from emulation.policies import HindsightPersistence, hindsight_multipliers  # noqa: E402
from emulation.replay_ideal import simulate  # noqa: E402
from emulation.replay_measures import summarise  # noqa: E402
from netshadow.replaycmd import (  # noqa: E402
    default_reactive_settings,
    make_forecaster,
    make_policy,
    prepare,
)
from planner.core import PlannerSettings  # noqa: E402


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=("abilene", "demo"))
    ap.add_argument("--start", help="first replayed step (default: the last day)")
    ap.add_argument("--quantiles", type=floats, default=[0.9, 0.95, 0.98, 0.99])
    ap.add_argument("--headrooms", type=floats, default=[0.0, 0.05])
    ap.add_argument("--raise-at", type=floats, default=[0.9, 0.8, 0.7, 0.6],
                    help="reactive thresholds (share of the rate in use that triggers a raise)")
    ap.add_argument("--corrupt", action="store_true",
                    help="also run each predictive setting with shifted and noisy forecasts")
    ap.add_argument("--budgets", type=floats, default=None,
                    help="violation steps for the hindsight rows (default: 0.2x, 0.5x and 1x the "
                         "default reactive policy's)")
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args()
    console = Console(width=150)
    out = ROOT / "out" / f"tradeoff-{a.which}"
    if a.which == "abilene":
        from replay_policies import abilene_inputs

        spec, trace, mapping, compress = abilene_inputs(out)
    else:
        spec, trace, mapping, compress = (str(ROOT / "topologies/default.yaml"),
                                          str(ROOT / "traces/demo.csv"),
                                          str(ROOT / "traces/demo-map.yaml"), "1800=1")
    from topologies import load_spec

    setup = prepare(load_spec(spec), trace, mapping, compress, a.start, 1.0)
    keys = [f.key for f in setup.mapping.flows]
    console.print(f"{a.which}: replaying {setup.times[0]} .. {setup.times[-1]} ({len(setup.times)} "
                  f"steps), history {setup.history.shape[0]} steps before it; idealised replay")

    def score(policy):
        return summarise(simulate(policy, setup.demand, setup.step_trace_s, keys))

    rows = []
    oracle = score(make_policy("oracle", setup))
    rows.append(("oracle", "", oracle))
    rows.append(("static", "", score(make_policy("static", setup))))
    default_reactive = score(make_policy("reactive", setup))
    for ra in a.raise_at:
        rs = default_reactive_settings(setup, raise_at=ra, lower_at=min(0.5, ra - 0.2))
        rows.append(("reactive", f"raise at {ra:g}", score(make_policy("reactive", setup,
                                                                       reactive_settings=rs))))
    before = setup.before
    budgets = a.budgets or [int(f * default_reactive["violation_steps"]) for f in (0.2, 0.5, 1.0)]
    day = int(round(86400 / setup.step_trace_s))
    for b in sorted({int(x) for x in budgets}):
        c = hindsight_multipliers(setup.demand, before, b)
        label = f"<= {b} steps: x " + " / ".join(f"{x:.2f}" for x in c)
        rows.append(("hindsight", label, score(HindsightPersistence(keys, before, c))))
        if len(setup.history) > day:  # the same constants tuned on the day before: an online policy
            c = hindsight_multipliers(setup.history[-day:], setup.history[-day - 1], b)
            label = f"day before, <= {b} steps: x " + " / ".join(f"{x:.2f}" for x in c)
            rows.append(("persistence", label, score(HindsightPersistence(keys, before, c))))
    for q in a.quantiles:
        model = make_forecaster(setup, "lstm", console, quantile=q)
        for h in a.headrooms:
            for corrupt in [None, "shift:2", "noise:0.3"] if a.corrupt else [None]:
                p = make_policy("predictive", setup, model, corrupt,
                                settings=PlannerSettings(quantile=q, headroom=h))
                label = f"q {q:g}, headroom {h:g}" + (f", {corrupt}" if corrupt else "")
                rows.append(("predictive", label, score(p)))
    # the frontier is among the online policies' settings (the oracle knows the future)
    clean = [r for p, s, r in rows
             if p in ("reactive", "predictive", "persistence") and "shift" not in s and "noise" not in s]

    def on_frontier(r) -> bool:
        cost = (r["violation_s"], r["reserved_mbit"])
        return any(r is c for c in clean) and not any(
            (o["violation_s"], o["reserved_mbit"]) != cost
            and o["violation_s"] <= cost[0] and o["reserved_mbit"] <= cost[1] for o in clean)

    table = Table(title=f"Idealised replay of {Path(trace).name}: cost against violations")
    for c in ("policy", "setting", "violation-s", "violation steps", "reserve x oracle",
              "reserve x reactive", "peaks pre-allocated", "frontier"):
        table.add_column(c, justify="left" if c in ("policy", "setting") else "right")
    doc = []
    for p, s, r in rows:
        front = on_frontier(r)
        x_o = r["reserved_mbit"] / oracle["reserved_mbit"]
        x_r = r["reserved_mbit"] / default_reactive["reserved_mbit"]
        table.add_row(p, s, f"{r['violation_s']:.0f}", str(r["violation_steps"]), f"{x_o:.3f}",
                      f"{x_r:.3f}", f"{r['peaks_preallocated']}/{r['peaks']}", "*" if front else "")
        doc.append({"policy": p, "setting": s, "violation_s": r["violation_s"],
                    "reserve_x_oracle": x_o, "reserve_x_reactive": x_r,
                    "peaks_preallocated": r["peaks_preallocated"], "peaks": r["peaks"],
                    "frontier": front})
    console.print(table)
    if a.json:
        Path(a.json).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
