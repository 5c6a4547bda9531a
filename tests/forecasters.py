"""Checks every forecaster's contract is held to, shared by their unit tests."""

from __future__ import annotations

import numpy as np


def assert_reads_only_the_past(model, values: np.ndarray, h: int, row: int, bump: float = 100.0) -> None:
    """``model``'s aligned ``h``-step forecasts (``point``) of rows before ``row + h`` do not
    change when every value from ``row`` on does, and later ones do."""
    v = np.array(values, dtype=float)
    before = model.point(v, h)
    v[row:] += bump
    after = model.point(v, h)
    np.testing.assert_array_equal(before[: row + h], after[: row + h])
    assert not np.allclose(before[row + h:], after[row + h:])
