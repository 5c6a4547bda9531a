"""Outputs reused by time: a forecaster called again on a history that moved on.

The loop, a replay and the selection's online ranking forecast from the newest ``context`` rows
at every step: the same history moved on by a step, its newest row revised, a few empty rows
appended for the horizons. A model whose output at an origin row reads a bounded span of rows
before it (a fixed input window, lags) gives at every origin whose rows did not change exactly
what it gave the call before, so :class:`OriginMemo` hands those outputs back and the model
computes only the others: the origins whose span holds a new or revised row, and those whose
span reaches the window's start.

Rows are matched by time (the window's first row is at ``start``, a row every ``step_s``
seconds), never by position, and a row is the same when all its values are (a gap equal to a
gap). A model that reads a gap as the value before it (``ffill``) reads beyond its span where
the span begins in a gap: the span is then extended back to the last value of every series, and
an origin whose extended span reaches the window's start is computed again.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T,) whether row ``i`` of ``a`` and of ``b`` (T, N) hold the same values (NaN equal to NaN)."""
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


class OriginMemo:
    """The last call's outputs per origin row, and the values and time they were computed from."""

    def __init__(self):
        self._last: tuple[np.ndarray, pd.Timestamp, np.ndarray, np.ndarray] | None = None
        self.reused = 0  # origins handed back, over all calls (what the memo saved)

    def clear(self) -> None:
        self._last = None

    def reuse(self, values: np.ndarray, start, step_s: float, origins: np.ndarray, reads: int,
              ffill: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Which ``origins`` (row indices of ``values``, T x N, first row at ``start``) keep the
        last call's output: (mask over ``origins``, the kept outputs in the mask's order; None
        when none is kept).
        ``reads``: the rows an origin's output reads, the origin's and those before it."""
        keep = np.zeros(len(origins), dtype=bool)
        if self._last is None or start is None or len(origins) == 0:
            return keep, None
        old_values, old_start, old_done, old_out = self._last
        try:
            shift = (pd.Timestamp(start) - old_start).total_seconds() / step_s
        except TypeError:  # one time zone-aware, the other not: nothing is reused
            return keep, None
        d = int(round(shift)) if math.isfinite(shift) else 0
        if not math.isfinite(shift) or abs(shift - d) > 1e-6:
            return keep, None
        T = len(values)
        # row r here is row r + d there
        lo, hi = max(0, -d), min(T, len(old_values) - d)
        same = np.zeros(T, dtype=bool)
        if hi > lo:
            same[lo:hi] = rows_equal(values[lo:hi], old_values[lo + d:hi + d])
        first = origins - reads + 1  # the span's first row
        ok = first >= 0
        reach = np.where(ok, first, 0)
        if ffill:
            # per series, the last row with a value at or before the span's first row
            idx = np.where(np.isfinite(values), np.arange(T)[:, None], -1)
            last = np.maximum.accumulate(idx, axis=0).min(axis=1)  # (T,) -1: a series has none
            back = last[reach]
            ok &= back >= 0
            reach = np.maximum(back, 0)
        changed = np.concatenate([[0], np.cumsum(~same)])
        ok &= changed[origins + 1] - changed[reach] == 0
        at = origins + d
        ok &= (at >= 0) & (at < len(old_done))
        ok[ok] = old_done[at[ok]]
        self.reused += int(ok.sum())
        return ok, (old_out[at[ok]] if ok.any() else None)

    def keep(self, values: np.ndarray, start, origins: np.ndarray, out: np.ndarray) -> None:
        """Remember ``out`` (one output per origin, in ``origins``' order) as computed from
        ``values`` whose first row is at ``start`` (None: nothing is remembered)."""
        if start is None:
            self._last = None
            return
        T = len(values)
        done = np.zeros(T, dtype=bool)
        done[origins] = True
        full = np.zeros((T,) + out.shape[1:], dtype=out.dtype)
        full[origins] = out
        self._last = (np.array(values, dtype=float, copy=True), pd.Timestamp(start), done, full)
