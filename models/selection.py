"""Forecaster selection: per series and horizon, the median of the candidates that forecast the
most recent history best, with intervals calibrated on that history (split conformal).

No single model wins everywhere: the LSTM wins on bursty request volumes and loses to
Holt-Winters on smooth link series; persistence is hard to beat one step ahead on a backbone
link. :class:`Selection` therefore holds several candidates and decides by a **backtest**:

1. the history is split chronologically; the last ``holdout`` share (at least ``MIN_HOLDOUT``
   steps) is the backtest, the rows before it the fitting part;
2. every candidate is fitted on the fitting part and forecasts every backtest row at every
   horizon ``1..horizon`` from the rows before it (a rolling origin: nothing it forecasts is in
   what it read);
3. per series and horizon the :data:`POOL` candidates with the lowest backtest MAE form the pool,
   and the forecast is the median of theirs (forecast pooling). A candidate that cannot forecast
   a series (too little history for its season, a constant series) is never in the pool there.
   The median of the few best rather than the single best: a backtest is a few days, and the
   candidate that won them is often not the one that wins the next day (a holiday, a regime
   change in the backtest); measured on the generalisation suite's baselines, the argmin was
   1.86x the best baseline on its worst scenario one step ahead and 2.43x three steps ahead, the
   median of the three best 1.25x and 1.22x, and no worse on the median scenario (0.98x against
   1.02x). ``chosen`` still names the single best, and the pool is said beside it. A candidate
   that reads a covariate (:mod:`models.covariate`) is not pooled: it replaces the pool where its
   backtest MAE beat the pool's;
   **online**, the backtest goes on: the forecast of row ``i`` ``h`` steps ahead is the median
   of the three candidates whose ``h``-step forecasts of the ``window`` steps up to row ``i - h``
   (as many as the backtest had) erred least, so a candidate that stops forecasting well leaves
   the pool once the steps it forecast badly outweigh the others, without a refit. A row with
   fewer steps known before it (the start of a series, a window shorter than the backtest) takes
   the backtest's pool, and a series whose pool is a covariate reader's keeps it. A pool fixed at
   the fit forecasts the day after the backtest with the ranking of the days before it.
   Measured on the generalisation suite's baselines (``benchmarks/generalisation.py --no-lstm
   --lab ''``, the same code with the pool fixed and ranked online), the selection's MAE x the
   best baseline went from 1.021 / 1.037 / 1.014 to 1.012 / 1.010 / 1.006 at h = 1 / 3 / 12 on
   the median scenario and from 1.53 / 2.11 / 1.38 to 1.53 / 1.59 / 1.38 on the worst
   (``nab-nyc_taxi``); ``nab-rds_cpu_utilization`` went from 1.28 to 1.01 one step ahead. It
   was worse on one scenario, ``nab-ec2_network_in_5abac7`` (1.05 to 1.25 one step ahead: its
   isolated spikes counted in the ranking for as long as they were in the window).
   **Clipped errors.** Both rankings (the backtest's and the online one) therefore compare the
   candidates on their absolute errors clipped at ``clip``: the :data:`CLIP_Q` quantile, over
   the backtest's steps, of the median candidate's absolute error at each step (per series and
   horizon, fixed at the fit, so it reads nothing the forecast may not). A step where every
   candidate erred far more than usual - an isolated spike, an outage - says little about which
   of them forecasts better, yet with plain absolute errors one such step outweighs a day of
   ordinary ones and decides the pool for as long as it is in the window; clipped, it counts as
   an ordinary bad step. The ranking is the same wherever errors stay below the clip. Measured
   on the generalisation suite's baselines (``benchmarks/generalisation.py --no-lstm --lab ''``
   against the same code ranking plain MAE), see ``docs/profiler.md``;
4. the pooled forecast's backtest errors give the intervals, one quantile at a time (each tail
   one-sided, so the upper quantile that sizes an allocation is calibrated on its own): the
   conformal quantile of the score ``(actual - median) / (median + level)``, with ``level`` the
   series' mean over the fitting part. Dividing by the forecast level widens the interval where
   the forecast is high - inside demand peaks, where an interval of fixed width under-covers.
   The quantiles are taken per **forecast-level bin** (Mondrian conformal prediction: Vovk et
   al. 2003; Bostrom & Johansson 2020): the backtest steps are split at the terciles of the
   pooled forecast (fewer bins when the backtest has under :data:`MIN_BIN` steps per bin), and a
   forecast is given the quantiles of the steps whose forecast fell in its bin. One set of
   quantiles for every level covers too much where the series is quiet and too little where it
   is busy; measured on the generalisation suite (``benchmarks/generalisation.py``), the
   10-90 % interval's coverage on the worst scenario went from 0.73 to 0.80;
5. **online**: once the forecasts have been running, each quantile is calibrated on the newest
   scores instead (rolling split-conformal). The backtest is a few days that ended where the
   fit did; the day being forecast is often calmer or busier (a weekend after weekdays), and a
   calibration that stays where the backtest left it covered 79-94 % of such a day instead of
   80 %. The row ``i`` forecast ``h`` steps ahead takes the conformal quantile of the
   :func:`recent` scores observed by row ``i - h`` among the rows whose forecast fell in its
   forecast-level bin (a window over every level would carry a quiet night's scores into the
   morning peak). The window is the fewest scores whose tail beyond the quantile holds
   :data:`RECENT_TAIL` in expectation (100 for the 10 % and 90 % quantiles, 1000 for 99 %), so
   every quantile's estimate rests on as many exceedances; a row with fewer known scores in its
   bin before it (the start of a series, a short window) keeps the backtest's quantiles. The
   newest scores of refitted baselines are partly in-sample (step 6), which makes the first
   test steps' intervals slightly narrow. Measured on the generalisation suite's baselines
   (``benchmarks/generalisation.py``), each tail was missed on 4-12 % of the test day's steps
   one step ahead (2-13 % calibrated on the backtest alone);
6. the baselines are fitted again on the whole history (cheap; their parameters follow the
   newest data); an LSTM keeps the weights learned on the fitting part (training it twice would
   double the cost) and reads the newest steps as its input window.

``choice()`` says, per series and horizon, what was chosen and the backtest MAE of every
candidate (``tpp evaluate`` and ``benchmarks/generalisation.py`` show it).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .base import Forecaster
from .forecast import DEFAULT_QUANTILES, Forecast
from .series import SeriesSet

MIN_HOLDOUT = 24  # backtest steps at least
HOLDOUT = 0.2  # share of the history that is the backtest
POOL = 3  # candidates whose median forecasts (the best by backtest MAE)
BINS = 3  # forecast-level bins the intervals are calibrated in, at most
MIN_BIN = 50  # backtest steps per bin at least (fewer bins below that)
RECENT_TAIL = 10  # scores beyond a quantile that its online calibration window holds
CLIP_Q = 0.9  # ranking errors are clipped at this quantile of the backtest's typical error


def recent(q: float) -> int:
    """Steps of recent scores that calibrate quantile ``q`` online: the fewest that hold
    :data:`RECENT_TAIL` beyond it in expectation."""
    return math.ceil(RECENT_TAIL / min(q, 1.0 - q) - 1e-9)


class Selection(Forecaster):
    name = "selection"

    def __init__(self, candidates: list[Forecaster], horizon: int = 1,
                 quantiles: tuple[float, ...] = DEFAULT_QUANTILES, holdout: float = HOLDOUT,
                 fitted: tuple[Forecaster, ...] = ()):
        """``fitted``: candidates already fitted elsewhere, used as they are (their backtest is
        then partly in-sample; say so where it is shown)."""
        super().__init__(quantiles=quantiles)
        self._used: dict[int, np.ndarray] = {}  # horizon -> (C, T, N) the last online pool
        if not candidates:
            raise ValueError("candidates: at least one forecaster is needed")
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon: must be an integer >= 1 (got {horizon!r})")
        if not 0 < holdout < 1:
            raise ValueError(f"holdout: must be in (0, 1) (got {holdout!r})")
        self.candidates = list(candidates)
        self.horizon = horizon
        self.holdout = holdout
        self.fitted = tuple(fitted)
        self.chosen: np.ndarray | None = None  # (horizon, N) the best candidate per horizon, series
        self.pool: np.ndarray | None = None  # (C, horizon, N) True: in the pool
        self.backtest_mae: np.ndarray | None = None  # (C, horizon, N)
        self.rank_mae: np.ndarray | None = None  # (C, horizon, N) the clipped MAE ranked on
        self.clip: np.ndarray | None = None  # (horizon, N) Mbit/s: where ranking errors are clipped
        self.window = 0  # steps the pool is ranked on online (the backtest's length)
        self.reads_covariate: np.ndarray | None = None  # (C,) True: the candidate reads a covariate
        self.scores: np.ndarray | None = None  # (Q, BINS, horizon, N) conformal score quantiles
        self.edges: np.ndarray | None = None  # (horizon, N, BINS - 1) forecast-level bin edges
        self.level: np.ndarray | None = None  # (N,) the series' mean over the fitting part

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.candidates]

    def _split(self, rows: int) -> int:
        n = max(MIN_HOLDOUT, int(round(rows * self.holdout)))
        if rows - n < 2 * self.horizon + 2:
            raise ValueError(f"series: {rows} steps are too few for a backtest of {n} steps at "
                             f"horizon {self.horizon}")
        return rows - n

    def fit(self, series: SeriesSet) -> Selection:
        self.series = series
        cut = self._split(series.rows)
        v = series.values
        y = v[cut:]
        usable, meds = [], []
        for c in self.candidates:
            if not any(c is f for f in self.fitted):
                try:
                    c.fit(series.slice(0, cut))
                except ValueError:
                    continue  # e.g. too little history for this candidate; it cannot be chosen
            usable.append(c)
            meds.append(np.stack([_median(c, v, h, series.start)[cut:]
                                  for h in range(1, self.horizon + 1)]))  # (H, T, N)
        if not usable:
            raise ValueError("candidates: none could be fitted on the backtest's fitting part")
        self.candidates = usable
        med = np.stack(meds)  # (C, H, T, N)
        err = np.abs(med - y[None, None])
        ok = np.isfinite(err)
        # a candidate that left a tenth of the backtest steps unforecast is not comparable: it loses
        comparable = ok.mean(axis=2) >= 0.9  # (C, H, N)
        self.backtest_mae = np.where(comparable, _mean(err, ok), np.inf)  # (C, H, N)
        self.clip = _clip(err, comparable)  # (H, N)
        mae = np.where(comparable, _mean(np.minimum(err, self.clip[None, :, None]), ok), np.inf)
        self.rank_mae = mae
        self.chosen = np.argmin(mae, axis=0)  # (H, N)
        self.reads_covariate = np.array([hasattr(c, "with_covariate") for c in usable])
        self.pool = _pool(mae, list(self.reads_covariate), med, y, self.clip)
        self.window = len(y)
        self.level = np.maximum(np.nan_to_num(np.nanmean(np.abs(v[:cut]), axis=0)), 1e-9)
        picked = _pooled(med, self.pool)  # (H, T, N)
        score = (y[None] - picked) / (np.maximum(picked, 0) + self.level)
        self.edges = _edges(picked)
        self.scores = _binned_conformal(score, _bin(picked, self.edges), self.quantiles)
        for c in self.candidates:  # the baselines learn from the newest data too
            if getattr(c, "name", "") != "lstm" and not any(c is f for f in self.fitted):
                c.fit(series)
        self._resid = {}
        return self

    def pooled_names(self, h: int, j: int) -> list[str]:
        """The backtest's pool at horizon ``h`` for series ``j``, best first (online the pool
        is ranked again on the newest steps: see the module docstring, step 3)."""
        inside = np.flatnonzero(self.pool[:, h - 1, j])
        return [self.candidates[i].name for i in sorted(inside, key=lambda i: self.rank_mae[i, h - 1, j])]

    def choice(self) -> dict[str, dict[int, dict]]:
        """Per series and horizon: the best candidate on the backtest (``chosen``), the
        backtest's pool, every candidate's backtest MAE and the clipped MAE they were ranked by
        (``rank_mae``; see the module docstring, step 3)."""
        out: dict[str, dict[int, dict]] = {}
        for j, name in enumerate(self.series.names):
            for h in range(self.horizon):
                out.setdefault(name, {})[h + 1] = {
                    "chosen": self.candidates[self.chosen[h, j]].name,
                    "pool": self.pooled_names(h + 1, j),
                    "backtest_mae": {c.name: _finite(self.backtest_mae[i, h, j])
                                     for i, c in enumerate(self.candidates)},
                    "rank_mae": {c.name: _finite(self.rank_mae[i, h, j])
                                 for i, c in enumerate(self.candidates)}}
        return out

    def context(self, horizon: int = 1) -> int:
        """What the candidates read, and the recent scores that calibrate the intervals."""
        return max(c.context(horizon) for c in self.candidates) + 2 * horizon + self.window + \
            BINS * max(recent(q) for q in self.quantiles)

    def _median(self, values: np.ndarray, h: int, start) -> np.ndarray:
        if not 1 <= h <= self.horizon:
            raise ValueError(f"horizon: this selection forecasts 1..{self.horizon} steps (got {h})")
        fixed = self.pool[:, h - 1]  # (C, N) the pool the backtest chose
        # online the plain candidates that forecast the backtest are ranked again; a series whose
        # pool is a covariate reader's keeps it
        eligible = np.isfinite(self.backtest_mae[:, h - 1]) & ~self.reads_covariate[:, None] \
            & ~(fixed & self.reads_covariate[:, None]).any(axis=0)[None, :]
        meds = np.full((len(self.candidates),) + values.shape, np.nan)
        for i, c in enumerate(self.candidates):
            if fixed[i].any() or eligible[i].any():
                meds[i] = _median(c, values, h, start)
        pool = _online_pool(meds, values, h, self.window, fixed, eligible, self.clip[h - 1])
        self._used[h] = pool
        return _pooled_rows(meds, pool)

    def point(self, values, h):
        return self._median(values, h, None)

    def forecast(self, values, h, start=None):
        return self._forecast(values, h, start, None)

    def forecast_tail(self, values, h, start, rows):
        return self._forecast(values, h, start, rows)

    def _forecast(self, values, h, start, rows: int | None):
        """The aligned median and quantiles; with ``rows``, the quantiles of only the last
        ``rows`` rows are calibrated online (the others keep the backtest's)."""
        values = np.asarray(values, dtype=float)
        med = self._median(values, h, start)
        width = np.maximum(med, 0) + self.level[None, :]
        b = _bin(med[None], self.edges[h - 1:h])[0]  # (T, N)
        sc = self.scores[:, b, h - 1, np.arange(med.shape[1])[None, :]]  # (Q, T, N)
        seen = (values - med) / width  # (T, N) the score of every observed row
        first = 0 if rows is None else max(0, len(values) - rows)
        for k, q in enumerate(self.quantiles):
            sc[k, first:] = _rolling_conformal(seen, b, h, recent(q), q, sc[k], first)
        sc = np.sort(sc, axis=0)  # windows of different lengths must not cross the quantiles
        qs = np.maximum(med[None] + sc * width[None], 0.0)
        return med, qs

    def forget(self) -> None:
        for c in self.candidates:
            c.forget()

    def note(self, name: str) -> str:
        """The backtest's pool per horizon (:meth:`predict` says the pool each forecast used)."""
        j = self.series.names.index(name)
        return "; ".join(f"h{h} {_said(self.pooled_names(h, j))}" for h in range(1, self.horizon + 1))

    def predict(self, horizon: int, series: SeriesSet | None = None) -> Forecast:
        """As :meth:`Forecaster.predict`; each series' note names, per horizon, the candidates
        whose median it is: the pool ranked online on the newest steps before the origin, which
        need not be the backtest's."""
        self._used = {}
        fc = super().predict(horizon, series)
        s = self.series if series is None else series
        out = []
        for j, sf in enumerate(fc.series):
            said = []
            for h in range(1, horizon + 1):
                used = self._used[h][:, s.rows - 1 + h, j]  # the row predict read at horizon h
                names = sorted(np.flatnonzero(used), key=lambda i: self.rank_mae[i, h - 1, j])
                said.append(f"h{h} {_said([self.candidates[i].name for i in names])}")
            out.append(replace(sf, note="; ".join(said)))
        return replace(fc, series=tuple(out))


def _said(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"median({', '.join(names)})"


def _median(c: Forecaster, values: np.ndarray, h: int, start) -> np.ndarray:
    """``c``'s aligned median, given the time of the first row (``start``: the LSTM's calendar
    features and a covariate read it, and a model that reuses its last call's outputs matches
    rows by it)."""
    return c.point_at(values, h, start)


def _pool(mae: np.ndarray, reads_covariate: list[bool], med: np.ndarray, y: np.ndarray,
          clip: np.ndarray) -> np.ndarray:
    """(C, H, N) the pool per horizon and series: the :data:`POOL` candidates of lowest clipped
    backtest MAE ``mae`` (C, H, N) among those that read no covariate; a candidate that reads one
    replaces the pool where its own is lower than the pool's median forecast's (``med``
    (C, H, T, N) the backtest forecasts of ``y`` (T, N), errors clipped at ``clip`` (H, N))."""
    cov = np.array(reads_covariate)
    plain = np.where(cov[:, None, None], np.inf, mae)
    if not np.isfinite(plain).any(axis=0).all():  # a series only a covariate reader forecasts
        plain = mae
    pool = _best(plain)
    if cov.any():
        pmae = np.nanmean(np.minimum(np.abs(_pooled(med, pool) - y[None]), clip[:, None]), axis=1)  # (H, N)
        for i in np.flatnonzero(cov):
            better = mae[i] < np.where(np.isfinite(pmae), pmae, np.inf)
            pool = np.where(better[None], np.arange(len(mae))[:, None, None] == i, pool)
            pmae = np.where(better, mae[i], pmae)
    return pool


def _mean(err: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(C, H, N) the mean of ``err`` (C, H, T, N) over T where ``ok``; inf where nothing is."""
    n = ok.sum(axis=2)
    return np.where(n > 0, np.where(ok, err, 0.0).sum(axis=2) / np.maximum(n, 1), np.inf)


def _clip(err: np.ndarray, comparable: np.ndarray) -> np.ndarray:
    """(H, N) the level at which ranking errors are clipped: the :data:`CLIP_Q` quantile, over
    the backtest's steps, of the median absolute error of the ``comparable`` (C, H, N) candidates
    at each step (``err`` (C, H, T, N)); inf where that is not above 0 (a series the candidates
    mostly forecast exactly: nothing to clip)."""
    typical = np.where(comparable[:, :, None, :] & np.isfinite(err), err, np.nan)
    known = np.isfinite(typical).any(axis=0)  # (H, T, N)
    step = np.nanmedian(np.where(known[None], typical, 0.0), axis=0)  # (H, T, N)
    step = np.where(known, step, np.nan)
    out = np.full(step.shape[::2], np.inf)
    for h in range(step.shape[0]):
        for j in range(step.shape[2]):
            s = step[h, :, j][np.isfinite(step[h, :, j])]
            if len(s):
                c = float(np.quantile(s, CLIP_Q))
                out[h, j] = c if c > 0 else np.inf
    return out


def _best(mae: np.ndarray) -> np.ndarray:
    """True for the :data:`POOL` candidates (first axis) of lowest finite ``mae``, ties to the
    earlier candidate: the one ranking rule of the backtest's pool and the online one."""
    rank = np.argsort(np.argsort(mae, axis=0, kind="stable"), axis=0, kind="stable")
    return (rank < POOL) & np.isfinite(mae)


def _pooled(med: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(H, T, N) the median over candidates of ``med`` (C, H, T, N) where ``pool`` (C, H, N), the
    same pool at every step (:func:`_pooled_rows`)."""
    return _pooled_rows(med, pool[:, :, None, :])


def _online_pool(meds: np.ndarray, values: np.ndarray, h: int, window: int, fixed: np.ndarray,
                 eligible: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """(C, T, N) per row ``i`` the pool ranked on the ``window`` steps up to row ``i - h``: the
    :data:`POOL` ``eligible`` (C, N) candidates whose forecasts ``meds`` (C, T, N) of ``values``
    (T, N) there had the lowest MAE with every error clipped at ``clip`` (N,) (a candidate that
    left a tenth of them unforecast is not ranked); ``fixed`` (C, N), the backtest's pool, where
    fewer than ``window`` steps are known before row ``i - h`` or no candidate can be ranked."""
    C, T, N = meds.shape
    out = np.broadcast_to(fixed[:, None, :], (C, T, N)).copy()
    if window < 1 or T - h - window < 0:
        return out
    err = np.minimum(np.abs(meds - values[None]), clip[None, None, :])
    ok = np.isfinite(err)
    zero = np.zeros((C, 1, N))
    cs = np.concatenate([zero, np.cumsum(np.where(ok, err, 0.0), axis=1)], axis=1)
    cn = np.concatenate([zero, np.cumsum(ok, axis=1)], axis=1)
    rows = np.arange(h + window - 1, T)  # rows whose window (rows i-h-window+1 .. i-h) is inside
    hi, lo = rows - h + 1, rows - h + 1 - window
    n = cn[:, hi] - cn[:, lo]
    mae = np.where(eligible[:, None, :] & (n >= 0.9 * window),
                   (cs[:, hi] - cs[:, lo]) / np.maximum(n, 1), np.inf)  # (C, rows, N)
    pool = _best(mae)
    ranked = pool.any(axis=0)[None]  # (1, rows, N)
    out[:, rows] = np.where(ranked, pool, out[:, rows])
    return out


def _pooled_rows(med: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """The median over candidates (the first axis) of ``med`` where ``pool`` (broadcast to
    ``med``'s shape): (T, N) from (C, T, N), a pool per step; a step some pooled candidate left
    unforecast takes the others' median."""
    x = np.where(pool & np.isfinite(med), med, np.nan)
    n = np.isfinite(x).sum(axis=0)
    return np.where(n > 0, np.nanmedian(np.where(n > 0, x, 0.0), axis=0), np.nan)


def _edges(picked: np.ndarray) -> np.ndarray:
    """(H, N, BINS - 1) the forecast levels that split the backtest's forecasts ``picked``
    (H, T, N) into equal-count bins, :data:`MIN_BIN` steps each at least (unused edges inf)."""
    H, _, N = picked.shape
    out = np.full((H, N, BINS - 1), np.inf)
    for h in range(H):
        for j in range(N):
            p = picked[h, :, j][np.isfinite(picked[h, :, j])]
            b = int(np.clip(len(p) // MIN_BIN, 1, BINS))
            if b > 1:
                out[h, j, :b - 1] = np.quantile(p, [i / b for i in range(1, b)])
    return out


def _bin(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(H, T, N) the bin of each forecast ``x`` (H, T, N) by ``edges`` (H, N, BINS - 1)."""
    out = np.zeros(x.shape, dtype=int)
    for h in range(x.shape[0]):
        for j in range(x.shape[2]):
            out[h, :, j] = np.searchsorted(edges[h, j], x[h, :, j], side="right")
    return np.minimum(out, BINS - 1)


def _binned_conformal(score: np.ndarray, bins: np.ndarray, quantiles) -> np.ndarray:
    """(Q, BINS, H, N) the conformal quantiles of ``score`` (H, T, N) per bin ``bins`` (H, T, N);
    a bin with fewer than half :data:`MIN_BIN` scores takes those of every step."""
    every = np.stack([_conformal(score, q) for q in quantiles])  # (Q, H, N)
    out = np.repeat(every[:, None], BINS, axis=1)
    for b in range(BINS):
        inside = np.where(bins == b, score, np.nan)
        enough = (np.isfinite(inside).sum(axis=1) >= MIN_BIN // 2)[None]  # (1, H, N)
        out[:, b] = np.where(enough, np.stack([_conformal(inside, q) for q in quantiles]), every)
    return out


def _rolling_conformal(seen: np.ndarray, bins: np.ndarray, h: int, window: int, q: float,
                       fallback: np.ndarray, first: int = 0) -> np.ndarray:
    """(T - first, N) per row ``i >= first`` the split-conformal ``q`` quantile of the last
    ``window`` known scores ``seen`` (T, N) up to row ``i - h`` whose forecast fell in row
    ``i``'s bin (``bins`` (T, N)); ``fallback`` (T, N) where there are fewer than ``window``."""
    T, N = seen.shape
    out = fallback[first:].copy()
    k = _rank(window, q)
    rows = np.arange(first, T)
    for j in range(N):
        known = np.isfinite(seen[:, j])
        for b in np.unique(bins[first:, j]):
            inside = np.flatnonzero(known & (bins[:, j] == b))  # rows with a score, in bin b
            target = rows[bins[first:, j] == b]
            have = np.searchsorted(inside, target - h, side="right")  # scores known by i - h
            ok = have >= window
            if not ok.any():
                continue
            at = have[ok][:, None] - window + np.arange(window)[None, :]
            scores = seen[inside[at], j]  # (rows, window) each row's window
            out[target[ok] - first, j] = np.partition(scores, k, axis=1)[:, k]
    return out


def _conformal(score: np.ndarray, q: float) -> np.ndarray:
    """(H, N) the ``q`` quantile of ``score`` (H, T, N) over T with the split-conformal
    finite-sample correction (upper tails round up, lower tails down)."""
    out = np.zeros(score.shape[::2])
    for h in range(score.shape[0]):
        for j in range(score.shape[2]):
            s = np.sort(score[h, :, j][np.isfinite(score[h, :, j])])
            n = len(s)
            if n == 0:
                continue
            out[h, j] = s[_rank(n, q)]
    return out


def _rank(n: int, q: float) -> int:
    """The index, in ``n`` sorted scores, of their split-conformal ``q`` quantile (the
    finite-sample correction: upper tails round up, lower tails down)."""
    k = math.ceil((n + 1) * q) - 1 if q > 0.5 else math.floor((n + 1) * q) - 1
    return min(max(k, 0), n - 1)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
