"""What a predictive decision costs, with and without the forecasters reusing their last call.

Every step, the predictive policy forecasts from the newest rows of its history: the same
history as the step before, moved on by a step. The LSTM and the gradient-boosted candidate
keep their outputs per origin row and compute only the origins whose rows changed
(:mod:`models.memo`); the selection's online ranking reads every candidate's forecasts of its
whole window, so without that every candidate forecasts the whole window again at every step.

This runs the idealised replay (:mod:`emulation.replay_ideal`) of one generalisation scenario's
test day twice on the same fitted selection, the first ``--steps`` steps: as shipped, and with
every candidate's kept outputs dropped before each decision (``Forecaster.forget``). It prints
each run's per-decision time (median and 90th percentile) and whether the two runs allocated
the same rates at every step (they must: reuse changes the cost, not the forecasts).

    .venv/bin/python benchmarks/decision_time.py [--scenario abilene-od5-8-last] [--steps 96]
        [--no-lstm]

The Abilene data is read where it lies (``--data``); nothing of it is written.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.generalisation import DATA, QUANTILE, scenarios  # noqa: E402
from emulation.replay_ideal import simulate  # noqa: E402
from models.baselines import all_baselines  # noqa: E402
from models.gbm import GradientBoosting  # noqa: E402
from models.selection import Selection  # noqa: E402
from models.series import SeriesKey, SeriesSet  # noqa: E402
from netshadow.replaycmd import make_policy, prepare  # noqa: E402
from planner.forecasters import ForecasterChoice, fit  # noqa: E402
from topologies import load_spec  # noqa: E402


def run(setup, model, steps: int, reuse: bool) -> tuple[list[float], np.ndarray]:
    """Per-decision seconds and the allocated rates (steps, N) of one idealised replay."""
    policy = make_policy("predictive", setup, model, quantile=QUANTILE)
    decide, took = policy.decide, []

    def timed(inp):
        if not reuse:
            model.forget()
        t0 = time.perf_counter()
        out = decide(inp)
        took.append(time.perf_counter() - t0)
        return out

    policy.decide = timed
    res = simulate(policy, setup.demand[:steps], setup.step_trace_s, [f.key for f in setup.mapping.flows])
    return took, res.allocated


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="abilene-od5-8-last")
    ap.add_argument("--steps", type=int, default=96, help="test steps replayed (each run)")
    ap.add_argument("--no-lstm", action="store_true", help="the selection without the LSTM")
    ap.add_argument("--data", type=Path, default=DATA)
    a = ap.parse_args()
    if a.steps < 2:
        print(f"steps: must be at least 2 (got {a.steps})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ns-decide-") as tmp:
        found = [s for s in scenarios(a.data, Path(tmp)) if s.name == a.scenario]
        if not found:
            names = ", ".join(s.name for s in scenarios(a.data, Path(tmp)))
            print(f"scenario: no scenario {a.scenario!r} (one of {names})", file=sys.stderr)
            return 2
        sc = found[0]
        setup = prepare(load_spec(sc.spec), sc.trace, sc.mapping, sc.compress, sc.start, 1.0)
    names = tuple(SeriesKey(f.tenant, f.app).name for f in setup.mapping.flows)
    hist = SeriesSet(setup.start, setup.step_trace_s, names, setup.history)
    if a.no_lstm:
        q = ForecasterChoice("selection", QUANTILE).quantiles
        model = Selection(all_baselines(quantiles=q) + [GradientBoosting(quantiles=q)],
                          quantiles=q).fit(hist)
    else:
        model = fit(ForecasterChoice("selection", QUANTILE), hist)[0]
    steps = min(a.steps, len(setup.demand))
    kept, kept_rates = run(setup, model, steps, reuse=True)
    anew, anew_rates = run(setup, model, steps, reuse=False)
    print(f"{a.scenario}: {steps} decisions, {len(names)} applications, selection of "
          f"{', '.join(model.names)}; {model.context(1)} rows read per decision")
    for label, took in (("reusing the last call", kept), ("every origin anew", anew)):
        print(f"{label:22s}: median {statistics.median(took) * 1000:7.1f} ms, "
              f"p90 {float(np.percentile(took, 90)) * 1000:7.1f} ms")
    print(f"speed-up (median)     : {statistics.median(anew) / statistics.median(kept):7.2f} x")
    diff = float(np.max(np.abs(kept_rates - anew_rates)))
    print(f"same rates every step : {diff <= 1e-6 * max(1.0, float(np.max(np.abs(anew_rates))))} "
          f"(largest difference {diff:.2e} Mbit/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
