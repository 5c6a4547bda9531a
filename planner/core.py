"""The one decision (pure): the measured series, a forecast and the plan in force in; a plan out.

``netshadow run``, the replay's predictive policy and the demo all call :meth:`Planner.decide`,
so the figures the benchmarks measure are the figures of the policy that is deployed. One call:

1. **what happened since the last call** - every newly measured step is scored against the
   forecast made for it (absolute error of the median, whether the allocated quantile covered
   it; step 4 compares those errors with persistence's); the newest step is checked against
   the rate that was in force during it (``current``, read back from the controller by the
   caller): demand above it by more than :data:`controller.plan.VIOLATION_DROP` is a violation;
2. **anomalies** - the newest step is scored against the interval forecast for it (how far above
   the allocated quantile, in interval widths); above ``anomaly_threshold`` it is an anomalous
   surge, handled by ``anomaly_policy``: ``allocate`` (treat it like any demand), ``cap``
   (allocate at most ``cap_factor`` times what the application had) or ``alert`` (keep what it
   had; only report). A surge held back by ``cap`` or ``alert`` is not counted against the
   budget (the policy chose not to serve it). ``allocate`` is the default: on the bundled demo
   trace no step is anomalous, and on the Abilene day ``cap`` held back six surges that were
   real demand (39 violating steps against 37, idealised replay) - hold surges back where they
   are floods, not demand;
3. **requirement** - the largest value of the allocated quantile over the forecast's horizon
   (the caller makes the horizon cover what happens before the plan can next change: one step in
   a replay, a shadow run plus an apply in ``netshadow run``);
4. **budget** - per application a margin, moved by its own outcomes so that the long-run share
   of violated steps settles at ``budget`` (adaptive conformal inference on the margin, see
   :mod:`planner.budget`), is added to the requirement, and a forecast far below what
   was just measured is not believed (the floor of :mod:`planner.budget`). This is the one
   answer to "trust the forecast?": no forecaster is trusted, each is corrected by what it did.
   A violated step whose rate the allocator had to hold below the requirement (a shared link
   full) is counted but does not move the margin: no margin could have prevented it, and raising
   it would only take more of the full link from the applications beside it - measured on four
   Abilene pairs sharing links, margins that did rose to the limit within a day. The margin
   tracks the budget in the long run; a forecaster that is plainly worse than that now (late,
   noisy) would still violate for many steps while it climbs. So an application whose violations
   over the last day are more than the budget allows beyond doubt (a process violating at the
   budget's rate gives that many in that many steps with probability below ``evidence``, 5 %)
   *and* more than the reactive reference violated over the same day gets at least the
   reference's rate until either no longer holds (``Decision.behind``): once the evidence is in,
   a bad forecaster costs about what reacting does (before it, the first few violations are its
   own). The evidence is the last day's (:class:`planner.budget.Recent`), not everything since
   the start, so a forecaster that turns bad after weeks of good forecasts is caught within a
   day, and one that recovered is let go once its bad day has left the window. Violations are
   rare, so that evidence comes late; every step's forecast error is evidence too. An
   application whose forecasts over the observed window were worse than repeating the step
   before, beyond doubt (:func:`planner.budget.worse_than_persistence`, p below ``evidence``),
   also gets at least the reference's rate: a noisy or late forecaster is caught within an hour
   of five-minute steps, and one as good as persistence or better never is;
5. **spend cap** - no application is given more than reacting would have spent on the same
   measured steps (:mod:`planner.reference`; ``spend_cap``, on by default): what the planner
   saves below the reactive reference while its forecasts let it, it may spend before a peak;
6. **allocation** - :func:`controller.allocator.allocate` (headroom, hysteresis, link capacities,
   alternative paths) for bandwidth; for compute (a host's ``cpu`` in cores or ``memory`` in MiB,
   keyed by the host's tenant and name) the plan's CPU quota and memory limit, sized with the
   same headroom and hysteresis (:mod:`planner.compute`). One plan carries both.

Settings are in steps, so one set serves a 10-second loop and a half-hour trace alike. Rates are
Mbit/s (L2, as meters count them), times epoch seconds (trace seconds in a replay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.stats import binom

from controller.allocator import AllocatorSettings, AllocatorState, allocate
from controller.plan import Plan, exceeds
from controller.reactive import ReactiveSettings
from models.anomaly import interval_score
from models.forecast import Forecast
from models.series import SeriesKey, SeriesSet
from topologies import NetworkSpec

from .budget import Margin, Recent, floor, scale, worse_than_persistence
from .compute import held, is_compute, size
from .reference import Reference

ANOMALY_POLICIES = ("cap", "alert", "allocate")


class PlannerError(ValueError):
    """An invalid planner setting or input; the message names it and its value."""


@dataclass(frozen=True)
class PlannerSettings:
    """How the planner turns forecasts into plans (see the module docstring)."""

    quantile: float = 0.9  # the forecast quantile allocated: the risk knob
    headroom: float = 0.05  # on top of the allocated quantile
    hold_steps: float = 1.0  # an allocation shrinks only after its requirement stayed lower this long
    release_fraction: float = 0.05  # ... and at least this much lower
    min_change: float = 0.02  # smaller changes are not made
    anomaly_policy: str = "allocate"  # cap and alert hold surges back (see the module docstring)
    anomaly_threshold: float = 1.0  # interval widths above the allocated quantile
    cap_factor: float = 1.25
    budget: float = 0.01  # the long-run share of steps an application's demand may exceed its rate
    adapt_rate: float = 0.5  # scale units the margin moves per violated step (planner.budget)
    initial_margin: float = 1.0  # scale units before any outcome is measured (planner.budget)
    margin_limit: float = 20.0  # scale units, either way
    score_window: int = 8  # steps over which recent forecasts are scored (reported)
    spend_cap: bool = True  # never more than the reactive reference would spend (planner.reference)
    # the significance at which violations count as more than the budget allows: an application
    # also behind reacting then gets at least the reactive reference's rate (0: never)
    evidence: float = 0.05
    # the reactive reference: the spend cap's (planner.reference) and the replay's reactive policy
    reactive_start: float = 1.1  # starts at this times the first measurement
    reactive: ReactiveSettings = ReactiveSettings(cooldown_s=2.0, floor_mbps=0.5)  # cooldown in steps

    def __post_init__(self):
        def need(fld, ok, what):
            if not ok:
                raise PlannerError(f"{fld}: must be {what} (got {getattr(self, fld)!r})")
        need("quantile", _num(self.quantile) and 0.5 <= self.quantile < 1, "in [0.5, 1)")
        need("headroom", _num(self.headroom) and 0 <= self.headroom <= 10, "in [0, 10]")
        need("hold_steps", _num(self.hold_steps) and 0 <= self.hold_steps <= 10_000, "in [0, 10000]")
        need("release_fraction", _num(self.release_fraction) and 0 <= self.release_fraction < 1,
             "in [0, 1)")
        need("min_change", _num(self.min_change) and 0 <= self.min_change < 1, "in [0, 1)")
        need("anomaly_policy", self.anomaly_policy in ANOMALY_POLICIES,
             f"one of {', '.join(ANOMALY_POLICIES)}")
        need("anomaly_threshold", _num(self.anomaly_threshold) and self.anomaly_threshold > 0, "> 0")
        need("cap_factor", _num(self.cap_factor) and 1 <= self.cap_factor <= 100, "in [1, 100]")
        need("budget", _num(self.budget) and 0 < self.budget < 0.5, "in (0, 0.5)")
        need("adapt_rate", _num(self.adapt_rate) and 0 <= self.adapt_rate <= 100, "in [0, 100]")
        need("margin_limit", _num(self.margin_limit) and 0 <= self.margin_limit <= 1000, "in [0, 1000]")
        need("initial_margin", _num(self.initial_margin) and abs(self.initial_margin) <= self.margin_limit,
             "within +-margin_limit")
        need("score_window", isinstance(self.score_window, int) and 1 <= self.score_window <= 1000,
             "an integer in [1, 1000]")
        need("reactive_start", _num(self.reactive_start) and 0 < self.reactive_start <= 100,
             "in (0, 100]")
        need("spend_cap", isinstance(self.spend_cap, bool), "true or false")
        need("evidence", _num(self.evidence) and 0 <= self.evidence < 0.5, "in [0, 0.5)")

    def allocator(self, step_s: float) -> AllocatorSettings:
        return AllocatorSettings(headroom=self.headroom, hold_s=self.hold_steps * step_s,
                                 release_fraction=self.release_fraction, min_change=self.min_change)

    def reactive_for(self, step_s: float) -> ReactiveSettings:
        return replace(self.reactive, cooldown_s=self.reactive.cooldown_s * step_s)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Score:
    """How an application's recent forecasts did, over the score window."""

    mae_mbps: float  # of the median
    coverage: float  # share of steps at or under the allocated quantile
    n: int  # scored steps


@dataclass(frozen=True)
class Decision:
    plan: Plan  # what to apply: valid from ``now`` over the forecast's horizon
    forecast: Forecast  # the evidence: what the plan was made from
    quantile: float  # the forecast quantile allocated
    required_mbps: dict[SeriesKey, float]  # the largest allocated-quantile value over the horizon
    anomalies: tuple[str, ...]
    margin_mbps: dict[SeriesKey, float]  # the budget's margin added to the forecast quantile
    floored: tuple[SeriesKey, ...]  # applications whose forecast fell below the floor
    violation_share: dict[SeriesKey, float]  # measured so far, per application
    scored: dict[SeriesKey, Score]
    capped: tuple[SeriesKey, ...] = ()  # applications the spend cap held below their requirement
    behind: tuple[SeriesKey, ...] = ()  # applications raised to the reactive reference (step 4)

    @property
    def horizon(self) -> int:
        return len(self.forecast.series[0].times) if self.forecast.series else 0

    def rates(self, keys: list[SeriesKey]) -> list[float]:
        """The plan's value for each key in its unit (Mbit/s; cores for a CPU quota, MiB for a
        memory limit), 0 for one it does not allocate."""
        return [held(self.plan, k) or 0.0 for k in keys]


@dataclass
class Planner:
    """The planner's memory between calls: the forecasts made for steps not yet scored, the rates
    in force during recent steps, each application's budget margin and the allocator's state."""

    spec: NetworkSpec
    settings: PlannerSettings = field(default_factory=PlannerSettings)
    forecasts: dict[tuple[SeriesKey, float], tuple[float, float, float]] = field(default_factory=dict)
    in_force: dict[tuple[SeriesKey, float], float] = field(default_factory=dict)
    # steps whose planned rate the allocator held below the requirement (link capacity)
    limited: set[tuple[SeriesKey, float]] = field(default_factory=set)
    reference: Reference = field(default_factory=Reference)  # what reacting would have spent
    margins: dict[SeriesKey, Margin] = field(default_factory=dict)
    recent: dict[SeriesKey, Recent] = field(default_factory=dict)  # the last day's outcomes (step 4)
    last_seen: float | None = None  # time of the newest step the previous call saw
    alloc_state: AllocatorState = field(default_factory=AllocatorState)
    compute_state: AllocatorState = field(default_factory=AllocatorState)  # compute's hysteresis

    # ------------------------------------------------------------------ inputs
    def _keys(self, observed: SeriesSet, forecast: Forecast) -> list[SeriesKey]:
        keys = []
        for name in observed.names:
            try:
                k = SeriesKey.parse(name)
            except ValueError as e:
                raise PlannerError(f"observed: {e}") from None
            if is_compute(k):
                tenant = next((t for t in self.spec.tenants if t.id == k.tenant), None)
                if tenant is None or k.app not in tenant.hosts:
                    raise PlannerError(f"observed: {name}: a compute series names a host of its "
                                       f"tenant ({k.app!r} is not one of {k.tenant!r})")
            try:
                f = forecast.get(name)
            except KeyError:
                raise PlannerError(f"forecast: has no series {name!r}") from None
            try:
                f.quantile(self.settings.quantile)
            except KeyError:
                served = [q for q, _ in f.quantiles]
                raise PlannerError(f"quantile: {self.settings.quantile:g} is not among the quantiles "
                                   f"the forecast of {name} carries {served}; build the forecaster "
                                   "with it") from None
            keys.append(k)
        if not keys:
            raise PlannerError(f"observed: no series among {list(observed.names)[:5]}")
        if abs(forecast.step_s - observed.step_s) > 1e-9 * observed.step_s:
            raise PlannerError(f"forecast: step {forecast.step_s:g} s is not the observed series' "
                               f"{observed.step_s:g} s")
        return keys

    # ------------------------------------------------------------------ 1. what happened
    def _score(self, times, col, k: SeriesKey) -> Score | None:
        """The forecasts of the last ``score_window`` measured steps against what came."""
        n = len(times)
        out = []
        for i in range(max(0, n - self.settings.score_window), n):
            f = self.forecasts.get((k, times[i]))
            if f is not None and np.isfinite(col[i]):
                out.append((abs(col[i] - f[0]), bool(col[i] <= f[2] + 1e-9)))
        if not out:
            return None
        return Score(round(float(np.mean([e for e, _ in out])), 4),
                     round(sum(c for _, c in out) / len(out), 3), len(out))

    def _outcomes(self, times, col, k: SeriesKey, held: bool) -> None:
        """Move ``k``'s margin by every newly measured step whose rate in force is known."""
        st = self.settings
        m = self.margins.setdefault(k, Margin(st.initial_margin))
        for i, t in enumerate(times):
            if (self.last_seen is not None and t <= self.last_seen) or (k, t) not in self.in_force \
                    or not np.isfinite(col[i]):
                continue
            violated = exceeds(col[i], self.in_force[(k, t)])
            if violated and held and i == len(times) - 1:
                continue  # a surge the anomaly policy holds back is not the forecast's miss
            m.update(violated, st.budget, st.adapt_rate, st.margin_limit,
                     adapt=not (violated and (k, t) in self.limited))
            self.recent.setdefault(k, Recent({})).add(t, scored=True, violated=violated)

    # ------------------------------------------------------------------ the decision
    # One function on purpose (~80 lines): its numbered steps share the per-key state of one
    # decision (usage, surge, requirement, margin), and the order of the steps is the contract.
    def decide(self, now: float, observed: SeriesSet, forecast: Forecast,
               current: Plan | None, name: str | None = None,
               avoid: frozenset = frozenset()) -> Decision:
        """``observed``: the measured series (names :class:`SeriesKey` names, bandwidth in
        Mbit/s, NaN where a step was not measured), its last row the newest complete step;
        ``forecast``: of the steps after it, with the allocated quantile; ``current``: the plan in
        force, as read back (None: nothing is); ``avoid``: links (frozensets of two switch names)
        the scans say are down (:func:`planner.scans.suspect_links`)."""
        st = self.settings
        keys = self._keys(observed, forecast)
        step = observed.step_s
        t0 = observed.start.timestamp()
        times = [round(t0 + i * step, 6) for i in range(observed.rows)]
        cols = {k: np.asarray(observed.values[:, observed.names.index(k.name)], dtype=float)
                for k in keys}
        newest = times[-1]
        fresh = self.last_seen is None or newest > self.last_seen
        # 1. the rate read back now was in force during every step measured since the last call
        if fresh and current is not None:
            for k in keys:
                v = held(current, k)
                if v is None:
                    continue
                since = newest if self.last_seen is None else self.last_seen
                for t in times:
                    if t > since or t == newest:
                        self.in_force[(k, t)] = v
        usage = dict(zip(keys, self._latest(cols, keys)))
        scored = {k: self._score(times, cols[k], k) for k in keys}
        surge = {k: self._surge(k, newest, cols[k][-1]) for k in keys}
        holding = st.anomaly_policy in ("cap", "alert") and current is not None
        for k in keys:
            self._outcomes(times, cols[k], k, holding and surge[k] > st.anomaly_threshold)
        if fresh:
            self._reference(times, cols, [k for k in keys if not is_compute(k)], step)
        # 3, 4. the requirement over the horizon, the budget's margin, the floor
        required, margin, floored, reasons = {}, {}, [], []
        for k in keys:
            up = max(forecast.get(k.name).quantile(st.quantile))
            m = self.margins.setdefault(k, Margin(st.initial_margin))
            margin[k] = round(m.margin * scale(cols[k]), 6)
            required[k] = max(0.0, up + margin[k])
            low = floor(cols[k], st.budget)
            if low is not None and required[k] < low:
                floored.append(k)
                reasons.append(f"{k.tenant}/{k.app}: forecast {required[k]:.2f} Mbit/s is below "
                               f"the newest measurement {usage[k]:.2f} by more than the recent "
                               f"drops; allocated for {low:.2f}")
                required[k] = low
        # 4b. behind reacting: a forecaster whose violations are more than both the budget
        # allows (beyond doubt) and what reacting violated on the same steps, or whose forecasts
        # are worse than repeating the step before (beyond doubt), gets at least the reactive
        # reference's rate
        behind = []
        for k in keys:
            ref = self.reference.rate.get(k)
            if ref is None or required[k] >= ref / (1 + st.headroom):
                continue
            why = self._behind(k, newest) or self._worse(k, times, cols[k])
            if why:
                behind.append(k)
                reasons.append(f"{k.tenant}/{k.app}: {why}; allocated at least what reacting "
                               f"holds, {ref:.2f} Mbit/s")
                required[k] = ref / (1 + st.headroom)
        # 2. anomalies
        anomalies = []
        for k in keys:
            if surge[k] <= st.anomaly_threshold:
                continue
            had = held(current, k)
            what = f"{k.tenant}/{k.app}: {usage[k]:.2f} {k.unit} is {surge[k]:.1f} interval widths " \
                   "above its forecast"
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
        # 5. the spend cap
        horizon = len(forecast.get(keys[0].name).times)
        net = [k for k in keys if not is_compute(k)]
        ceiling = self.reference.cap({k: required[k] * (1 + st.headroom) for k in net}) \
            if st.spend_cap else {}
        capped = {k: v for k, v in ceiling.items() if required[k] * (1 + st.headroom) > v + 1e-9}
        for k, v in capped.items():
            reasons.append(f"{k.tenant}/{k.app}: {required[k] * (1 + st.headroom):.2f} Mbit/s is more "
                           f"than reacting would have spent; held to {v:.2f} (spend cap)")
        # 6. allocation: bandwidth over the links, compute per host
        plan = allocate(self.spec, {k.app_key: required[k] for k in net},
                        {k.app_key: usage[k] for k in net}, current, now,
                        self.alloc_state, st.allocator(step), name=name or f"plan-{now:.0f}",
                        avoid=avoid, ceiling={k.app_key: v for k, v in ceiling.items()})
        compute: dict[str, list] = {"cpu": [], "memory": []}
        for k in keys:
            if is_compute(k):
                v, why = size(k, required[k], usage[k], held(current, k), now, self.compute_state,
                              st.allocator(step))
                compute[k.metric].append((k.app, v))
                reasons.append(why)
        plan = replace(plan, cpu_quotas=tuple(compute["cpu"]), memory_limits=tuple(compute["memory"]),
                       valid_from=now, valid_until=now + horizon * step,
                       reasons=plan.reasons + tuple(anomalies) + tuple(reasons))
        short = {k for k in net if (held(plan, k) or 0.0) < required[k] * (1 - st.min_change) - 1e-9}
        self._remember(keys, forecast, newest, step, times[0], short)
        self.last_seen = newest if self.last_seen is None else max(self.last_seen, newest)
        share = {k: self.margins[k].share for k in keys if self.margins[k].share is not None}
        return Decision(plan, forecast, st.quantile, required, tuple(anomalies), margin,
                        tuple(floored), share, {k: v for k, v in scored.items() if v is not None},
                        tuple(capped), tuple(behind))

    def _behind(self, k: SeriesKey, now: float) -> str | None:
        """Why ``k`` is behind reacting on outcomes, or None: its violations over the last day
        (:class:`planner.budget.Recent`) are more than the budget allows, beyond doubt (a
        budget-rate process gives that many in that many steps with probability below
        ``evidence``), and more than the reactive reference's over the same day."""
        st = self.settings
        if k not in self.recent or not st.evidence:
            return None
        n, v, r = self.recent[k].totals(now)
        if not n or v <= r or float(binom.sf(v - 1, n, st.budget)) >= st.evidence:
            return None
        return f"{v} violated steps of {n} in the last day are more than the budget allows and " \
               f"than reacting's {r}"

    def _worse(self, k: SeriesKey, times: list[float], col: np.ndarray) -> str | None:
        """Why ``k``'s forecasts are behind, or None: over the observed steps whose forecast is
        remembered, their errors are larger than repeating the step before, beyond doubt
        (:func:`planner.budget.worse_than_persistence` below ``evidence``)."""
        st = self.settings
        if not st.evidence:
            return None
        rows = [i for i in range(1, len(times)) if (k, times[i]) in self.forecasts]
        if not rows:
            return None
        median = [self.forecasts[(k, times[i])][0] for i in rows]
        p = worse_than_persistence(col[rows], np.asarray(median), col[[i - 1 for i in rows]])
        if p is None or p >= st.evidence:
            return None
        return f"its forecasts of the last {len(rows)} steps were worse than repeating the step " \
               f"before (Wilcoxon p = {p:.2g})"

    def _reference(self, times, cols, keys: list[SeriesKey], step: float) -> None:
        """Feed the reactive reference every newly measured step (the first call: the newest)."""
        st = self.settings
        rs = st.reactive_for(step)
        for i, t in enumerate(times):
            if (self.last_seen is None and i < len(times) - 1) or \
                    (self.last_seen is not None and t <= self.last_seen):
                continue
            for k in keys:
                if np.isfinite(cols[k][i]):
                    missed = self.reference.observe(k, cols[k][i], self.in_force.get((k, t)), t, rs,
                                                    st.reactive_start)
                    self.recent.setdefault(k, Recent({})).add(t, reference_violated=missed)
            self.reference.seen_s += step

    @staticmethod
    def _latest(cols, keys) -> list[float]:
        """Per key, the newest measured value (0 if none)."""
        out = []
        for k in keys:
            finite = np.flatnonzero(np.isfinite(cols[k]))
            out.append(float(cols[k][finite[-1]]) if len(finite) else 0.0)
        return out

    def _surge(self, k: SeriesKey, t: float, actual: float) -> float:
        """``actual`` at ``t`` in interval widths above the forecast for it (0 if none)."""
        f = self.forecasts.get((k, t))
        if f is None or not np.isfinite(actual):
            return 0.0
        return float(interval_score(actual, f[1], f[2], above_only=True))

    def _remember(self, keys, forecast: Forecast, newest: float, step: float, oldest: float,
                  short: set[SeriesKey]) -> None:
        """Keep the forecast for each step of the horizon (a newer forecast of a step replaces an
        older one) and whether the plan's rate for it fell ``short`` of the requirement; forget
        what is older than the observed window and the score window."""
        lo_q = None
        for k in keys:
            f = forecast.get(k.name)
            lows = [q for q, _ in f.quantiles if q < 0.5]
            lo_q = lows[0] if lows else 0.5
            lo, up = f.quantile(lo_q), f.quantile(self.settings.quantile)
            for h in range(len(f.times)):
                t = round(newest + (h + 1) * step, 6)
                self.forecasts[(k, t)] = (float(f.median[h]), float(lo[h]), float(up[h]))
                if k in short:
                    self.limited.add((k, t))
                else:
                    self.limited.discard((k, t))
        keep = min(oldest, newest - self.settings.score_window * step)
        self.forecasts = {kt: v for kt, v in self.forecasts.items() if kt[1] >= keep}
        self.in_force = {kt: v for kt, v in self.in_force.items() if kt[1] >= keep}
        self.limited = {kt for kt in self.limited if kt[1] >= keep}

    def warmed(self) -> Planner:
        """The planner that goes on from this one's warm-up (:mod:`planner.replay` before a
        window, ``netshadow run`` before its first cycle): the budget margins it learnt, with
        their counts zeroed so that the violation share reported is what follows, the forecasts
        it made (step 4's test against persistence reads them from the first step on), and the
        time it has run (the spend cap holds from a planner's second day); the reference, its
        bank and the allocator start afresh."""
        margins = {k: replace(m, steps=0, violated=0) for k, m in self.margins.items()}
        return Planner(self.spec, self.settings, margins=margins, forecasts=dict(self.forecasts),
                       reference=Reference(seen_s=self.reference.seen_s))

    # ------------------------------------------------------------------ persistence
    def memory(self) -> dict:
        """What a restarted planner needs to go on scoring (JSON-able)."""
        return {"forecasts": [[k.name, t, list(v)] for (k, t), v in self.forecasts.items()],
                "in_force": [[k.name, t, v] for (k, t), v in self.in_force.items()],
                "limited": [[k.name, t] for k, t in sorted(self.limited, key=lambda kt: (kt[0].name, kt[1]))],
                "margins": [[k.name, *m.as_list()] for k, m in self.margins.items()],
                "recent": [[k.name, r.as_list()] for k, r in self.recent.items()],
                "reference": self.reference.as_dict(),
                "last_seen": self.last_seen}

    def restore(self, memory: dict) -> None:
        try:
            self.forecasts = {(SeriesKey.parse(n), float(t)): tuple(float(x) for x in v)
                              for n, t, v in memory.get("forecasts", [])}
            self.in_force = {(SeriesKey.parse(n), float(t)): float(v)
                             for n, t, v in memory.get("in_force", [])}
            self.limited = {(SeriesKey.parse(n), float(t)) for n, t in memory.get("limited", [])}
            self.margins = {SeriesKey.parse(n): Margin.from_list(v)
                            for n, *v in memory.get("margins", [])}
            self.recent = {SeriesKey.parse(n): Recent.from_list(v) for n, v in memory.get("recent", [])}
            self.reference = Reference.from_dict(memory.get("reference", {}))
            ls = memory.get("last_seen")
            self.last_seen = float(ls) if ls is not None else None
        except (AttributeError, TypeError, ValueError) as e:
            raise PlannerError(f"memory: the stored planner state does not parse: {e}") from None
