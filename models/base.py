"""The interface every forecaster implements, baselines and LSTM alike.

``fit(series) -> self`` learns from a :class:`SeriesSet`; ``predict(horizon) -> Forecast``
forecasts the ``horizon`` steps after the fitted data. For evaluation, ``point(values, h)``
returns an array aligned with ``values`` whose row ``i`` is the forecast of row ``i`` made at
row ``i - h`` from rows ``<= i - h`` only (NaN where there is not enough history).

Intervals: unless a model produces its own quantiles, they come from the empirical quantiles of
its own ``h``-step errors on the training data, per series (``fit`` measures them), so every
model's interval is calibrated the same way and comparable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .forecast import DEFAULT_QUANTILES, Forecast, SeriesForecast
from .series import SeriesSet


class Forecaster(ABC):
    name = "forecaster"
    needs_start = False  # True: forecasts read the time of the rows (calendar features)

    def __init__(self, quantiles: tuple[float, ...] = DEFAULT_QUANTILES):
        self.quantiles = tuple(sorted(quantiles))
        self.series: SeriesSet | None = None
        self._resid: dict[int, np.ndarray] = {}  # h -> (len(quantiles), N) error quantiles

    def context(self, horizon: int = 1) -> int:
        """Rows of recent history a forecast ``horizon`` steps ahead reads (at least)."""
        return 1

    @abstractmethod
    def point(self, values: np.ndarray, h: int) -> np.ndarray:
        """Aligned ``h``-step forecasts (see the module docstring)."""

    def _learn(self, series: SeriesSet) -> None:  # noqa: B027 - optional hook
        """Model-specific fitting (parameters); default: nothing to learn."""

    def fit(self, series: SeriesSet) -> Forecaster:
        self.series = series
        self._learn(series)
        self._resid = {}
        return self

    def error_quantiles(self, h: int) -> np.ndarray:
        """(len(quantiles), N) quantiles of the training ``h``-step errors (actual - forecast)."""
        if h not in self._resid:
            v = self.series.values
            err = v - self.point(v, h)
            q = np.nanquantile(err, self.quantiles, axis=0) if np.isfinite(err).any() else None
            self._resid[h] = np.nan_to_num(q if q is not None else np.zeros((len(self.quantiles),
                                                                             v.shape[1])))
        return self._resid[h]

    def interval(self, median: np.ndarray, h: int) -> np.ndarray:
        """(len(quantiles), ...) quantile forecasts around ``median`` at horizon ``h``, >= 0."""
        q = self.error_quantiles(h)
        shape = (len(self.quantiles),) + (1,) * (median.ndim - 1) + (median.shape[-1],)
        out = np.maximum(median[None, ...] + q.reshape(shape), 0.0)
        lo = np.minimum(out[: sum(x < 0.5 for x in self.quantiles)], median[None, ...])
        hi = np.maximum(out[sum(x < 0.5 for x in self.quantiles):], median[None, ...])
        return np.concatenate([lo, hi])

    def point_at(self, values: np.ndarray, h: int, start=None) -> np.ndarray:
        """:meth:`point` where the time of ``values``' first row is known (``start``; None where
        it is not): a model that reads the calendar needs it, and one that reuses the outputs of
        its last call by time (:mod:`models.memo`) can. By default the median of
        :meth:`forecast` for a model that ``needs_start``, else :meth:`point`."""
        if self.needs_start:
            return self.forecast(values, h, start)[0]
        return self.point(values, h)

    def forget(self) -> None:  # noqa: B027 - optional hook
        """Drop the outputs kept for reuse by the next call (:mod:`models.memo`): the next
        forecast computes every origin anew. By default there are none."""

    def forecast(self, values: np.ndarray, h: int, start=None) -> tuple[np.ndarray, np.ndarray]:
        """Aligned ``h``-step median (T, N) and quantiles (Q, T, N) over ``values``, whose first
        row is at time ``start`` (models with calendar features need it). Models with their own
        quantiles override this."""
        med = self.point(values, h)
        return med, self.interval(med, h)

    def forecast_tail(self, values: np.ndarray, h: int, start, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`forecast` where only the last ``rows`` rows are read (a model whose intervals
        are calibrated row by row may skip the others; by default the same as forecast)."""
        return self.forecast(values, h, start)

    def note(self, name: str) -> str:
        """Why a series' forecast is not the model's own (e.g. a fallback); '' when it is."""
        return ""

    def predict(self, horizon: int, series: SeriesSet | None = None) -> Forecast:
        """The ``horizon`` steps after ``series`` (default: the fitted data), without refitting:
        a fitted model forecasts from newer data of the same series this way."""
        if self.series is None:
            raise RuntimeError("predict: call fit() first")
        if not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon: must be an integer >= 1 (got {horizon!r})")
        s = self.series if series is None else series
        if s.names != self.series.names:
            raise ValueError(f"series: {list(s.names)[:5]} are not the fitted series "
                             f"{list(self.series.names)[:5]}")
        ext = np.vstack([s.values, np.full((horizon, s.values.shape[1]), np.nan)])
        meds, qss = [], []
        for h in range(1, horizon + 1):
            m, q = self.forecast_tail(ext, h, s.start, horizon)
            meds.append(m[s.rows - 1 + h])
            qss.append(q[:, s.rows - 1 + h])
        med = np.nan_to_num(np.maximum(np.stack(meds), 0.0))  # (H, N)
        qs = np.nan_to_num(np.stack(qss, axis=1))  # (Q, H, N)
        nq_lo = sum(x < 0.5 for x in self.quantiles)
        qs[:nq_lo] = np.minimum(qs[:nq_lo], med[None])
        qs[nq_lo:] = np.maximum(qs[nq_lo:], med[None])
        times = tuple(s.time(s.rows - 1 + h).isoformat() for h in range(1, horizon + 1))
        out = []
        for j, name in enumerate(s.names):
            out.append(SeriesForecast(name, times, tuple(float(x) for x in med[:, j]),
                                      tuple((q, tuple(float(x) for x in qs[k, :, j]))
                                            for k, q in enumerate(self.quantiles)), self.name,
                                      self.note(name)))
        return Forecast(s.time(s.rows - 1).isoformat(), s.step_s, tuple(out))
