"""How much of a demand peak can an interval cover? Exact intervals on processes whose law is known.

    .venv/bin/python benchmarks/peak_coverage.py [--days 300] [--seed 1] [--json OUT]

The generalisation benchmark reports each forecaster's 10-90 % interval coverage overall and
inside demand peaks - the steps of the test day above its median plus half the way to its
maximum (`emulation.replay_measures.above_peak_level`), and the runs of two or more such steps
(`peak_steps`). A peak so defined is chosen by its *outcome*: a step is in it because its demand
turned out high, and demand turns out high partly because it rose above what could be foreseen.
How far that alone lowers coverage inside peaks is measured here, where no forecaster stands in
the way: each process is simulated day by day and given its **exact** one-step predictive
interval (the 10 % and 90 % quantiles of the next step's law given everything before it), so
every figure below is what a perfect forecaster with perfectly calibrated intervals would score.

The processes (288 five-minute steps a day; ``x`` an AR(1) in logs, so demand is a daily cycle
times lognormal noise with memory):

* ``cycle-led``: a deep daily cycle and small innovations - the peak is the busy hour, foreseen;
* ``mixed``: a daily cycle and innovations of comparable weight in a day's maximum (a backbone
  origin-destination pair);
* ``noise-led``: a shallow cycle under the same innovations (a CPU, a request count);
* ``spikes``: ``mixed`` plus an isolated one-step burst of 5x the level on 1 % of the steps,
  unforeseeable by construction (the exact interval is that of the mixture).

Besides coverage over every step and inside the outcome-chosen peaks, the table gives coverage
over the steps whose *forecast* (the exact median) is in its day's top decile: where a peak is
expected, which is the conditioning an interval can be calibrated on.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.table import Table
from scipy.optimize import brentq
from scipy.stats import norm

from emulation.replay_measures import above_peak_level, forecast_peak_steps, peak_steps

STEPS = 288  # a day of five-minute steps
LO, HI = 0.1, 0.9  # the interval's quantiles (the generalisation benchmark's)
LEVEL = 50.0  # Mbit/s: the cycle's geometric mean


@dataclass(frozen=True)
class Process:
    name: str
    amplitude: float  # the daily cycle's amplitude in logs
    phi: float  # the AR(1) coefficient of the log innovations
    sigma: float  # the innovations' standard deviation, in logs
    spike_p: float = 0.0  # probability of a one-step burst
    spike_x: float = 5.0  # ... of this many times the level


PROCESSES = (
    Process("cycle-led", amplitude=0.8, phi=0.9, sigma=0.05),
    Process("mixed", amplitude=0.5, phi=0.9, sigma=0.1),
    Process("noise-led", amplitude=0.1, phi=0.9, sigma=0.1),
    Process("spikes", amplitude=0.5, phi=0.9, sigma=0.1, spike_p=0.01),
)


def _mixture_quantile(q: float, p: float, shift: float) -> float:
    """The ``q`` quantile, in units of the innovations' standard deviation, of a standard normal
    that with probability ``p`` is shifted up by ``shift`` (a burst)."""
    if p == 0:
        return float(norm.ppf(q))

    def cdf(z):
        return (1 - p) * norm.cdf(z) + p * norm.cdf(z - shift) - q
    return float(brentq(cdf, -20.0, 20.0 + shift))


def simulate(pr: Process, days: int, rng: np.random.Generator) -> dict:
    """Per day (rows) and step (columns): demand, the exact interval and the exact median."""
    t = np.arange(STEPS)
    cycle = np.log(LEVEL) + pr.amplitude * np.sin(2 * np.pi * (t - STEPS / 4) / STEPS)
    x = np.empty((days, STEPS))
    start = rng.normal(size=days) * pr.sigma / np.sqrt(1 - pr.phi ** 2)  # stationary
    prev = start
    eps = rng.normal(size=(days, STEPS)) * pr.sigma
    for i in range(STEPS):
        prev = pr.phi * prev + eps[:, i]
        x[:, i] = prev
    # the next step's law given the past: the cycle plus phi times the innovation before it
    mean = cycle[None, :] + pr.phi * np.concatenate([start[:, None], x[:, :-1]], axis=1)
    burst = rng.random((days, STEPS)) < pr.spike_p
    log_y = cycle[None, :] + x + burst * np.log(pr.spike_x)
    shift = np.log(pr.spike_x) / pr.sigma
    z = {q: _mixture_quantile(q, pr.spike_p, shift) for q in (LO, 0.5, HI)}
    return {"y": np.exp(log_y), "lo": np.exp(mean + z[LO] * pr.sigma),
            "median": np.exp(mean + z[0.5] * pr.sigma), "hi": np.exp(mean + z[HI] * pr.sigma)}


def measure(sim: dict) -> dict:
    """Coverage of the exact interval: over every step, inside the outcome-chosen peaks (every
    step above the peak level; runs of two or more), and where the forecast is in its day's top
    decile - each the median over days, and the share of days at 75 % or more."""
    days = sim["y"].shape[0]
    cov = {"overall": [], "peaks": [], "peak_runs": [], "forecast_peaks": []}
    for d in range(days):
        y = sim["y"][d][:, None]
        inside = (y >= sim["lo"][d][:, None]) & (y <= sim["hi"][d][:, None])
        masks = {"overall": np.ones_like(inside), "peaks": above_peak_level(y),
                 "peak_runs": peak_steps(y), "forecast_peaks": forecast_peak_steps(sim["median"][d][:, None])}
        for k, m in masks.items():
            if m.any():
                cov[k].append(float(inside[m].mean()))
    return {k: {"median": float(np.median(v)), "days_at_75": float(np.mean(np.array(v) >= 0.75)),
                "days": len(v)} for k, v in cov.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=300, help="simulated days per process (default 300)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    if a.days < 1:
        ap.error(f"--days: must be at least 1 (got {a.days})")
    rng = np.random.default_rng(a.seed)
    rows = {pr.name: measure(simulate(pr, a.days, rng)) for pr in PROCESSES}
    t = Table(title=f"exact 10-90 % one-step intervals, {a.days} simulated days per process "
                    "(median over days; in brackets the share of days at 75 % or more)")
    t.add_column("process")
    for c in ("overall", "in peaks", "in peak runs", "where a peak is forecast"):
        t.add_column(c, justify="right")
    for name, r in rows.items():
        t.add_row(name, *(f"{r[k]['median']:.3f} ({r[k]['days_at_75']:.2f})"
                          for k in ("overall", "peaks", "peak_runs", "forecast_peaks")))
    Console(width=130).print(t)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"days": a.days, "seed": a.seed, "processes": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
