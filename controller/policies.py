"""Allocation policies compared by trace replay (pure): static, reactive, predictive, oracle.

Each step ``t`` of a replay, shortly before the step begins (by the measured actuation latency),
the runner asks the policy for the rates of step ``t`` (Mbit/s per tenant application) and
applies them as a plan. What a policy may know differs - that is the comparison:

* **static** reserves each application's peak over the whole trace, all the time;
* **reactive** is the threshold allocator (:mod:`controller.reactive`) fed the load measured at
  the switches up to now;
* **predictive** is netshadow: the profiler forecasts step ``t`` from everything measured so far
  (plus the history before the replay), the allocator (:func:`controller.allocator.allocate`)
  turns the forecast's upper quantile into rates (headroom, hysteresis, link capacities). It
  learns from its own outcome: an application whose forecasts let it down (a measured violation in
  the last ``trust_window`` steps, or recent forecasts further off than repeating the last
  measurement) gets at least what the reactive allocator would give it until the forecasts are
  good again, so bad forecasts do not make it worse than reactive;
* **oracle** knows the demand of step ``t`` and applies it (plus the same headroom the static
  policy gets) with the same actuation latency - the bound no online policy can beat.

One more reference is not an online policy either and is not offered by ``netshadow replay``:
:class:`HindsightPersistence` allocates the previous step's demand times a constant per
application, the constants chosen knowing the whole window (:func:`hindsight_multipliers`) to
be the cheapest that violate at most a given number of steps. It answers "what would a target
cost a forecaster as good as repeating the last measurement, with perfectly tuned margins?".

Times are trace seconds; rates are lab Mbit/s (L2, as meters count them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd

from topologies import NetworkSpec

from .allocator import AllocatorSettings, AllocatorState, allocate
from .plan import Allocation, Plan
from .reactive import ReactiveSettings, ReactiveState, react

POLICIES = ("static", "reactive", "predictive", "oracle")

Key = tuple[str, str]


@dataclass(frozen=True)
class StepInput:
    """What the runner measured before step ``t``: rows are steps 0..t-1."""

    t: int
    now_s: float  # trace seconds at the start of step t
    offered_mbps: np.ndarray  # (t, N) load offered at the ingress meters
    dropped: np.ndarray  # (t, N) fraction of it the meters dropped


class Policy(ABC):
    name = "policy"

    def __init__(self, keys: list[Key]):
        self.keys = list(keys)
        self.band: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # t -> (median, upper) if any
        self.notes: dict[int, str] = {}

    @abstractmethod
    def decide(self, s: StepInput) -> np.ndarray:
        """(N,) Mbit/s for step ``s.t``."""

    def plan(self, rates: np.ndarray, t: int) -> Plan:
        return Plan(f"{self.name}-{t}", tuple(Allocation(k[0], k[1], round(max(float(r), 0.1), 3))
                                               for k, r in zip(self.keys, rates, strict=True)))


class StaticPolicy(Policy):
    name = "static"

    def __init__(self, keys, demand: np.ndarray, headroom: float = 0.05):
        super().__init__(keys)
        self.rates = demand.max(axis=0) * (1 + headroom)

    def decide(self, s):
        return self.rates.copy()


class OraclePolicy(Policy):
    name = "oracle"

    def __init__(self, keys, demand: np.ndarray, headroom: float = 0.05):
        super().__init__(keys)
        self.demand, self.headroom = demand, headroom

    def decide(self, s):
        return self.demand[s.t] * (1 + self.headroom)


class ReactivePolicy(Policy):
    name = "reactive"

    def __init__(self, keys, initial_mbps: np.ndarray, settings: ReactiveSettings):
        super().__init__(keys)
        self.settings = settings
        self.state = ReactiveState()
        self.initial = {k: float(v) for k, v in zip(keys, initial_mbps, strict=True)}
        self.current: Plan | None = None

    def decide(self, s):
        if s.t == 0:
            return np.array([self.initial[k] for k in self.keys])
        used = {k: float(s.offered_mbps[-1, i]) for i, k in enumerate(self.keys)}
        self.current = react(used, self.current, s.now_s, self.state, self.settings,
                             initial_mbps=self.initial)
        return np.array([self.current.allocation(*k).rate_mbps for k in self.keys])


class PredictivePolicy(Policy):
    name = "predictive"

    def __init__(self, keys, spec: NetworkSpec, forecaster, history: np.ndarray, start: pd.Timestamp,
                 step_s: float, settings: AllocatorSettings, quantile: float = 0.9,
                 reactive: ReactivePolicy | None = None, trust_window: int = 4,
                 corrupt=None):
        """``forecaster``: a fitted :class:`models.base.Forecaster` over the N series in ``keys``
        order; ``history`` (H, N): the measured series before step 0 (lab Mbit/s), starting at
        ``start``. ``corrupt(t, median, upper) -> (median, upper)`` damages forecasts on purpose
        (the robustness check)."""
        super().__init__(keys)
        if quantile not in forecaster.quantiles:
            raise ValueError(f"quantile: the forecaster has {forecaster.quantiles} (got {quantile!r})")
        self.spec, self.forecaster, self.history = spec, forecaster, np.asarray(history, dtype=float)
        self.start, self.step_s, self.settings = pd.Timestamp(start), step_s, settings
        self.qi = forecaster.quantiles.index(quantile)
        self.reactive = reactive
        self.trust_window = trust_window
        self.corrupt = corrupt
        self.state = AllocatorState()
        self.current: Plan | None = None
        self.context = getattr(forecaster, "window", 48) + 2

    def forecast_next(self, s: StepInput) -> tuple[np.ndarray, np.ndarray]:
        """Median and upper quantile of step ``s.t`` from everything measured before it."""
        seen = np.maximum(np.vstack([self.history, s.offered_mbps]) if s.t else self.history, 0.0)
        lo = max(0, len(seen) - self.context)
        ext = np.vstack([seen[lo:], np.full((1, seen.shape[1]), np.nan)])
        start = self.start + pd.Timedelta(seconds=self.step_s * lo)
        med, qs = self.forecaster.forecast(ext, 1, start)
        m, up = np.nan_to_num(med[-1]), np.nan_to_num(qs[self.qi, -1])
        if self.corrupt is not None:
            m, up = self.corrupt(s.t, m, up)
        return np.maximum(m, 0.0), np.maximum(up, 0.0)

    def decide(self, s):
        fallback = self.reactive.decide(s) if self.reactive is not None else None
        med, up = self.forecast_next(s)
        self.band[s.t] = (med, up)
        used = {k: float(s.offered_mbps[-1, i]) if s.t else 0.0 for i, k in enumerate(self.keys)}
        self.current = allocate(self.spec, {k: float(up[i]) for i, k in enumerate(self.keys)}, used,
                                self.current, s.now_s, self.state, self.settings, name=f"predictive-{s.t}")
        rates = np.array([self.current.allocation(*k).rate_mbps for k in self.keys])
        if fallback is not None and s.t:
            distrust = self.distrust(s)
            if distrust.any():
                self.notes[s.t] = "falls back to reactive for " + ", ".join(
                    f"{self.keys[i][0]}/{self.keys[i][1]}" for i in np.flatnonzero(distrust))
            rates = np.where(distrust, np.maximum(rates, fallback), rates)
        return rates

    def distrust(self, s: StepInput) -> np.ndarray:
        """(N,) bool: applications whose forecasts let them down lately - a violation in the last
        ``trust_window`` steps, or forecasts (median) that were further off than simply repeating
        the previous measurement (persistence) over the last ``2 * trust_window`` steps."""
        bad = (s.dropped[-self.trust_window:] > VIOLATION_DROP).any(axis=0)
        w = 2 * self.trust_window
        steps = [t for t in range(max(1, s.t - w), s.t) if t in self.band]
        if len(steps) >= self.trust_window:
            actual = s.offered_mbps[steps]
            model = np.abs(actual - np.array([self.band[t][0] for t in steps])).mean(axis=0)
            naive = np.abs(actual - s.offered_mbps[[t - 1 for t in steps]]).mean(axis=0)
            bad |= model > naive
        return bad


# a step violates an application's objective when the meters dropped more than this fraction
VIOLATION_DROP = 0.01


def hindsight_multipliers(demand: np.ndarray, before: np.ndarray, budget_steps: int) -> np.ndarray:
    """(N,) constants ``c`` such that allocating ``c * (the previous step's demand)`` over
    ``demand`` (T, N) costs the least reserve while violating (dropping more than
    :data:`VIOLATION_DROP`) at most ``budget_steps`` (step, application) pairs in all; ``before``
    (N,) is the demand of the step before the window. Knows the whole window: a reference, not a
    policy. A step whose previous demand was 0 and whose demand is not cannot be covered by any
    constant and always counts against the budget."""
    demand = np.asarray(demand, dtype=float)
    prev = np.vstack([np.asarray(before, dtype=float)[None, :], demand[:-1]])
    if budget_steps < 0:
        raise ValueError(f"budget_steps: must be >= 0 (got {budget_steps!r})")
    T, N = demand.shape
    # the smallest c that keeps a step's drop within VIOLATION_DROP covers (1 - drop) of its demand
    need = np.where(prev > 0, demand * (1 - VIOLATION_DROP) / np.where(prev > 0, prev, 1.0),
                    np.where(demand > 0, np.inf, 0.0))
    best = {0: (0.0, ())}  # violations so far -> (least cost, multipliers so far)
    for j in range(N):
        ranked = np.sort(need[:, j])[::-1]
        forced = int(np.isinf(ranked).sum())
        options = []  # (violations, cost, c) for this application
        for v in range(forced, T + 1):
            c = float(ranked[v]) * (1 + 1e-9) if v < T else 0.0  # rounding must not tip it over
            options.append((v, c * float(prev[:, j].sum()), c))
        nxt: dict[int, tuple[float, tuple]] = {}
        for b, (cost, cs) in best.items():
            for v, oc, c in options:
                if b + v > budget_steps:
                    break
                if b + v not in nxt or cost + oc < nxt[b + v][0]:
                    nxt[b + v] = (cost + oc, cs + (c,))
        if not nxt:
            raise ValueError(f"budget_steps: {budget_steps} is fewer than the steps no multiple of the "
                             f"previous demand covers ({forced} for application {j})")
        best = nxt
    return np.array(min(best.values())[1])


class HindsightPersistence(Policy):
    """The previous step's demand times ``multipliers`` (see :func:`hindsight_multipliers`).
    It reads the demand as measured, so it needs nothing but the replay's own input."""

    name = "hindsight"

    def __init__(self, keys, before: np.ndarray, multipliers: np.ndarray):
        super().__init__(keys)
        self.before, self.multipliers = np.asarray(before, dtype=float), np.asarray(multipliers)

    def decide(self, s):
        last = s.offered_mbps[-1] if s.t else self.before
        return last * self.multipliers


def shift_peaks(steps: int):
    """A corruption: every forecast is the one made ``steps`` steps earlier (peaks arrive late)."""
    past: list[tuple[np.ndarray, np.ndarray]] = []

    def corrupt(t, m, up):
        past.append((m, up))
        return past[max(0, len(past) - 1 - steps)]
    return corrupt


def noise(scale: float, seed: int = 0):
    """A corruption: forecasts multiplied by log-normal noise of ``scale`` (sigma)."""
    rng = np.random.default_rng(seed)

    def corrupt(t, m, up):
        f = np.exp(rng.normal(0.0, scale, m.shape))
        return m * f, up * f
    return corrupt
