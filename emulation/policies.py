"""The replay's policy protocol and its reference policies (pure): static, reactive, oracle.

Each step ``t`` of a replay, shortly before the step begins (by the measured actuation latency),
the runner asks the policy for the rates of step ``t`` (Mbit/s per tenant application) and
applies them as a plan. What a policy may know differs - that is the comparison:

* **static** reserves each application's peak over the whole trace, all the time;
* **reactive** is the threshold allocator (:mod:`controller.reactive`) fed the load measured at
  the switches up to now;
* **predictive** is netshadow's planner itself (:class:`planner.replay.PredictivePolicy`, a thin
  adapter over :meth:`planner.core.Planner.decide`, the decision ``netshadow run`` makes); it
  lives in ``planner/`` because this package never imports the planner;
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

from controller.plan import VIOLATION_DROP, Allocation, Plan
from controller.reactive import ReactiveSettings, ReactiveState, react

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


class Capped(Policy):
    """Another policy's rates held to ``[lo, hi]``: what a plan can set (a CPU quota lies between
    :data:`controller.plan.MIN_CPU_QUOTA` and :data:`controller.plan.MAX_CPU_QUOTA`)."""

    def __init__(self, inner: Policy, lo: float, hi: float):
        super().__init__(inner.keys)
        self.inner, self.lo, self.hi = inner, lo, hi
        self.name = inner.name
        self.band, self.notes = inner.band, inner.notes

    def decide(self, s):
        return np.clip(np.asarray(self.inner.decide(s), dtype=float), self.lo, self.hi)


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
