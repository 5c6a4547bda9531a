"""Forecast error measures, in the series' own units. NaN cells (gaps, no history) are skipped."""

from __future__ import annotations

import numpy as np


def _valid(*arrays):
    ok = np.ones(arrays[0].shape, dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a)
    return ok


def mae(y, p) -> float:
    ok = _valid(y, p)
    return float(np.abs(y[ok] - p[ok]).mean())


def rmse(y, p) -> float:
    ok = _valid(y, p)
    return float(np.sqrt(((y[ok] - p[ok]) ** 2).mean()))


def mase(y, p, train) -> float:
    """Mean over series of MAE / (in-sample MAE of the one-step naive forecast on ``train``)."""
    scale = np.nanmean(np.abs(np.diff(train, axis=0)), axis=0)
    out = []
    for j in range(y.shape[1]):
        ok = _valid(y[:, j], p[:, j])
        if ok.any() and scale[j] > 0:
            out.append(np.abs(y[ok, j] - p[ok, j]).mean() / scale[j])
    return float(np.mean(out)) if out else float("nan")


def pinball(y, q_pred, q: float) -> float:
    ok = _valid(y, q_pred)
    d = y[ok] - q_pred[ok]
    return float(np.maximum(q * d, (q - 1) * d).mean())


def coverage(y, lo, hi) -> float:
    ok = _valid(y, lo, hi)
    return float(((y[ok] >= lo[ok]) & (y[ok] <= hi[ok])).mean())
