"""Series input: every imperfection gets its documented treatment or an error naming the series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.series import SeriesError, SeriesSet, from_frame, load_wide_csv


def frame(times, **cols):
    return pd.DataFrame({"time": times, **cols})


def test_regular_csv(tmp_path):
    p = tmp_path / "w.csv"
    frame(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:10"], a=[1, 2, 3], b=[0, 0, 0]).to_csv(
        p, index=False)
    s, rep = load_wide_csv(p)
    assert s.step_s == 300 and s.names == ("a", "b") and s.rows == 3
    assert s.time(2) == pd.Timestamp("2024-01-01 00:10", tz="UTC")
    assert rep.missing_steps == 0 and rep.duplicates_dropped == 0
    with pytest.raises(ValueError):
        s.values[0, 0] = 5  # read-only


def test_gaps_duplicates_and_off_grid_times():
    t = ["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:05", "2024-01-01 00:11",
         "2024-01-01 00:15", "2024-01-01 00:40", "2024-01-01 00:45"]
    s, rep = from_frame(frame(t, a=[1, 2, 99, 4, 5, 10, 11]), fill_limit=1)
    assert rep.duplicates_dropped == 1 and rep.snapped_to_grid == 1  # 00:05 twice; 00:11 -> 00:10
    assert s.rows == 10 and rep.missing_steps == 4  # 00:20 .. 00:35
    assert list(s.values[:4, 0]) == [1, 2, 4, 5]  # the first of the duplicates is kept
    assert np.isnan(s.values[4:8, 0]).all()  # a gap longer than fill_limit stays a gap
    assert list(s.values[8:, 0]) == [10, 11]
    assert rep.gaps_filled == 0 and rep.gap_cells_left == 4


def test_short_gap_is_interpolated():
    t = pd.date_range("2024-01-01", periods=6, freq="5min").delete(2)
    s, rep = from_frame(frame(t, a=[0, 10, 30, 40, 50]))
    assert s.values[2, 0] == 20 and rep.gaps_filled == 1


def test_empty_cell_is_a_gap():
    s, _ = from_frame(frame(pd.date_range("2024-01-01", periods=3, freq="h"), a=[1, None, 3]),
                      fill_limit=0)
    assert np.isnan(s.values[1, 0])


@pytest.mark.parametrize("cols,msg", [
    ({"a": [1, -2, 3]}, "a: value -2.0"),
    ({"a": [1, "lots", 3]}, "a: value 'lots'"),
    ({"a": [1, float("inf"), 3]}, "a: value inf"),
])
def test_bad_values_name_series_and_time(cols, msg):
    with pytest.raises(SeriesError, match=msg) as e:
        from_frame(frame(pd.date_range("2024-01-01", periods=3, freq="h"), **cols))
    assert "2024-01-01 01:00" in str(e.value)


def test_structural_errors(tmp_path):
    with pytest.raises(SeriesError, match="no 'time'"):
        from_frame(pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(SeriesError, match="no series columns"):
        from_frame(pd.DataFrame({"time": ["2024-01-01", "2024-01-02"]}))
    with pytest.raises(SeriesError, match="not a time"):
        from_frame(frame(["yesterday", "today"], a=[1, 2]))
    with pytest.raises(SeriesError, match="at least 2 rows"):
        from_frame(frame(["2024-01-01"], a=[1]))
    with pytest.raises(SeriesError, match="no such file"):
        load_wide_csv(tmp_path / "missing.csv")


def test_constant_series_is_valid_and_invariants_enforced():
    s = SeriesSet(pd.Timestamp("2024-01-01"), 60.0, ("c",), np.full((5, 1), 7.0))
    assert s.start.tzinfo is not None
    with pytest.raises(SeriesError, match="negative"):
        SeriesSet(pd.Timestamp("2024-01-01"), 60.0, ("c",), np.array([[1.0], [-1.0]]))
    with pytest.raises(SeriesError, match="unique"):
        SeriesSet(pd.Timestamp("2024-01-01"), 60.0, ("c", "c"), np.ones((3, 2)))
    with pytest.raises(SeriesError, match="step_s"):
        SeriesSet(pd.Timestamp("2024-01-01"), 0.0, ("c",), np.ones((3, 1)))
