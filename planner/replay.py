"""The replay's predictive policy: a thin adapter from the replay's step protocol
(:class:`emulation.policies.Policy`) to :meth:`planner.core.Planner.decide`, the decision
``netshadow run`` makes.

Before step ``t`` it builds the observed series (the history before the replayed window, then the
steps measured so far: what the model reads, at least :data:`OBSERVED_MIN` steps), forecasts the
``horizon`` steps after it with the fitted model, and hands both and the plan in force (the rates
it asked for the step before, which the runner applied) to the planner. ``corrupt(t, median,
upper) -> (median, upper)`` damages the forecasts on purpose (the robustness check).

**Warm-up.** A deployed planner has been running before any window anyone replays: its budget
margins (:mod:`planner.budget`) have learnt from its own outcomes. A replay that started them cold
would score the first hours of every window on a margin that has seen nothing. So before step 0
the policy runs over the last ``warmup`` steps of the history (default in
:func:`netshadow.replaycmd.make_policy`: a day, as far as the history allows), deciding each step
exactly as in the window, with its rates taken as applied (idealised: what the runner would do
with them is not simulated). Only the margins carry over, with their counts set to zero so that
the violation share reported is the window's, and so does the day the planner has run (its
spend cap holds from a planner's second day, :mod:`planner.reference`), with the reference
restarting from the window's start and the bank from zero; the allocator starts the window
from nothing in force, as the runner does.

With ``metric="cpu"`` the keys are (tenant, host) and the rates are CPU quotas in cores: the
compute replay, decided by the same planner (:mod:`planner.compute`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from controller.plan import Plan
from emulation.policies import Policy, StepInput
from models.forecast import Forecast, SeriesForecast
from models.series import SeriesKey, SeriesSet
from topologies import NetworkSpec

from .core import Planner, PlannerSettings
from .forecasters import ForecasterChoice, forecast

OBSERVED_MIN = 48  # steps of measurements the planner is shown at least


class PredictivePolicy(Policy):
    name = "predictive"

    def __init__(self, keys, spec: NetworkSpec, model, choice: ForecasterChoice, history: np.ndarray,
                 start: pd.Timestamp, step_s: float, settings: PlannerSettings, corrupt=None,
                 metric: str = "bandwidth", warmup: int = 0):
        """``model``: fitted over the series of ``keys`` (in that order); ``history`` (H, N): the
        measured series before step 0 (lab Mbit/s), starting at ``start``; ``warmup``: steps of
        the history the policy runs over before step 0 (see the module docstring)."""
        super().__init__(keys)
        if settings.quantile != choice.quantile:
            raise ValueError(f"quantile: the planner allocates {settings.quantile:g}, the forecaster "
                             f"is built for {choice.quantile:g}")
        self.planner = Planner(spec, settings)
        self.model, self.choice, self.corrupt = model, choice, corrupt
        self.history = np.asarray(history, dtype=float)
        self.start, self.step_s = pd.Timestamp(start), float(step_s)
        self.metric = metric
        self.series_keys = [SeriesKey(t, a, metric) for t, a in self.keys]
        # what the model reads, and at least a few hours' worth for the planner's floor and scale
        self.context = max(model.context(choice.horizon), OBSERVED_MIN) + 2
        self.current = None
        self.decisions: dict[int, object] = {}
        if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
            raise ValueError(f"warmup: must be an integer >= 0 steps (got {warmup!r})")
        self.warmed = self._warm_up(min(warmup, max(0, len(self.history) - OBSERVED_MIN)))

    def _warm_up(self, steps: int) -> int:
        """Run the planner over the last ``steps`` rows of the history; keep its margins."""
        if steps == 0:
            return 0
        end = len(self.history)
        current = None
        for i in range(end - steps, end):
            obs = self._window(self.history[:i])
            fc = forecast(self.model, self.choice, obs)
            if self.corrupt is not None:
                fc = _damaged(fc, self.corrupt, i - end, self.choice.quantile)
            d = self.planner.decide((i - end) * self.step_s, obs, fc, current)
            current = self.in_force(np.array(d.rates(self.series_keys)), i - end)
        self.planner = self.planner.warmed()
        return steps

    def observed(self, s: StepInput) -> SeriesSet:
        return self._window(np.vstack([self.history, s.offered_mbps]) if s.t else self.history)

    def _window(self, seen: np.ndarray) -> SeriesSet:
        seen = np.maximum(seen, 0.0)
        lo = max(0, len(seen) - self.context)
        return SeriesSet(self.start + pd.Timedelta(seconds=self.step_s * lo), self.step_s,
                         tuple(k.name for k in self.series_keys), seen[lo:])

    def decide(self, s):
        obs = self.observed(s)
        fc = forecast(self.model, self.choice, obs)
        if self.corrupt is not None:
            fc = _damaged(fc, self.corrupt, s.t, self.choice.quantile)
        d = self.planner.decide(s.now_s, obs, fc, self.current)
        self.decisions[s.t] = d
        first = [fc.get(k.name) for k in self.series_keys]
        self.band[s.t] = (np.array([f.median[0] for f in first]),
                          np.array([f.quantile(self.choice.quantile)[0] for f in first]))
        if d.floored:
            self.notes[s.t] = "forecast below the floor for " + ", ".join(
                f"{k.tenant}/{k.app}" for k in d.floored)
        rates = np.array(d.rates(self.series_keys))
        self.current = self.in_force(rates, s.t)
        return rates

    def in_force(self, rates: np.ndarray, t: int) -> Plan:
        """The plan the runner applies for ``rates``: meters, or the hosts' CPU quotas."""
        if self.metric == "bandwidth":
            return self.plan(rates, t)
        return Plan(f"{self.name}-{t}", cpu_quotas=tuple((h, float(r)) for (_, h), r
                                                          in zip(self.keys, rates, strict=True)))


def _damaged(fc: Forecast, corrupt, t: int, quantile: float) -> Forecast:
    """``fc`` with its median and allocated quantile replaced by ``corrupt``'s (first step; the
    other quantiles kept on their side of the median)."""
    med = np.array([s.median[0] for s in fc.series])
    up = np.array([s.quantile(quantile)[0] for s in fc.series])
    med, up = corrupt(t, med, up)
    med, up = np.maximum(med, 0.0), np.maximum(up, 0.0)
    out = []
    for j, s in enumerate(fc.series):
        m = (float(med[j]),) + s.median[1:]
        qs = []
        for q, vals in s.quantiles:
            v = float(up[j]) if abs(q - quantile) < 1e-9 else vals[0]
            v = min(v, m[0]) if q < 0.5 else max(v, m[0])
            rest = tuple(min(x, mm) if q < 0.5 else max(x, mm) for x, mm in zip(vals[1:], m[1:]))
            qs.append((q, (v,) + rest))
        out.append(SeriesForecast(s.name, s.times, m, tuple(qs), s.model, "damaged on purpose"))
    return Forecast(fc.created, fc.step_s, tuple(out), fc.anomalies)


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
