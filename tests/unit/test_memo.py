"""Outputs reused by time (models.memo): only where an origin's rows are the same rows at the
same times, and never across a time that does not fall on a row."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.memo import OriginMemo

T0 = pd.Timestamp("2024-01-01", tz="UTC")
STEP = 300.0


def remembered(values, start=T0):
    m = OriginMemo()
    origins = np.arange(len(values))
    m.keep(values, start, origins, origins.astype(float) * 10)  # output: 10 x the origin's row
    return m


def test_a_window_moved_on_keeps_the_outputs_of_its_unchanged_origins():
    v = np.arange(40.0).reshape(20, 2)
    m = remembered(v)
    new = np.vstack([v[3:], [[99.0, 99.0]]])  # three rows on, one new row
    origins = np.arange(len(new))
    keep, kept = m.reuse(new, T0 + pd.Timedelta(seconds=3 * STEP), STEP, origins, reads=4)
    # origins whose four rows lie in the window and are not the new row: rows 3..16 here
    assert keep.tolist() == [False] * 3 + [True] * 14 + [False] * 1
    assert kept.tolist() == [10.0 * (o + 3) for o in range(3, 17)]  # the old row's output


def test_a_revised_row_recomputes_every_origin_that_reads_it():
    v = np.arange(40.0).reshape(20, 2)
    m = remembered(v)
    new = v.copy()
    new[10, 1] += 1.0
    keep, _ = m.reuse(new, T0, STEP, np.arange(20), reads=3)
    assert np.flatnonzero(~keep).tolist() == [0, 1, 10, 11, 12]


def test_a_gap_is_read_back_to_the_last_value_with_ffill():
    v = np.arange(40.0).reshape(20, 2)
    v[5:9, 0] = np.nan
    m = remembered(v)
    new = v[6:]  # starts inside the gap: what was read before it is gone
    origins = np.arange(len(new))
    plain, _ = m.reuse(new, T0 + pd.Timedelta(seconds=6 * STEP), STEP, origins, reads=2)
    filled, _ = m.reuse(new, T0 + pd.Timedelta(seconds=6 * STEP), STEP, origins, reads=2, ffill=True)
    assert plain[1:].all()  # two rows of the gap are the same rows either way
    # with ffill, an origin whose span begins in the gap read the value before it, now gone
    assert np.flatnonzero(~filled).tolist() == [0, 1, 2, 3]


def test_nothing_is_reused_across_a_time_off_the_rows_or_without_a_time_zone():
    v = np.arange(40.0).reshape(20, 2)
    m = remembered(v)
    o = np.arange(20)
    assert not m.reuse(v, T0 + pd.Timedelta(seconds=STEP / 2), STEP, o, reads=1)[0].any()
    assert not m.reuse(v, T0.tz_convert(None), STEP, o, reads=1)[0].any()
    assert not m.reuse(v, None, STEP, o, reads=1)[0].any()
    m.keep(v, None, o, o.astype(float))  # kept without a time: forgotten
    assert not m.reuse(v, T0, STEP, o, reads=1)[0].any()
    assert remembered(v).reuse(v, T0, STEP, o, reads=1)[0].all()
