"""statsforecast's AutoETS as a candidate: the library's filter and our closed-form projection
agree with the library's own forecast, read only the past, and fall back where it cannot fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("statsforecast", reason="statsforecast is in the models extra (make test installs it)")

from statsforecast.ets import etsforecast, initstate, pegelsresid_C, switch  # noqa: E402
from statsforecast.models import AutoETS  # noqa: E402

from models import metrics  # noqa: E402
from models.baselines import Persistence, all_baselines  # noqa: E402
from models.ets import ETS, _aligned  # noqa: E402
from models.selection import Selection  # noqa: E402
from models.series import SeriesSet  # noqa: E402
from tests.forecasters import assert_reads_only_the_past  # noqa: E402


def series(values, step=3600.0):
    v = np.asarray(values, dtype=float)
    v = v[:, None] if v.ndim == 1 else v
    return SeriesSet(pd.Timestamp("2024-01-01"), step, tuple(f"s{i}" for i in range(v.shape[1])), v)


def hourly(days=25, seed=1, trend=0.01):
    rng = np.random.default_rng(seed)
    t = np.arange(24 * days)
    return 50 + 20 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 2, len(t)) + trend * t


@pytest.mark.parametrize("form,damped", [("AAA", False), ("MAM", False), ("ANA", None),
                                         ("MNM", None), ("AAN", True), ("ANN", None)])
def test_the_projection_is_the_library_forecast_from_the_same_states(form, damped):
    y = hourly()
    model = AutoETS(season_length=24, model=form, damped=damped).fit(y[:400]).model_
    c = model["components"]
    m = model["m"] if c[2] != "N" else 1
    init = initstate(y[:max(10, 3 * m if c[2] != "N" else 0)], m, c[1], c[2])
    if c[2] != "N":
        init = np.append(init, m * (c[2] == "M") - init[(2 if c[1] != "N" else 1):].sum())
    par = [float(v) for v in model["par"][:4]]
    _, _, states, _ = pegelsresid_C(y, m, init, c[0], c[1], c[2], c[3] == "D", *par, 3)
    # the library's damped sum differs from the textbook's beyond one step (see models.ets)
    for h in ((1,) if c[3] == "D" else (1, 3, 12, 30)):
        ours = _aligned(model, y, h)
        span = max(10, 3 * m if c[2] != "N" else 0)  # the steps the initial states are drawn from
        assert np.isnan(ours[:span - 1 + h]).all() and np.isfinite(ours[span - 1 + h:]).all()
        for origin in (span - 1, 123, 399, 500):
            f = np.full(h, np.nan)
            etsforecast(states[origin + 1], m, switch(c[1]), switch(c[2]),
                        par[3] if c[3] == "D" else 1.0, h, f)
            assert ours[origin + h] == pytest.approx(f[h - 1], rel=1e-9, abs=1e-9), (c, h, origin)


def test_a_damped_trend_is_projected_with_the_textbook_sum():
    y = 10 + 0.5 * np.arange(200.0) + np.random.default_rng(3).normal(0, 0.3, 200)
    model = AutoETS(model="AAN", damped=True).fit(y).model_
    phi = float(model["par"][3])
    a1, a5 = _aligned(model, y, 1), _aligned(model, y, 5)
    one_step_slope = a1[151] - a1[150]  # about the slope after the filter settled
    assert phi < 1
    # five steps ahead the slope counts phi + ... + phi^5 times, not five times and not phi^1 + phi + ...
    assert a5[154] - a1[150] == pytest.approx(sum(phi ** k for k in range(2, 6)) * one_step_slope, rel=0.25)


def test_aligned_forecasts_read_only_the_past():
    s = series(hourly())
    ets = ETS(season=24).fit(s.slice(0, 400))
    assert_reads_only_the_past(ets, s.values, h=3, row=450)


def test_it_learns_a_daily_season_that_persistence_cannot():
    s = series(hourly(trend=0.0))
    ets = ETS().fit(s.slice(0, 24 * 20))
    assert ets.period == 24 and ets.components("s0")[2] in "AM"
    y = s.values[24 * 20:]
    ours = metrics.mae(y, ets.point(s.values, 3)[24 * 20:])
    assert ours < 3.0  # noise MAE is 1.6
    assert ours < 0.3 * metrics.mae(y, Persistence().point(s.values, 3)[24 * 20:])


def test_a_season_longer_than_the_library_holds_is_left_to_holt_winters():
    s = series(hourly(days=12), step=3600.0 / 12)  # the same shape as 5-minute steps: 288 a day
    ets = ETS(season=288).fit(s)
    assert ets.period == 1 and ets.components("s0")[2] == "N"


def test_a_series_it_cannot_fit_is_forecast_by_persistence_and_said_so():
    v = np.full((40, 2), np.nan)
    v[:, 0] = hourly(days=2)[:40]
    v[-5:, 1] = [1.0, 2.0, 3.0, 4.0, 5.0]  # five measured steps
    s = series(v)
    ets = ETS(season=24).fit(s)
    assert ets.note("s0") == "" and "too few" in ets.note("s1")
    p = ets.point(v, 1)
    np.testing.assert_array_equal(p[-4:, 1], [1.0, 2.0, 3.0, 4.0])
    assert np.isfinite(p[20:, 0]).all()


def test_a_window_its_form_cannot_take_leaves_persistence_there():
    y = 5 + hourly(days=10, trend=0.0) / 10  # positive: the library may pick a multiplicative form
    s = series(y)
    ets = ETS(season=24).fit(s)
    model = AutoETS(season_length=24, model="MNM").fit(y).model_
    ets.models = [model]
    zeros = y.copy()
    zeros[:48] = 0.0  # a multiplicative season cannot start from zeros
    p = ets.point(zeros[:, None], 1)
    np.testing.assert_array_equal(p[1:, 0], zeros[:-1])  # persistence over that window


def test_the_selection_holds_it_as_a_candidate():
    s = series(hourly(trend=0.0))
    sel = Selection(all_baselines(season=24), horizon=1).fit(s.slice(0, 24 * 20))
    mae = sel.choice()["s0"][1]["backtest_mae"]
    assert "ets" in mae and mae["ets"] is not None and mae["ets"] < mae["persistence"]


def test_a_trend_is_damped_never_extrapolated_without_end():
    y = 10 + 0.5 * np.arange(300.0) + np.random.default_rng(5).normal(0, 0.3, 300)
    ets = ETS(season=1).fit(series(y[:200]))
    form = ets.components("s0")
    assert form[1] == "N" or form[3] == "D", form
    far = ets.point(y[:, None], 100)[299, 0]  # from row 199, a hundred steps on
    assert far < y[199] + 0.5 * 100  # below the straight line through the history
