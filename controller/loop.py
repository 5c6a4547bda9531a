"""The closed loop's decision core (pure): measured series in, a plan and its reasons out.

One cycle of ``netshadow run`` (see :mod:`netshadow.loop` for the process around it):

1. **feedback** - the forecasts earlier cycles made for the steps that have now been measured
   are scored (absolute error, whether the upper quantile covered the actual), per application;
2. **anomalies** - the newest measured step is scored against the interval forecast for it
   (how far above the upper quantile, in interval widths); above ``anomaly_threshold`` it is an
   anomalous surge, handled by ``anomaly_policy``: ``allocate`` (treat it like any demand),
   ``cap`` (allocate at most ``cap_factor`` times what the application had before the surge) or
   ``alert`` (keep the allocation it had; only report);
3. **forecast** - the upper quantile for every step of the horizon, which the caller sets to
   cover a shadow run plus an apply as measured in earlier cycles; the requirement is the
   largest of them;
4. **allocation** - :func:`controller.allocator.allocate` (headroom, hysteresis, link capacities,
   alternative paths); an application whose recent forecasts did not cover what happened
   (coverage below ``min_coverage`` over ``trust_window`` scored steps) gets at least what the
   reactive threshold allocator would give it, until its forecasts are good again.

Rates are Mbit/s (L2), times epoch seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from models.anomaly import interval_score
from topologies import NetworkSpec

from .allocator import AllocatorSettings, AllocatorState, allocate
from .plan import Plan
from .reactive import ReactiveSettings, ReactiveState, react

ANOMALY_POLICIES = ("cap", "alert", "allocate")

Key = tuple[str, str]


class LoopError(ValueError):
    """An invalid loop setting; the message names it."""


@dataclass(frozen=True)
class LoopSettings:
    step_s: float = 10.0  # one forecast step: telemetry is averaged over buckets of this length
    quantile: float = 0.9
    anomaly_policy: str = "cap"
    anomaly_threshold: float = 1.0  # interval widths above the upper quantile
    cap_factor: float = 1.25
    trust_window: int = 6  # scored steps per application
    min_coverage: float = 0.5
    allocator: AllocatorSettings = AllocatorSettings(hold_s=60.0)
    reactive: ReactiveSettings = ReactiveSettings(cooldown_s=60.0)

    def __post_init__(self):
        if self.anomaly_policy not in ANOMALY_POLICIES:
            raise LoopError(f"anomaly_policy: must be one of {', '.join(ANOMALY_POLICIES)} "
                            f"(got {self.anomaly_policy!r})")
        if not self.step_s > 0:
            raise LoopError(f"step_s: must be > 0 (got {self.step_s!r})")
        if not 0.5 <= self.quantile < 1:
            raise LoopError(f"quantile: must be in [0.5, 1) (got {self.quantile!r})")
        if not self.cap_factor >= 1:
            raise LoopError(f"cap_factor: must be >= 1 (got {self.cap_factor!r})")


@dataclass(frozen=True)
class Decision:
    plan: Plan
    horizon: int
    forecast: dict[str, dict]  # "tenant/app" -> {"median": [...], "upper": [...]} Mbit/s
    anomalies: tuple[str, ...]
    fallback: tuple[str, ...]  # applications allocated at least the reactive rate
    scored: dict[str, dict]  # "tenant/app" -> {"mae_mbps", "coverage", "n"} over the trust window


@dataclass
class LoopCore:
    spec: NetworkSpec
    settings: LoopSettings = field(default_factory=LoopSettings)
    current: Plan | None = None
    pending: dict = field(default_factory=dict)  # (key, target time) -> (median, lo, upper)
    scores: dict = field(default_factory=dict)  # key -> deque of (abs error, covered)
    alloc_state: AllocatorState = field(default_factory=AllocatorState)
    reactive_state: ReactiveState = field(default_factory=ReactiveState)
    reactive_plan: Plan | None = None

    def _feedback(self, keys, times, values) -> None:
        for j, k in enumerate(keys):
            for i, t in enumerate(times):
                if np.isnan(values[i, j]):
                    continue  # not measured (yet): its forecast waits
                f = self.pending.pop((k, float(t)), None)
                if f is None:
                    continue
                med, _lo, up = f
                self.scores.setdefault(k, deque(maxlen=self.settings.trust_window)).append(
                    (abs(values[i, j] - med), bool(values[i, j] <= up)))
        oldest = float(times[0]) if len(times) else 0.0
        self.pending = {kt: v for kt, v in self.pending.items() if kt[1] >= oldest}

    def _anomaly(self, k, t, actual) -> float:
        """Score of ``actual`` at ``t`` against the 1-step interval forecast for it (0 if none)."""
        f = self.pending.get((k, float(t)))
        if f is None:
            return 0.0
        _med, lo, up = f
        return float(interval_score(actual, lo, up, above_only=True))

    def decide(self, now: float, keys: list[Key], times: np.ndarray, values: np.ndarray, forecaster,
               horizon: int, name: str = "loop") -> Decision:
        """``values`` (T, N) Mbit/s at ``times`` (bucket starts, ``step_s`` apart, all complete);
        ``forecaster`` a fitted :class:`models.base.Forecaster` over these N series."""
        st = self.settings
        if horizon < 1:
            raise LoopError(f"horizon: must be >= 1 (got {horizon!r})")
        last = values[-1]
        # 2 before 1: the anomaly score needs the forecast the feedback step consumes
        scores = {k: self._anomaly(k, times[-1], float(last[j])) for j, k in enumerate(keys)}
        self._feedback(keys, times, values)
        filled = pd.DataFrame(values).ffill().fillna(0.0).to_numpy()
        ext = np.vstack([filled, np.full((horizon, len(keys)), np.nan)])
        start = pd.Timestamp(float(times[0]), unit="s", tz="UTC")
        served = tuple(forecaster.quantiles)
        if st.quantile not in served:  # never allocate at another quantile than the one asked for
            raise LoopError(f"quantile: {st.quantile:g} is not among the quantiles the forecaster "
                            f"serves {list(served)}; build it with that quantile")
        limit = getattr(forecaster, "horizon", None)
        if limit is not None and horizon > limit:
            raise LoopError(f"horizon: {horizon} steps are needed, the forecaster predicts at most "
                            f"{limit}; build it with a longer horizon")
        qi = served.index(st.quantile)
        med = np.zeros((horizon, len(keys)))
        up = np.zeros((horizon, len(keys)))
        lo = np.zeros((horizon, len(keys)))
        for h in range(1, horizon + 1):
            m, q = forecaster.forecast(ext[: len(filled) + h], h, start)
            med[h - 1], up[h - 1], lo[h - 1] = (np.nan_to_num(m[-1]), np.nan_to_num(q[qi, -1]),
                                                np.nan_to_num(q[0, -1]))
        for j, k in enumerate(keys):
            for h in range(horizon):
                target = float(times[-1] + (h + 1) * st.step_s)
                self.pending[(k, target)] = (float(med[h, j]), float(lo[h, j]), float(up[h, j]))
        required = {k: float(up[:, j].max()) for j, k in enumerate(keys)}
        usage = {k: float(filled[-1, j]) for j, k in enumerate(keys)}
        anomalies = []
        before = self.current
        for k in keys:
            if scores[k] <= st.anomaly_threshold:
                continue
            had = before.allocation(*k).rate_mbps if before and before.allocation(*k) else None
            what = f"{k[0]}/{k[1]}: {usage[k]:.2f} Mbit/s is {scores[k]:.1f} interval widths above " \
                   "its forecast"
            if st.anomaly_policy == "cap" and had is not None:
                required[k] = min(max(required[k], usage[k]), had * st.cap_factor)
                usage[k] = min(usage[k], required[k])
                what += f"; capped at {required[k]:.2f} ({st.cap_factor:g} x {had:.2f})"
            elif st.anomaly_policy == "alert" and had is not None:
                required[k], usage[k] = had, min(usage[k], had)
                what += f"; alert only, keeps {had:.2f}"
            else:
                what += "; allocated"
            anomalies.append(what)
        plan = allocate(self.spec, required, usage, self.current, now, self.alloc_state, st.allocator,
                        name=name)
        self.reactive_plan = react({k: float(filled[-1, j]) for j, k in enumerate(keys)},
                                   self.reactive_plan, now, self.reactive_state, st.reactive)
        scored = {}
        fallback = []
        allocs = {(a.tenant, a.app): a for a in plan.allocations}
        for k in keys:
            s = list(self.scores.get(k, ()))
            if s:
                cov = sum(c for _, c in s) / len(s)
                scored[f"{k[0]}/{k[1]}"] = {"mae_mbps": round(float(np.mean([e for e, _ in s])), 4),
                                            "coverage": round(cov, 3), "n": len(s)}
                if len(s) >= st.trust_window and cov < st.min_coverage and k in allocs:
                    r = self.reactive_plan.allocation(*k).rate_mbps
                    if r > allocs[k].rate_mbps:
                        allocs[k] = replace(allocs[k], rate_mbps=round(r, 3))
                    fallback.append(f"{k[0]}/{k[1]}")
        reasons = plan.reasons + tuple(anomalies) + tuple(
            f"{f}: forecasts covered too little lately; at least the reactive rate" for f in fallback)
        plan = Plan(plan.name, tuple(allocs[(a.tenant, a.app)] for a in plan.allocations),
                    plan.extra_policies, plan.cpu_quotas, reasons=reasons)
        fc = {f"{k[0]}/{k[1]}": {"median": [round(float(x), 4) for x in med[:, j]],
                                 "upper": [round(float(x), 4) for x in up[:, j]]}
              for j, k in enumerate(keys)}
        return Decision(plan, horizon, fc, tuple(anomalies), tuple(fallback), scored)

    def committed(self, plan: Plan) -> None:
        """The plan is in force (applied, or found installed after a restart)."""
        self.current = plan
