"""A leading indicator as a covariate: a base forecast corrected by how far a covariate - the
round-trip time of probes across the application's path - has risen above its recent level.

Queues build before a path saturates, so the RTT of probes across it can rise while the demand
on it is still climbing. :class:`Leading` wraps a base forecaster (persistence in the planner's
selection) and adds, per series and horizon ``h``::

    beta_h * rise(i - h),   rise(t) = cov(t) - median(cov(t - window) .. cov(t - 1))

``beta_h`` is fitted per series by least squares (shrunk by :data:`SHRINK`) on the base's own
``h``-step errors over the fitting history, from :data:`MIN_PAIRS` origins with a known rise at
least; with fewer, or where the covariate is unknown at the forecast origin, the correction is 0
and the forecast is the base's. It is a candidate of :class:`models.selection.Selection` that is
not pooled: per series and horizon it replaces the pool where its backtest MAE beat the pool's, and
a covariate that says nothing about demand gets a fitted response near zero.

The covariate is a :class:`models.series.SeriesSet` with the demand series' names (a name it
lacks is unknown throughout) and the same step; it is aligned by time, so it may start and end
anywhere and be rebound (:meth:`Leading.with_covariate`) to newer scans between forecasts. Units are the
covariate's (ms for RTT); ``beta_h`` is in the demand's unit per covariate unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import Forecaster
from .baselines import _shift
from .forecast import DEFAULT_QUANTILES
from .series import SeriesSet

WINDOW = 6  # steps of covariate history whose median is the level a rise is measured from
MIN_PAIRS = 8  # fitting origins with a known rise needed before a correction is fitted
SHRINK = 0.1  # ridge shrinkage of beta towards 0, relative to the rise's sum of squares


class Leading(Forecaster):
    """``base``'s forecast plus a fitted response to the covariate's rise (module docstring)."""

    needs_start = True  # aligns its covariate by the time of the first row

    def __init__(self, base: Forecaster, covariate_name: str = "rtt", window: int = WINDOW,
                 quantiles: tuple[float, ...] = DEFAULT_QUANTILES):
        super().__init__(quantiles=quantiles)
        if not isinstance(window, int) or window < 2:
            raise ValueError(f"window: must be an integer >= 2 steps (got {window!r})")
        self.base = base
        self.window = window
        self.name = f"{base.name}+{covariate_name}"
        self.covariate: SeriesSet | None = None  # what forecasts read
        self._fitted_on: SeriesSet | None = None  # the covariate bound when fitted
        self._beta: dict[int, np.ndarray] = {}  # h -> (N,)

    def with_covariate(self, covariate: SeriesSet | None) -> Leading:
        """Use ``covariate`` from now on (None: none; every forecast is then the base's)."""
        if covariate is not None and self.series is not None and \
                abs(covariate.step_s - self.series.step_s) > 1e-9 * self.series.step_s:
            raise ValueError(f"covariate: step {covariate.step_s:g} s is not the series' "
                             f"{self.series.step_s:g} s")
        self.covariate = covariate
        return self

    def context(self, horizon: int = 1) -> int:
        return self.base.context(horizon)

    def _learn(self, series: SeriesSet) -> None:
        cov = self.covariate
        if cov is None:
            raise ValueError("covariate: none is bound")
        if abs(cov.step_s - series.step_s) > 1e-9 * series.step_s:
            raise ValueError(f"covariate: step {cov.step_s:g} s is not the series' {series.step_s:g} s")
        if not np.isfinite(self._rise(cov, series.rows, series.start, series.names)).any():
            raise ValueError("covariate: no rise can be measured over the fitted series")
        self.base.fit(series)
        self._fitted_on = cov
        self._beta = {}

    def beta(self, h: int) -> np.ndarray:
        """(N,) the fitted response at horizon ``h``, demand units per covariate unit."""
        if h not in self._beta:
            s = self.series
            v = s.values
            resid = v - self.base.point(v, h)
            x = _shift(self._rise(self._fitted_on, s.rows, s.start, s.names), h)
            ok = np.isfinite(x) & np.isfinite(resid)
            sxx = np.where(ok, x * x, 0).sum(axis=0)
            sxr = np.where(ok, x * resid, 0).sum(axis=0)
            enough = (ok.sum(axis=0) >= MIN_PAIRS) & (sxx > 0)
            self._beta[h] = np.where(enough, sxr / np.maximum(sxx * (1 + SHRINK), 1e-300), 0.0)
        return self._beta[h]

    def _rise(self, cov: SeriesSet | None, rows: int, start, names) -> np.ndarray:
        """(rows, N) the covariate's rise over its recent median at each row (NaN: unknown)."""
        c = _aligned(cov, rows, start, names)
        level = pd.DataFrame(c).shift(1).rolling(self.window, min_periods=2).median().to_numpy()
        return c - level

    def _point(self, values: np.ndarray, h: int, start) -> np.ndarray:
        base = self.base.point(values, h)
        start = self.series.start if start is None else start
        x = _shift(self._rise(self.covariate, len(values), start, self.series.names), h)
        return np.maximum(base + np.nan_to_num(x * self.beta(h)[None, :]), 0.0)

    def point(self, values, h):
        """Aligned forecasts of ``values`` starting where the fitted series starts."""
        return self._point(values, h, None)

    def forecast(self, values, h, start=None):
        med = self._point(values, h, start)
        return med, self.interval(med, h)


def _aligned(cov: SeriesSet | None, rows: int, start, names) -> np.ndarray:
    """(rows, len(names)) ``cov`` on the grid of ``rows`` steps from ``start`` (NaN outside it)."""
    out = np.full((rows, len(names)), np.nan)
    if cov is None:
        return out
    offset = (pd.Timestamp(start) - cov.start).total_seconds() / cov.step_s
    k = int(round(offset))
    if abs(offset - k) > 1e-6:
        return out  # the grids do not line up: nothing is known
    lo, hi = max(0, -k), min(rows, cov.rows - k)
    for j, n in enumerate(names):
        if n in cov.names and hi > lo:
            out[lo:hi, j] = cov.values[lo + k:hi + k, cov.names.index(n)]
    return out


def bind_covariate(model: Forecaster, covariate: SeriesSet | None) -> Forecaster:
    """Bind ``covariate`` to ``model`` and, for a selection, to each of its candidates that reads
    one; other models are returned as they are."""
    for c in [model, *getattr(model, "candidates", [])]:
        if isinstance(c, Leading):
            c.with_covariate(covariate)
    return model
