"""Rolling-origin evaluation: every model forecasts every test step at every horizon.

Models are fitted on the chronological training part only (rows before ``test_start``); each
test row ``i`` is forecast from the data up to row ``i - h``, which may include earlier test rows
(observed by then) but never row ``i`` or later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from . import metrics
from .base import Forecaster
from .series import SeriesSet


@dataclass(frozen=True)
class Score:
    model: str
    horizon: int
    mae: float
    rmse: float
    mase: float
    pinball_lo: float
    pinball_hi: float
    coverage: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(models: list[Forecaster], series: SeriesSet, test_start: int,
             horizons: list[int], trained: tuple[Forecaster, ...] = ()) -> tuple[list[Score], dict]:
    """Scores per (model, horizon), and the aligned test forecasts for plotting:
    ``{(model, h): (median (T_test, N), lo, hi)}``. Models in ``trained`` were already fitted on
    the training part (or loaded) and are evaluated as they are; the others are fitted here."""
    if not 0 < test_start < series.rows:
        raise ValueError(f"test_start: row {test_start} is outside 1..{series.rows - 1}")
    train = series.slice(0, test_start)
    y = series.values[test_start:]
    scores, preds = [], {}
    for m in models:
        if not any(m is t for t in trained):
            m.fit(train)
        for h in horizons:
            med, qs = m.forecast(series.values, h, series.start)
            med, qs = med[test_start:], qs[:, test_start:]
            lo, hi = qs[0], qs[-1]
            q_lo, q_hi = m.quantiles[0], m.quantiles[-1]
            scores.append(Score(m.name, h, metrics.mae(y, med), metrics.rmse(y, med),
                                metrics.mase(y, med, train.values), metrics.pinball(y, lo, q_lo),
                                metrics.pinball(y, hi, q_hi), metrics.coverage(y, lo, hi)))
            preds[(m.name, h)] = (med, lo, hi)
    return scores, preds


def split_row(series: SeriesSet, test_fraction: float | None, test_start: str | None) -> int:
    if test_start is not None:
        return series.index_of(test_start)
    f = 0.2 if test_fraction is None else test_fraction
    if not 0 < f < 1:
        raise ValueError(f"test_fraction: must be between 0 and 1 (got {f!r})")
    return int(round(series.rows * (1 - f)))


def best_baseline(scores: list[Score], horizon: int, exclude: str = "lstm") -> Score:
    cands = [s for s in scores if s.horizon == horizon and s.model != exclude and np.isfinite(s.mae)]
    return min(cands, key=lambda s: s.mae)
