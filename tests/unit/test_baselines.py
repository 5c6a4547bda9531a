"""Baselines, metrics, the Forecast contract and rolling evaluation on series with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import metrics
from models.baselines import (
    Autoregression,
    HoltWinters,
    MovingAverage,
    Persistence,
    SeasonalNaive,
    infer_season,
)
from models.evaluate import best_baseline, evaluate, split_row
from models.forecast import Forecast, ForecastError, SeriesForecast
from models.series import SeriesSet


def series(values, step=300.0):
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    return SeriesSet(pd.Timestamp("2024-01-01"), step, tuple(f"s{i}" for i in range(v.shape[1])), v)


def test_point_forecasts_use_only_the_past():
    v = np.arange(10.0)[:, None]
    assert Persistence().point(v, 2)[5, 0] == 3.0
    assert np.isnan(Persistence().point(v, 2)[1, 0])
    assert SeasonalNaive(season=4).point(v, 1)[9, 0] == 5.0
    assert SeasonalNaive(season=4).point(v, 6)[9, 0] == 1.0  # two seasons back
    assert MovingAverage(3).point(v, 1)[5, 0] == 3.0  # mean of rows 2, 3, 4
    assert MovingAverage(3).point(v, 2)[5, 0] == 2.0


def test_moving_average_ignores_gaps():
    v = np.array([[1.0], [np.nan], [3.0], [5.0]])
    assert MovingAverage(3).point(v, 1)[3, 0] == 2.0


def test_season_inferred_from_daily_pattern():
    t = np.arange(288 * 4)
    s = series(10 + 5 * np.sin(2 * np.pi * t / 288))
    assert infer_season(s) == 288


def test_holt_winters_tracks_a_seasonal_series():
    rng = np.random.default_rng(1)
    t = np.arange(48 * 20)
    v = 50 + 20 * np.sin(2 * np.pi * t / 48) + rng.normal(0, 1, len(t))
    s = series(v)
    hw = HoltWinters(season=48).fit(s.slice(0, 48 * 15))
    p = hw.point(s.values, 1)[48 * 15:]
    assert metrics.mae(s.values[48 * 15:], p) < 1.3  # noise MAE is 0.8
    assert metrics.mae(s.values[48 * 15:], Persistence().point(s.values, 1)[48 * 15:]) > 1.5


def test_holt_winters_forecasts_as_its_grid_search_filters():
    """Forecasting runs the filter for one parameter set series by series; the grid search runs
    it for many at once. The two must give the same numbers, gaps and all."""
    rng = np.random.default_rng(3)
    m, T = 24, 24 * 12
    v = 50 + 10 * np.sin(2 * np.pi * np.arange(T)[:, None] / m) + rng.normal(0, 2, (T, 3))
    v[100:110, 1] = np.nan  # a gap
    v[:5, 2] = np.nan  # a leading gap (inside the first season)
    hw = HoltWinters(season=m)
    a, b, g = np.array([[0.3, 0.8, 0.1]]), np.array([[0.01, 0.0, 0.05]]), np.array([[0.2, 0.05, 0.4]])
    for rows in (T, m - 1, m + 2):  # a full window, one shorter than a season, barely more
        one = hw._filter(v[:rows], a, b, g, [1, 5, 30])
        grid = hw._filter(v[:rows], np.vstack([a, a]), np.vstack([b, b]), np.vstack([g, g]), [1, 5, 30])
        for h in (1, 5, 30):
            np.testing.assert_array_equal(one[h][0], grid[h][1])


def test_predict_gives_a_valid_forecast_with_intervals():
    rng = np.random.default_rng(2)
    s = series(np.abs(100 + rng.normal(0, 10, (500, 2))))
    f = Persistence().fit(s).predict(3)
    assert len(f.series) == 2 and f.series[0].times[0] == s.time(500).isoformat()
    sf = f.get("s0")
    lo, hi = sf.quantile(0.1), sf.quantile(0.9)
    assert all(a <= m <= b for a, m, b in zip(lo, sf.median, hi))
    assert sf.median[0] == s.values[-1, 0]
    assert hi[0] - lo[0] == pytest.approx(2 * 1.2816 * 10 * np.sqrt(2), rel=0.2)  # diff of noise
    again = Forecast.from_json(f.to_json())
    assert again == f


def test_forecast_contract_rejects_crossing_quantiles():
    with pytest.raises(ForecastError, match="wrong side"):
        SeriesForecast("x", ("t1",), (5.0,), ((0.1, (6.0,)), (0.9, (7.0,))), "m")
    with pytest.raises(ForecastError, match="quantiles"):
        SeriesForecast("x", ("t1",), (5.0,), ((0.9, (6.0,)), (0.1, (4.0,))), "m")
    with pytest.raises(ForecastError, match="malformed"):
        Forecast.from_json('{"created": "x"}')


def test_metrics():
    y = np.array([[1.0, 2.0], [3.0, np.nan]])
    p = np.array([[2.0, 2.0], [3.0, 1.0]])
    assert metrics.mae(y, p) == pytest.approx(1 / 3)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt(1 / 3))
    assert metrics.pinball(np.array([1.0]), np.array([0.0]), 0.9) == pytest.approx(0.9)
    assert metrics.pinball(np.array([0.0]), np.array([1.0]), 0.9) == pytest.approx(0.1)
    assert metrics.coverage(np.array([1.0, 5.0]), np.array([0.0, 0.0]), np.array([2.0, 2.0])) == 0.5
    assert metrics.mase(np.array([[2.0]]), np.array([[1.0]]), np.array([[0.0], [2.0], [4.0]])) == 0.5


# seeded accuracy regression table: (model, maximum MAE) on a noisy daily pattern, h = 1
ACCURACY = [(Persistence, 2.0), (SeasonalNaive, 1.6), (MovingAverage, 4.5), (HoltWinters, 1.2),
            (Autoregression, 1.2)]


@pytest.mark.parametrize("cls,max_mae", ACCURACY, ids=[c.__name__ for c, _ in ACCURACY])
def test_accuracy_table(cls, max_mae):
    rng = np.random.default_rng(7)
    t = np.arange(96 * 14)
    v = 40 + 15 * np.sin(2 * np.pi * t / 96) + rng.normal(0, 1, len(t))
    s = series(np.clip(v, 0, None), step=900)
    scores, _ = evaluate([cls()], s, split_row(s, 0.25, None), [1])
    assert scores[0].mae <= max_mae, scores[0]
    assert 0.7 <= scores[0].coverage <= 0.9, scores[0]


def test_evaluate_reports_every_model_and_horizon():
    rng = np.random.default_rng(3)
    s = series(np.abs(rng.normal(10, 2, (300, 3))))
    scores, preds = evaluate([Persistence(), MovingAverage(5)], s, 240, [1, 3])
    assert {(x.model, x.horizon) for x in scores} == {("persistence", 1), ("persistence", 3),
                                                     ("moving_average", 1), ("moving_average", 3)}
    assert best_baseline(scores, 1).model == "moving_average"  # white noise: averaging wins
    assert preds[("persistence", 1)][0].shape == (60, 3)
    with pytest.raises(ValueError, match="test_fraction"):
        split_row(s, 1.5, None)


def test_trained_models_are_not_fitted_again():
    rng = np.random.default_rng(4)
    s = series(np.abs(rng.normal(10, 2, (300, 2))))
    pre = HoltWinters(season=24).fit(s.slice(0, 100))
    params = pre.params.copy()
    evaluate([pre, Persistence()], s, 240, [1], trained=(pre,))
    assert pre.series.rows == 100 and np.array_equal(pre.params, params)


def ar2(n: int, seed: int, spike: float = 0.0) -> np.ndarray:
    """An AR(2) process around 50 (y - 50 = 0.6 (y1 - 50) + 0.3 (y2 - 50) + N(0, 1)); with
    ``spike``, one step in the middle of it that much higher."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for i in range(2, n):
        x[i] = 0.6 * x[i - 1] + 0.3 * x[i - 2] + rng.normal()
    v = 50 + x
    if spike:
        v[n // 2] += spike
    return v


def test_autoregression_reads_only_the_past():
    v = ar2(400, 0)[:, None]
    ar = Autoregression(season=24).fit(series(v))
    for h in (1, 3):
        p = ar.point(v, h)
        later = v.copy()
        later[300 - h + 1:] += 100.0  # everything after the origin of row 300
        assert ar.point(later, h)[300, 0] == p[300, 0]
        assert ar.point(later, h)[301, 0] != p[301, 0]


def test_autoregression_learns_the_process_and_beats_persistence_on_the_days_after():
    v = ar2(2000, 1)
    s = series(v)
    ar = Autoregression(season=None, lags=4).fit(s.slice(0, 1500))
    assert ar.season is not None
    test = v[1500:]
    err = {h: metrics.mae(test, ar.point(v[:, None], h)[1500:, 0]) for h in (1, 3)}
    per = {h: metrics.mae(test, Persistence().point(v[:, None], h)[1500:, 0]) for h in (1, 3)}
    assert err[1] < 0.87  # the noise's own MAE is 0.80
    assert err[1] < 0.95 * per[1] and err[3] < 0.95 * per[3], (err, per)


def test_an_isolated_spike_in_the_history_barely_moves_the_autoregression():
    """Huber's loss and the rows' leverage weights: a 200-sigma spike moves the forecasts by
    little, where one least-squares pass (the spike as a target) is pulled towards it."""
    clean = Autoregression(season=24, lags=2).fit(series(ar2(600, 2)))
    spiked = Autoregression(season=24, lags=2).fit(series(ar2(600, 2, spike=200.0)))
    ols = Autoregression(season=24, lags=2)
    ols.ITERATIONS = 1
    ols.fit(series(ar2(600, 2, spike=200.0)))
    v = ar2(600, 3)[:, None]
    base = clean.point(v, 1)
    assert np.nanmax(np.abs(spiked.point(v, 1) - base)) < 0.3
    assert np.nanmax(np.abs(ols.point(v, 1) - base)) > 1.0


def test_autoregression_fills_gaps_and_reads_a_short_history_with_fewer_lags():
    v = ar2(300, 4)
    gappy = v.copy()
    gappy[200] = np.nan
    ar = Autoregression(season=None, lags=3).fit(series(gappy))
    p = ar.point(gappy[:, None], 1)
    assert np.isfinite(p[201:]).all()  # the gap is read as the step before it
    short = Autoregression(lags=20).fit(series(v[:30]))  # 7 lags; 30 steps fit them
    assert short.used_lags == 7 and np.isfinite(short.point(v[:30, None], 1)[7:]).all()
    assert short.note("s0") == ""
    tiny = Autoregression(lags=20).fit(series(v[:3]))  # too few to fit: persistence, said
    assert np.array_equal(tiny.point(v[:3, None], 1)[1:], v[:2, None])
    assert "persistence" in tiny.note("s0")
    with pytest.raises(ValueError, match="lags"):
        Autoregression(lags=0)
