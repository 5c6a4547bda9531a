"""Anomaly detection: observations scored against the forecast interval, grouped into events.

Each observation ``y`` is compared with the one-step forecast made just before it. With the
interval ``[lo, hi]`` (by default the 0.5 % and 99.5 % quantiles of the model's own one-step
errors on the reference part), the score is how far ``y`` lies outside it in interval widths::

    score = max(0, (y - hi) / (hi - lo), (lo - y) / (hi - lo))

Observations with ``score > threshold`` are anomalous; anomalous observations closer than
``merge_gap`` steps form one event (start, end, the largest score). Using a model's forecast
rather than a fixed band means a daily rise that the model expects is not flagged, but a surge
the model did not expect is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .base import Forecaster
from .baselines import Persistence
from .forecast import Anomaly
from .series import SeriesSet


def interval_score(y, lo, hi, above_only: bool = False):
    """How far ``y`` lies outside ``[lo, hi]`` in interval widths (0 inside); with ``above_only``
    only an excess above ``hi`` counts (a surge). Works on scalars and arrays alike."""
    width = np.maximum(np.asarray(hi, dtype=float) - lo, 1e-9)
    above = (np.asarray(y, dtype=float) - hi) / width
    if above_only:
        return np.maximum(0.0, above)
    return np.maximum(0.0, np.maximum(above, (lo - np.asarray(y, dtype=float)) / width))


@dataclass(frozen=True)
class DetectorSettings:
    quantiles: tuple[float, float] = (0.005, 0.995)
    threshold: float = 0.5
    merge_gap: int = 12  # steps


class IntervalDetector:
    def __init__(self, model: Forecaster | None = None, settings: DetectorSettings = DetectorSettings()):
        if not settings.threshold >= 0:
            raise ValueError(f"threshold: must be >= 0 (got {settings.threshold!r})")
        self.model = model or Persistence()
        self.model.quantiles = tuple(settings.quantiles)
        self.settings = settings

    def fit(self, reference: SeriesSet) -> IntervalDetector:
        """Learn the model and its error quantiles on ``reference`` (data deemed normal)."""
        self.model.fit(reference)
        return self

    def scores(self, series: SeriesSet) -> np.ndarray:
        """(T, N) scores; NaN where there is no forecast or no observation."""
        med, qs = self.model.forecast(series.values, 1, series.start)
        y = series.values
        s = interval_score(y, qs[0], qs[-1])
        return np.where(np.isnan(y) | np.isnan(med), np.nan, s)

    def detect(self, series: SeriesSet, from_row: int = 0) -> list[Anomaly]:
        sc = self.scores(series)
        out = []
        for j, name in enumerate(series.names):
            flagged = np.flatnonzero(np.nan_to_num(sc[from_row:, j]) > self.settings.threshold) + from_row
            if len(flagged) == 0:
                continue
            groups = np.split(flagged, np.flatnonzero(np.diff(flagged) > self.settings.merge_gap) + 1)
            for g in groups:
                out.append(Anomaly(name, series.time(int(g[0])).isoformat(),
                                   series.time(int(g[-1])).isoformat(), float(np.nanmax(sc[g, j]))))
        return out


@dataclass(frozen=True)
class DetectionScore:
    series: str
    events: int
    windows: int
    true_events: int  # events overlapping a labelled window
    detected_windows: int
    precision: float
    recall: float
    mean_delay_s: float | None  # from window start to the first event inside it


def score_against_windows(events: list[Anomaly], windows: list[tuple[str, str]],
                          series: str) -> DetectionScore:
    """Precision = events overlapping a labelled window / events; recall = windows with at least
    one event / windows; delay = window start to its first event start (clipped at 0)."""
    ev = [(pd.Timestamp(a.start), pd.Timestamp(a.end)) for a in events if a.series == series]
    win = [(pd.Timestamp(s, tz="UTC") if pd.Timestamp(s).tzinfo is None else pd.Timestamp(s),
            pd.Timestamp(e, tz="UTC") if pd.Timestamp(e).tzinfo is None else pd.Timestamp(e))
           for s, e in windows]
    true_ev = sum(any(s <= we and e >= ws for ws, we in win) for s, e in ev)
    delays = []
    detected = 0
    for ws, we in win:
        inside = [s for s, e in ev if s <= we and e >= ws]
        if inside:
            detected += 1
            delays.append(max(0.0, (min(inside) - ws).total_seconds()))
    return DetectionScore(series, len(ev), len(win), true_ev, detected,
                          true_ev / len(ev) if ev else float("nan"),
                          detected / len(win) if win else float("nan"),
                          float(np.mean(delays)) if delays else None)
