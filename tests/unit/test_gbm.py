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
