"""Gradient-boosted trees on lagged changes: LightGBM as a candidate of the selection.

A direct forecaster (one model per horizon, as :class:`models.baselines.Autoregression`), but
nonlinear and **global**: one model per horizon is fitted on every series of the set at once,
so a scenario's four origin-destination pairs, or a tenant's applications, lend each other
their history. Trees cannot extrapolate beyond the values they were fitted on, and series of a
set differ in level by orders of magnitude, so nothing is fed to them in Mbit/s:

* the **target** is the change from the origin (the newest value read) to the value ``h`` steps
  later, in units of the series' *scale* (its mean absolute one-step change over the fitted
  history, as the planner's budget uses);
* the **features**, all read at the origin or before it: the origin's value over the series'
  mean level; the :data:`LAGS` - 1 values before it and the means of the last
  :data:`ROLLING` steps, each as a change from the origin in scale units; and where the season
  is longer than the horizon and fits twice in the history, the three values around the same
  phase one season before the target, likewise.

The loss is the absolute error (LightGBM's ``l1``), so the model forecasts the median change;
the forecast is the origin's value plus it, never below zero. Intervals are not the model's:
the selection calibrates its pooled forecast's (:mod:`models.selection`).

Its settings (:data:`PARAMS`, :data:`TREES`) are LightGBM's usual small-data choices - shallow
trees, a slow learning rate, rows and features subsampled - fixed before it was measured and not
tuned on the generalisation suite. Fitting is single-threaded and seeded: the same history gives
the same forecasts, and the planner's process keeps its other core. Where the set has fewer than
:data:`MIN_ROWS` rows to fit on at a horizon, that horizon is forecast by persistence and the
note says so.

Measured as a candidate of the baselines-only selection (``benchmarks/generalisation.py
--no-lstm --lab ''``): see ``docs/profiler.md``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .base import Forecaster
from .baselines import _shift, infer_season
from .memo import OriginMemo

LAGS = 12  # values read at the origin and before it
ROLLING = (6, 24)  # means over this many steps up to the origin
MIN_ROWS = 200  # training rows a horizon needs (over all series), else persistence there
TREES = 300
PARAMS = {"objective": "l1", "num_leaves": 15, "learning_rate": 0.05, "min_data_in_leaf": 40,
          "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
          "verbose": -1, "num_threads": 1, "seed": 1, "deterministic": True}


class GradientBoosting(Forecaster):
    """LightGBM on lagged changes, global over the set's series (see the module docstring).
    ``season`` in steps (inferred when None)."""

    name = "gbm"

    def __init__(self, season: int | None = None, **kw):
        super().__init__(**kw)
        self.season = season
        self.models: dict[int, object | None] = {}  # h -> the fitted booster (None: persistence)
        self.scale = np.zeros(0)  # (N,) Mbit/s: mean absolute one-step change
        self.level = np.zeros(0)  # (N,) Mbit/s: mean absolute value
        self._memo: dict[int, OriginMemo] = {}  # h -> the last call's outputs (models.memo)

    def _learn(self, series):
        if self.season is None:
            self.season = infer_season(series)
        v = series.values
        with warnings.catch_warnings():  # an all-gap series: its mean is NaN, read as 0
            warnings.simplefilter("ignore", RuntimeWarning)
            level = np.nan_to_num(np.nanmean(np.abs(v), axis=0)) if v.size else np.zeros(v.shape[1])
            step = np.nan_to_num(np.nanmean(np.abs(np.diff(v, axis=0)), axis=0)) if len(v) > 1 \
                else np.zeros(v.shape[1])
        self.level = np.maximum(level, 1e-9)
        self.scale = np.maximum(step, 0.01 * level + 1e-9)
        self.models = {}
        self._memo = {}

    def _seasonal(self, h: int) -> list[int]:
        m = self.season or 0
        rows = self.series.rows if self.series is not None else 0
        return [m - 1, m, m + 1] if h < m - 1 and m + 1 <= rows // 2 else []

    def context(self, horizon=1):
        return max(LAGS, *ROLLING, max(self._seasonal(horizon), default=0) - horizon + 1)

    def _features(self, values: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, N, F) features of the target row ``i`` (read at row ``i - h`` or before; NaN where
        the history is too short) and (T, N) the origin's value."""
        v = pd.DataFrame(values).ffill().to_numpy()  # a gap reads as the value before it
        origin = _shift(v, h)
        s = self.scale[None, :]
        out = [origin / self.level[None, :]]
        out += [(_shift(v, h + k) - origin) / s for k in range(1, LAGS)]
        for w in ROLLING:
            mean = pd.DataFrame(v).rolling(w, min_periods=w).mean().to_numpy()
            out.append((_shift(mean, h) - origin) / s)
        out += [(_shift(v, k) - origin) / s for k in self._seasonal(h)]
        return np.stack(out, axis=-1), origin

    def _fit_h(self, h: int):
        import lightgbm

        x, origin = self._features(self.series.values, h)
        y = (self.series.values - origin) / self.scale[None, :]
        X, Y = x.reshape(-1, x.shape[-1]), y.reshape(-1)
        ok = np.isfinite(Y) & np.isfinite(X).all(axis=1)
        if ok.sum() < MIN_ROWS:
            return None
        return lightgbm.train(PARAMS, lightgbm.Dataset(X[ok], Y[ok]), num_boost_round=TREES)

    def point(self, values, h):
        return self.point_at(values, h, None)

    def point_at(self, values, h, start=None):
        """As :meth:`point`; given the time of the first row, the outputs of the last call at
        the same horizon are reused at every origin whose rows did not change
        (:mod:`models.memo`), so a forecaster called on a history that moved on by a step runs
        the trees on the new origins only."""
        if h not in self.models:
            self.models[h] = self._fit_h(h)
            self._memo[h] = OriginMemo()
        values = np.asarray(values, dtype=float)
        x, origin = self._features(values, h)
        if self.models[h] is None:
            return np.maximum(origin, 0.0)
        T, N = origin.shape
        # row i is forecast at origin i - h: the change per origin row, then aligned
        at = np.arange(max(T - h, 0))
        change = np.full((len(at), N), np.nan)
        reuse, kept = self._memo[h].reuse(values, start, self.series.step_s, at,
                                          self.context(h), ffill=True)
        if kept is not None:
            change[reuse] = kept
        X = x[at[~reuse] + h]  # (O, N, F): the features of the target rows
        ok = np.isfinite(X).all(axis=-1)
        if ok.any():
            new = np.full(ok.shape, np.nan)
            new[ok] = self.models[h].predict(X[ok])
            change[~reuse] = new
        self._memo[h].keep(values, start, at, change)
        out = np.full((T, N), np.nan)
        out[h:] = change
        return np.maximum(origin + out * self.scale[None, :], 0.0)

    def forget(self) -> None:
        for memo in self._memo.values():
            memo.clear()

    def note(self, name: str) -> str:
        short = sorted(h for h, m in self.models.items() if m is None)
        return (f"persistence at h = {', '.join(map(str, short))}: too little history to fit the "
                "gradient-boosted model") if short else ""
