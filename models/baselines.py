"""Baseline forecasters: persistence, seasonal naive, moving average, Holt-Winters and a linear
autoregression (and, from :mod:`models.ets`, statsforecast's AutoETS: :func:`all_baselines`).

All are vectorised over series (numpy arrays of shape (rows, series)) and implement
:class:`models.base.Forecaster`. Holt-Winters is the additive model with level, trend and one
season, its smoothing parameters chosen per series by grid search on one-step training error.
The autoregression is fitted per series and horizon (see :class:`Autoregression`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .base import Forecaster
from .forecast import DEFAULT_QUANTILES
from .series import SeriesSet


def infer_season(series: SeriesSet) -> int:
    """The season in steps: a day or a week when the data show it (autocorrelation >= 0.2 of the
    mean-normalised total), else the lag with the highest autocorrelation."""
    v = np.nan_to_num(series.values / np.maximum(np.nanmean(series.values, axis=0), 1e-12))
    x = v.sum(axis=1) - v.sum(axis=1).mean()
    denom = float((x * x).sum()) or 1.0

    def acf(lag: int) -> float:
        return float((x[:-lag] * x[lag:]).sum()) / denom

    candidates = [int(round(d / series.step_s)) for d in (86400, 7 * 86400)]
    candidates = [c for c in candidates if 2 <= c <= series.rows // 2]
    if candidates:
        best = max(candidates, key=acf)
        if acf(best) >= 0.2:
            return best
    lags = range(2, max(3, series.rows // 3))
    return max(lags, key=acf)


def _shift(values: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(values, np.nan)
    if k < len(values):
        out[k:] = values[: len(values) - k]
    return out


class Persistence(Forecaster):
    """The last observed value."""

    name = "persistence"

    def point(self, values, h):
        return _shift(values, h)


class SeasonalNaive(Forecaster):
    """The value one season earlier than the target (or a whole number of seasons, if the
    horizon is longer than a season). ``season`` in steps; inferred when None."""

    name = "seasonal_naive"

    def __init__(self, season: int | None = None, **kw):
        super().__init__(**kw)
        self.season = season

    def _learn(self, series):
        if self.season is None:
            self.season = infer_season(series)

    def context(self, horizon=1):
        return self.season * int(np.ceil(horizon / self.season))

    def point(self, values, h):
        m = self.season
        return _shift(values, m * int(np.ceil(h / m)))


class MovingAverage(Forecaster):
    """Mean of the last ``window`` observed values (gaps ignored)."""

    name = "moving_average"

    def __init__(self, window: int = 12, **kw):
        super().__init__(**kw)
        if window < 1:
            raise ValueError(f"window: must be >= 1 (got {window!r})")
        self.window = window

    def context(self, horizon=1):
        return self.window

    def point(self, values, h):
        v = np.nan_to_num(values)
        n = (~np.isnan(values)).astype(float)
        cs = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(v, axis=0)])
        cn = np.vstack([np.zeros((1, v.shape[1])), np.cumsum(n, axis=0)])
        k = self.window
        s = cs[k:] - cs[:-k]
        c = cn[k:] - cn[:-k]
        mean = np.where(c > 0, s / np.maximum(c, 1), np.nan)  # row j: mean of rows j .. j+k-1
        out = np.full_like(values, np.nan)
        # target i uses rows i-h-k+1 .. i-h, i.e. mean row j = i-h-k+1
        for_target = np.arange(len(values)) - h - k + 1
        ok = for_target >= 0
        out[ok] = mean[for_target[ok]]
        return out


class HoltWinters(Forecaster):
    """Additive Holt-Winters (level, trend, season ``season`` steps), parameters per series."""

    name = "holt_winters"
    GRID_ALPHA = (0.1, 0.3, 0.5, 0.8)
    GRID_BETA = (0.0, 0.01, 0.05)
    GRID_GAMMA = (0.05, 0.2, 0.4)

    def __init__(self, season: int | None = None, **kw):
        super().__init__(**kw)
        self.season = season
        self.params: np.ndarray | None = None  # (3, N): alpha, beta, gamma per series

    def _filter(self, values, alpha, beta, gamma, horizons):
        """Run the filter over ``values`` (T, N) with parameter arrays broadcastable to
        (K, N); returns {h: (K, T, N)} aligned forecasts."""
        m = self.season
        T, N = values.shape
        K = alpha.shape[0]
        first = np.nan_to_num(np.nanmean(values[:m], axis=0)) if T >= m else np.zeros(N)
        start = np.nan_to_num(values[:m] - first) if T >= m else np.zeros((m, N))
        if K == 1:  # one parameter set (forecasting, not the grid search): a loop per series
            return {h: _holt_winters_1(values, start, first, alpha, beta, gamma, m, h)[None]
                    for h in horizons}
        level = np.broadcast_to(first, (K, N)).copy()
        trend = np.zeros((K, N))
        season = np.broadcast_to(start, (K, m, N)).copy()
        out = {h: np.full((K, T, N), np.nan) for h in horizons}
        for t in range(m, T):
            y = values[t]
            ph = t % m
            s_old = season[:, ph, :]
            obs = ~np.isnan(y)
            yv = np.where(obs, y, level + trend + s_old)
            new_level = alpha * (yv - s_old) + (1 - alpha) * (level + trend)
            trend = beta * (new_level - level) + (1 - beta) * trend
            season[:, ph, :] = np.where(obs, gamma * (yv - new_level) + (1 - gamma) * s_old, s_old)
            level = new_level
            for h in horizons:
                if t + h < T:
                    out[h][:, t + h, :] = level + h * trend + season[:, (t + h) % m, :]
        return out

    def _learn(self, series):
        if self.season is None:
            self.season = infer_season(series)
        grid = np.array([(a, b, g) for a in self.GRID_ALPHA for b in self.GRID_BETA
                         for g in self.GRID_GAMMA])
        a, b, g = (grid[:, i][:, None] for i in range(3))
        pred = self._filter(series.values, a, b, g, [1])[1]
        err = np.nanmean(np.abs(pred - series.values[None]), axis=1)  # (K, N)
        best = np.nanargmin(np.where(np.isnan(err), np.inf, err), axis=0)
        self.params = grid[best].T  # (3, N)

    def context(self, horizon=1):
        return 4 * self.season  # the filter starts from the first season and settles in the next

    def point(self, values, h):
        a, b, g = (self.params[i][None, :] for i in range(3))
        return np.maximum(self._filter(values, a, b, g, [h])[h][0], 0.0)


def _holt_winters_1(values: np.ndarray, season0: np.ndarray, level0: np.ndarray, alpha, beta,
                    gamma, m: int, h: int) -> np.ndarray:
    """:meth:`HoltWinters._filter` for one parameter set (``alpha``, ``beta``, ``gamma``
    broadcastable to (1, N)) and one horizon, series by series on Python floats: the same
    arithmetic in the same order, without an array operation's overhead per step (the selection
    forecasts the whole window at every decision). (T, N) aligned forecasts."""
    T, N = values.shape
    out = np.full((T, N), np.nan)
    a, b, g = (np.broadcast_to(x, (1, N))[0].tolist() for x in (alpha, beta, gamma))
    for j in range(N):
        al, be, ga = a[j], b[j], g[j]
        ys = values[:, j].tolist()
        season = season0[:, j].tolist()
        level, trend = float(level0[j]), 0.0
        col = [math.nan] * T
        for t in range(m, T):
            y = ys[t]
            ph = t % m
            s_old = season[ph]
            obs = y == y  # not NaN
            yv = y if obs else level + trend + s_old
            new_level = al * (yv - s_old) + (1 - al) * (level + trend)
            trend = be * (new_level - level) + (1 - be) * trend
            if obs:
                season[ph] = ga * (yv - new_level) + (1 - ga) * s_old
            level = new_level
            if t + h < T:
                col[t + h] = level + h * trend + season[(t + h) % m]
        out[:, j] = col
    return out


class Autoregression(Forecaster):
    """A direct linear autoregression per series and horizon: the value ``h`` steps ahead as a
    linear function of the last ``lags`` values and of the three values around the same phase one
    season before the target (where the season is longer than ``h`` and fits twice in the
    history). Direct - one regression per horizon rather than feeding forecasts back - so an
    ``h``-step forecast's coefficients are fitted on ``h``-step errors.

    Fitted per series with Huber's loss (iteratively reweighted least squares: residuals beyond
    their median size weigh as in least absolute deviations), Mallows weights on the rows whose
    lags hold an outlying value (:func:`_leverage_weights`) and a small ridge penalty on the
    centred, scaled lags, so that an isolated spike in the history - as a target or read as a
    lag - does not pull the coefficients towards it. Persistence, the moving average and the
    seasonal naive forecast are special cases of it; whether it beats them on the steps after
    its history is what the selection's backtest decides. Gaps are read as the value before them
    (a series' leading gap is left out of the fit). A history shorter than four times ``lags``
    is read with fewer lags; a series with too few steps to fit at all is forecast by
    persistence, and its note says so."""

    name = "autoregression"
    RIDGE = 1e-3  # penalty on the lag coefficients, per row, on the centred and scaled lags
    ITERATIONS = 8  # reweighting passes (Huber's loss)

    def __init__(self, season: int | None = None, lags: int = 12, **kw):
        super().__init__(**kw)
        if not isinstance(lags, int) or lags < 1:
            raise ValueError(f"lags: must be an integer >= 1 (got {lags!r})")
        self.season = season
        self.lags = lags
        self.used_lags = lags
        self.coef: dict[int, np.ndarray] = {}  # h -> (features, N)
        self.short: set[str] = set()

    def _learn(self, series):
        if self.season is None:
            self.season = infer_season(series)
        self.used_lags = max(1, min(self.lags, series.rows // 4))  # a short history: fewer lags
        self.coef = {}
        self.short: set[str] = set()  # series too short to fit at some horizon: persistence there

    def _seasonal(self, h: int) -> list[int]:
        """Offsets before the target of the seasonal features at horizon ``h`` (none when the
        season is not longer than the horizon, or longer than half the fitted history)."""
        m = self.season or 0
        rows = self.series.rows if self.series is not None else 0
        return [m - 1, m, m + 1] if h < m - 1 and m + 1 <= rows // 2 else []

    def context(self, horizon=1):
        return max(self.used_lags, max(self._seasonal(horizon), default=0) - horizon + 1)

    def _features(self, values: np.ndarray, h: int) -> np.ndarray:
        """(F, T, N) features of the target row ``i`` (read at row ``i - h`` or before); NaN
        where the history is too short."""
        v = pd.DataFrame(values).ffill().to_numpy()  # a gap reads as the value before it
        T, N = v.shape
        out = [np.ones((T, N))]
        out += [_shift(v, h + k) for k in range(self.used_lags)]
        out += [_shift(v, k) for k in self._seasonal(h)]
        return np.stack(out)

    def _fit_h(self, h: int) -> np.ndarray:
        x = self._features(self.series.values, h)  # (F, T, N)
        y = self.series.values
        F, _, N = x.shape
        coef = np.zeros((F, N))
        coef[1] = 1.0  # persistence where a series cannot be fitted
        for j in range(N):
            ok = np.isfinite(y[:, j]) & np.isfinite(x[:, :, j]).all(axis=0)
            if ok.sum() < 2 * F:
                self.short.add(self.series.names[j])
                continue
            t = y[ok, j]
            mu = float(t.mean())
            sd = float(np.mean(np.abs(t - mu))) or 1.0
            # centred and scaled: the penalty is relative to the series' variation, whatever its level
            X = np.hstack([np.ones((len(t), 1)), (x[1:, ok, j].T - mu) / sd])
            t = (t - mu) / sd
            pen = self.RIDGE * len(t) * np.eye(F)
            pen[0, 0] = 0.0
            lev = _leverage_weights(X[:, 1:], t)
            w = np.ones(len(t))
            for _ in range(self.ITERATIONS):
                Xw = X * (w * lev)[:, None]
                b = np.linalg.solve(X.T @ Xw + pen, Xw.T @ t)
                r = np.abs(t - X @ b)
                w = 1.0 / np.maximum(r, max(float(np.median(r)), 1e-9))
            coef[0, j] = mu * (1.0 - b[1:].sum()) + sd * b[0]
            coef[1:, j] = b[1:]
        return coef

    def point(self, values, h):
        if h not in self.coef:
            self.coef[h] = self._fit_h(h)
        x = self._features(np.asarray(values, dtype=float), h)
        return np.maximum(np.einsum("ftn,fn->tn", x, self.coef[h]), 0.0)

    def note(self, name: str) -> str:
        return "persistence: too little history to fit the autoregression" if name in self.short else ""


LEVERAGE_Z = 3.0  # robust z-score beyond which a regression row is down-weighted


def _leverage_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(rows,) Mallows weights of the regression rows whose features ``x`` (rows, F) hold an
    outlying value: ``min(1, LEVERAGE_Z / z)`` with ``z`` the row's largest robust z-score (the
    distance from the median of ``y`` in median absolute deviations, scaled to a normal's
    standard deviation). Huber's loss bounds what an outlying *target* pulls; a spike read as a
    lag is a feature far from the rest, which would pull the coefficients towards it unweighted."""
    med = float(np.median(y))
    mad = 1.4826 * float(np.median(np.abs(y - med))) or float(np.mean(np.abs(y - med))) or 1.0
    z = np.max(np.abs(x - med), axis=1) / mad if x.shape[1] else np.zeros(len(y))
    return np.minimum(1.0, LEVERAGE_Z / np.maximum(z, 1e-12))


def all_baselines(season: int | None = None,
                  quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> list[Forecaster]:
    from .ets import ETS  # statsforecast's AutoETS (it imports this module)

    return [Persistence(quantiles=quantiles), SeasonalNaive(season, quantiles=quantiles),
            MovingAverage(12, quantiles=quantiles), HoltWinters(season, quantiles=quantiles),
            Autoregression(season, quantiles=quantiles), ETS(season, quantiles=quantiles)]
