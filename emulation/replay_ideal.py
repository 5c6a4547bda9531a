"""Idealised replay: a policy against a demand trace without the lab (pure, fast).

The lab replay (:mod:`emulation.replay`) is the evidence; this is for exploring settings - a
policy's quantile, a threshold - in seconds instead of minutes per run, and for tuning them on a
held-out day before the lab measures the day that counts. Its model of the network is the
simplest one: every application offers exactly the trace's demand, and what exceeds the rate in
force is dropped (no meter burst absorbs a short excess, no sender jitter, no actuation delay).
It is therefore stricter than the lab: a step whose demand is 2 % above its rate is a violation
here, while in the lab a meter's 0.1 s burst can absorb it when steps are compressed to a second.

The result is an :class:`emulation.replay.ReplayResult`, so :func:`emulation.replay_measures.
summarise` scores both kinds of run the same way.
"""

from __future__ import annotations

import numpy as np

from .policies import Policy, StepInput
from .replay import ReplayResult


def simulate(policy: Policy, demand: np.ndarray, step_trace_s: float,
             keys: list[tuple[str, str]]) -> ReplayResult:
    """Run ``policy`` over ``demand`` (T, N) in lab Mbit/s; bytes are per trace step."""
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 2 or demand.shape[1] != len(keys):
        raise ValueError(f"demand: must be (steps, {len(keys)}) (got {demand.shape})")
    T, N = demand.shape
    res = ReplayResult(policy.name, step_trace_s, 0.0, list(keys), demand, np.zeros((T, N)),
                       demand.copy(), np.zeros((T, N)), np.zeros((T, N)))
    dropped = np.zeros((T, N))
    for t in range(T):
        rates = np.asarray(policy.decide(StepInput(t, t * step_trace_s, demand[:t], dropped[:t])),
                           dtype=float)
        res.allocated[t] = rates
        short = np.maximum(demand[t] - np.maximum(rates, 0.0), 0.0)
        dropped[t] = np.where(demand[t] > 0, short / np.maximum(demand[t], 1e-12), 0.0)
        res.in_bytes[t] = demand[t] * 1e6 / 8 * step_trace_s
        res.drop_bytes[t] = short * 1e6 / 8 * step_trace_s
    res.band = {t: (list(map(float, m)), list(map(float, u))) for t, (m, u) in policy.band.items()}
    res.notes = dict(policy.notes)
    return res
