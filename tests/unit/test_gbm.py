"""LightGBM on lagged changes as a candidate: it reads only the past, learns what persistence
cannot, serves series of any level with one model, repeats itself, and falls back where it
cannot fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("lightgbm", reason="lightgbm is in the models extra (make test installs it)")

from models import metrics  # noqa: E402
from models.baselines import Persistence, all_baselines  # noqa: E402
from models.gbm import MIN_ROWS, GradientBoosting  # noqa: E402
from models.selection import Selection  # noqa: E402
from models.series import SeriesSet  # noqa: E402
from planner.forecasters import ForecasterChoice, fit  # noqa: E402
from tests.forecasters import assert_reads_only_the_past  # noqa: E402


def series(values, step=300.0):
    v = np.asarray(values, dtype=float)
    v = v[:, None] if v.ndim == 1 else v
    return SeriesSet(pd.Timestamp("2024-01-01"), step, tuple(f"s{i}" for i in range(v.shape[1])), v)


def daily(days=8, per_day=96, level=50.0, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(per_day * days)
    return level * (1 + 0.4 * np.sin(2 * np.pi * t / per_day) + rng.normal(0, 0.03, len(t)))


def test_aligned_forecasts_read_only_the_past():
    s = series(daily())
    m = GradientBoosting(season=96).fit(s.slice(0, 500))
    assert_reads_only_the_past(m, s.values, h=3, row=600)


def test_it_learns_a_daily_season_that_persistence_cannot():
    s = series(daily())
    fitted = 96 * 6
    m = GradientBoosting().fit(s.slice(0, fitted))
    y = s.values[fitted:]
    ours = metrics.mae(y, m.point(s.values, 12)[fitted:])
    assert ours < 0.5 * metrics.mae(y, Persistence().point(s.values, 12)[fitted:])


def test_one_model_serves_series_of_any_level():
    # the same shape at 1 Mbit/s and at 1000: in scale units they are one series to the trees
    v = np.column_stack([daily(level=1.0, seed=2), daily(level=1000.0, seed=3)])
    s = series(v)
    fitted = 96 * 6
    m = GradientBoosting(season=96).fit(s.slice(0, fitted))
    p = m.point(v, 3)[fitted:]
    rel = np.abs(p - v[fitted:]).mean(axis=0) / v[fitted:].mean(axis=0)
    assert rel.max() < 0.06 and rel.max() < 2 * rel.min()


def test_the_same_history_gives_the_same_forecasts():
    s = series(daily())
    a = GradientBoosting(season=96).fit(s.slice(0, 600)).point(s.values, 2)
    b = GradientBoosting(season=96).fit(s.slice(0, 600)).point(s.values, 2)
    np.testing.assert_array_equal(a, b)


def test_a_gap_reads_as_the_value_before_it():
    v = daily()
    s = series(v)
    m = GradientBoosting(season=96).fit(s.slice(0, 600))
    gappy = v.copy()
    gappy[650:655] = np.nan
    p = m.point(gappy[:, None], 1)
    assert np.isfinite(p[100:, 0]).all() and (p[100:, 0] >= 0).all()


def test_too_little_history_is_forecast_by_persistence_and_said_so():
    v = daily(days=1)[: MIN_ROWS // 2]
    m = GradientBoosting(season=96).fit(series(v))
    p = m.point(v[:, None], 1)
    np.testing.assert_array_equal(p[1:, 0], v[:-1])
    assert "persistence at h = 1" in m.note("s0")


def test_the_selection_holds_it_as_a_candidate():
    s = series(daily())
    sel = Selection(all_baselines(season=96) + [GradientBoosting(season=96)], horizon=1).fit(s)
    mae = sel.choice()["s0"][1]["backtest_mae"]
    assert mae["gbm"] is not None and mae["gbm"] < mae["persistence"]


def test_the_planner_builds_it_by_name_and_in_the_selection():
    s = series(daily(days=3))
    m, note = fit(ForecasterChoice("gbm", 0.9, 2), s)
    assert isinstance(m, GradientBoosting) and note == "gbm"
    assert m.predict(2).series[0].median[0] > 0
    short = series(daily(days=1)[:55])  # too short a fitting part for the LSTM: quick to build
    sel, _ = fit(ForecasterChoice("selection", 0.9, 1), short)
    assert "gbm" in [c.name for c in sel.candidates]


def test_a_history_moved_on_by_a_step_forecasts_as_a_fresh_model_does():
    """Called with the time of the first row, the trees run only on the origins whose rows
    changed (a loop or a replay forecasts from the same history moved on by a step, its newest
    row revised, empty rows appended for the horizons); the forecasts must be those computed
    anew, whatever the window did: moved on, moved back, a gap inside, a gap at its start."""
    v = np.column_stack([daily(days=10, seed=4), daily(days=10, level=5.0, seed=5)])
    s = series(v)
    m = GradientBoosting(season=96).fit(s.slice(0, 96 * 6))
    ahead = np.full((3, 2), np.nan)  # the horizons' empty rows, as Forecaster.predict appends
    revised = v[103:703].copy()
    revised[-1] *= 1.7  # the open step, measured further
    inside = v[104:704].copy()
    inside[-30:-25, 1] = np.nan
    gap = v.copy()
    gap[105:145, 0] = np.nan  # a window from row 105 begins in it; one from row 100 does not
    calls = [(v[100:700], 100), (np.vstack([v[101:701], ahead]), 101), (v[101:701], 101),
             (v[102:702], 102), (v[90:690], 90), (v[102:702], 102), (revised, 103),
             (inside, 104), (inside, 104), (gap[100:700], 100), (gap[105:705], 105),
             (v[106:706], 106)]
    for h in (1, 3, 12):
        before = m._memo.get(h).reused if h in m._memo else 0
        for values, row in calls:
            got = m.point_at(values, h, s.time(row))
            m.forget()  # as a model that computes every origin anew
            fresh = m.point_at(values, h, s.time(row))
            np.testing.assert_allclose(got, fresh, rtol=1e-9, atol=1e-9, equal_nan=True)
        assert m._memo[h].reused - before > len(calls) * 300  # and most origins were reused


def test_the_trees_run_on_the_new_origins_only():
    v = daily(days=10)
    s = series(v)
    m = GradientBoosting(season=96).fit(s.slice(0, 96 * 6))
    m.point_at(v[100:700, None], 1, s.time(100))
    rows = []
    real = m.models[1].predict
    m.models[1].predict = lambda x: (rows.append(len(x)), real(x))[1]
    m.point_at(v[101:701, None], 1, s.time(101))
    assert rows == [1]  # one new origin of one series
