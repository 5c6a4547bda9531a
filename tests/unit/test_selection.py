"""Forecaster selection (baselines only; the LSTM candidate is exercised in tests/model): the
backtest ranks per series the candidates by how they forecast the recent history, the forecast is
the median of the three best, the intervals are calibrated on that backtest one quantile at a
time, and short histories work."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import SeasonalNaive, all_baselines
from models.evaluate import evaluate
from models.selection import Selection, recent
from models.series import SeriesSet
from planner.core import PlannerError
from planner.forecasters import ForecasterChoice, fit, forecast

STEP = 300.0
DAY = 288


def two_kinds(days: int, seed: int = 0) -> SeriesSet:
    """A daily pattern with a little noise (seasonal naive wins) beside a random walk
    (persistence wins)."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    daily = 20 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.3, len(t))
    walk = 30 + np.cumsum(rng.normal(0, 1.0, len(t)))
    return SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/daily/bandwidth", "t/walk/bandwidth"),
                     np.stack([daily, walk.clip(1)], axis=1))


def test_the_backtest_picks_per_series_and_says_what_it_picked():
    s = two_kinds(6)
    sel = Selection(all_baselines(season=DAY), horizon=3).fit(s)
    picked = sel.choice()
    assert picked["t/daily/bandwidth"][1]["chosen"] in ("seasonal_naive", "holt_winters", "autoregression")
    assert picked["t/walk/bandwidth"][1]["chosen"] == "persistence"
    for by_h in picked.values():
        for c in by_h.values():
            ranked = {k: v for k, v in c["rank_mae"].items() if v is not None}
            assert ranked[c["chosen"]] == min(ranked.values())  # never worse than a candidate there
            assert ranked.keys() == {k for k, v in c["backtest_mae"].items() if v is not None}
    assert "h1 median(persistence, " in sel.note("t/walk/bandwidth")


def test_on_the_next_days_the_selection_is_as_good_as_the_best_candidate_and_covers():
    s = two_kinds(8, seed=1)
    split = 6 * DAY
    train = s.slice(0, split)
    models = all_baselines(season=DAY) + [Selection(all_baselines(season=DAY), horizon=1)]
    for m in models:
        m.fit(train)
    scores, preds = evaluate(models, s, split, [1], trained=tuple(models))
    by = {x.model: x for x in scores}
    best = min(by[b.name].mae for b in models[:-1])
    # the median of the three best costs a little where one candidate is exactly the process
    assert by["selection"].mae <= 1.05 * best
    assert 0.7 <= by["selection"].coverage <= 0.9  # 10-90 %, calibrated on the backtest


def test_the_forecast_is_the_median_of_the_three_best_by_backtest_then_of_the_three_best_lately():
    s = two_kinds(6, seed=2)
    long = SeasonalNaive(season=10 * DAY)  # a season longer than the history: cannot forecast
    long.name = "seasonal_naive_10d"
    cands = all_baselines(season=DAY) + [long]
    sel = Selection(cands, horizon=3).fit(s)
    v, K = s.values, sel.window
    assert K == int(round(0.2 * len(v)))
    # the backtest: the candidates fitted on the part before it forecast it
    before = []
    for m in all_baselines(season=DAY):
        before.append(m.fit(s.slice(0, len(v) - K)))
    for j, name in enumerate(s.names):
        for h in (1, 3):
            c = sel.choice()[name][h]
            fc = {m.name: m.point(v, h)[:, j] for m in sel.candidates}
            # the backtest's errors, clipped where the median candidate's error is in its top tenth
            bt = slice(len(v) - K, len(v))
            err = {m.name: np.abs(m.point(v, h)[bt, j] - v[bt, j]) for m in before}
            clip = np.quantile(np.nanmedian(np.stack(list(err.values())), axis=0), 0.9)
            assert clip == pytest.approx(sel.clip[h - 1, j])
            ranked = {n: float(np.nanmean(np.minimum(e, clip))) for n, e in err.items()}
            assert ranked == pytest.approx({n: m for n, m in c["rank_mae"].items() if m is not None})
            maes = sorted((m, n) for n, m in ranked.items())
            assert c["pool"] == [n for _, n in maes[:3]] and c["pool"][0] == c["chosen"]
            got = sel.point(v, h)[:, j]
            # before a whole window of scored steps: the backtest's pool
            pooled = np.stack([fc[n] for n in c["pool"]])
            early = np.isfinite(pooled).all(axis=0) & (np.arange(len(v)) < h + K - 1)
            assert early.sum() > 20
            np.testing.assert_allclose(got[early], np.median(pooled[:, early], axis=0))
            # then: the three whose forecasts of the window's steps, up to h before, erred least
            for i in (h + K - 1, len(v) // 2, len(v) - 1):
                w = slice(i - h - K + 1, i - h + 1)
                lately = sorted((float(np.nanmean(np.minimum(np.abs(f[w] - v[w, j]), clip))), n)
                                for n, f in fc.items() if np.isfinite(f[w]).mean() >= 0.9)
                top = [n for _, n in lately[:3]]
                assert "seasonal_naive_10d" not in top
                assert got[i] == pytest.approx(float(np.median([fc[n][i] for n in top])))
    assert all(len(sel.pooled_names(h, j)) == 3 for h in (1, 2, 3) for j in (0, 1))
    assert all("seasonal_naive_10d" not in sel.pooled_names(h, j) for h in (1, 2, 3) for j in (0, 1))


def test_a_candidate_that_stops_forecasting_well_leaves_the_pool_online():
    """Six days of a daily pattern (the seasonal candidates win the backtest), then the pattern
    stops and the level wanders: a pool fixed at the fit keeps forecasting yesterday's shape."""
    rng = np.random.default_rng(4)
    t = np.arange(9 * DAY)
    daily = 20 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.3, len(t))
    walk = 20 + np.cumsum(rng.normal(0, 0.5, len(t)))
    v = np.where(t < 6 * DAY, daily, walk - walk[6 * DAY] + daily[6 * DAY]).clip(0)[:, None]
    s = SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/a/bandwidth",), v)
    sel = Selection(all_baselines(season=DAY), horizon=1).fit(s.slice(0, 6 * DAY))
    assert "persistence" not in sel.pooled_names(1, 0)
    meds = np.stack([c.point(v, 1) for c in sel.candidates])
    fixed = np.median(meds[sel.pool[:, 0, 0]], axis=0)[:, 0]
    online = sel.point(v, 1)[:, 0]
    last = slice(8 * DAY, 9 * DAY)  # the window (1.2 days) has seen only the new regime
    err_fixed = np.mean(np.abs(fixed[last] - v[last, 0]))
    err_online = np.mean(np.abs(online[last] - v[last, 0]))
    persistence = np.mean(np.abs(v[8 * DAY - 1:9 * DAY - 1, 0] - v[last, 0]))
    assert err_online < 0.85 * err_fixed and err_online < 1.5 * persistence
    # what a forecast says it is made of is the pool ranked online, not the backtest's
    fc = sel.predict(1, s).get("t/a/bandwidth")
    used = fc.note.removeprefix("h1 median(").removesuffix(")").split(", ")
    assert len(used) == 3 and "persistence" in used and fc.note != sel.note("t/a/bandwidth")
    ext = np.vstack([v, [[np.nan]]])  # the step after the last measured one
    assert fc.median[0] == pytest.approx(float(np.median([c.point(ext, 1)[-1, 0] for c in
                                                          sel.candidates if c.name in used])))


def test_isolated_spikes_do_not_decide_the_ranking(monkeypatch):
    """A daily pattern with a one-step surge every five hours or so: ranked on plain absolute
    errors, the few surges (each costs persistence and seasonal naive two steps) outweigh the
    ordinary steps and pool forecasters that smooth the pattern away; with errors clipped at the
    backtest's usual level the pool forecasts the ordinary steps as the pattern does."""
    import models.selection as selection

    rng = np.random.default_rng(0)
    t = np.arange(8 * DAY)
    v = 20 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 0.5, len(t))
    spikes = rng.choice(len(t), size=len(t) // 60, replace=False)
    v[spikes] += 80
    s = SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/a/bandwidth",), v[:, None])
    last = np.arange(7 * DAY, 8 * DAY)
    ordinary = last[~np.isin(last, spikes) & ~np.isin(last - 1, spikes) & ~np.isin(last - DAY, spikes)]

    def errors():
        sel = Selection(all_baselines(season=DAY), horizon=1).fit(s.slice(0, 7 * DAY))
        p = sel.point(v[:, None], 1)[:, 0]
        return sel, np.mean(np.abs(p[last] - v[last])), np.mean(np.abs(p[ordinary] - v[ordinary]))

    sel, clipped, clipped_ordinary = errors()
    assert np.isfinite(sel.clip).all() and sel.clip[0, 0] < 10  # far below a surge
    monkeypatch.setattr(selection, "_clip", lambda err, comparable: np.full(err.shape[1::2], np.inf))
    _, plain, plain_ordinary = errors()
    assert clipped_ordinary < 0.75 * plain_ordinary and clipped < plain


def test_the_factory_builds_a_selection_on_two_days_of_hours_without_the_lstm_and_says_so():
    h = two_kinds(2)
    s = SeriesSet(h.start, 3600.0, h.names, h.values[::12])  # 48 hourly steps
    choice = ForecasterChoice("selection", quantile=0.95, horizon=2)
    m, note = fit(choice, s)
    assert m.name == "selection" and m.quantiles == (0.1, 0.9, 0.95)
    assert "lstm" not in m.names and "the lstm needs 48 steps of fitting history, have 38" in note
    f = forecast(m, choice, s)
    up = f.get("t/walk/bandwidth").quantile(0.95)
    assert len(up) == 2 and all(u >= x for u, x in zip(up, f.get("t/walk/bandwidth").median))
    with pytest.raises(PlannerError, match=r"^horizon: 3 steps are needed, the selection model"):
        forecast(m, ForecasterChoice("selection", 0.95, 3), s)
    with pytest.raises(PlannerError, match=r"^history: series: 20 steps are too few"):
        fit(choice, s.slice(0, 20))


def test_intervals_are_calibrated_per_forecast_level():
    """Noise that grows faster than the level (quiet nights, busy days with bursts): one set of
    score quantiles covers too much at night and too little by day; per forecast-level bin each
    part is covered near the 80 % asked, and the busy part is given the wider interval."""
    rng = np.random.default_rng(3)
    t = np.arange(10 * DAY)
    busy = np.sin(2 * np.pi * t / DAY) > 0
    level = np.where(busy, 40.0, 5.0)
    v = level + rng.normal(0, 1, len(t)) * np.where(busy, 8.0, 0.2)
    s = SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/x/bandwidth",), v.clip(0)[:, None])
    split = 8 * DAY
    sel = Selection(all_baselines(season=DAY), horizon=1).fit(s.slice(0, split))
    assert np.isfinite(sel.edges[0, 0]).all()  # enough backtest for every bin
    med, qs = sel.forecast(s.values, 1)
    y, lo, hi = s.values[split:, 0], qs[0, split:, 0], qs[-1, split:, 0]
    inside = (y >= lo) & (y <= hi)
    quiet, loud = ~busy[split:] & (med[split:, 0] < 20), busy[split:] & (med[split:, 0] > 20)
    for part in (quiet, loud):
        assert 0.65 <= inside[part].mean() <= 0.95, (inside[quiet].mean(), inside[loud].mean())
    assert np.median((hi - lo)[loud]) > 10 * np.median((hi - lo)[quiet])


def regime(noise_after: float, days: int = 12, fit_days: int = 8, seed: int = 4) -> SeriesSet:
    """A daily wave with noise of 1 Mbit/s up to ``fit_days``, ``noise_after`` from there on."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * DAY)
    sd = np.where(t < fit_days * DAY, 1.0, noise_after)
    v = 30 + 10 * np.sin(2 * np.pi * t / DAY) + rng.normal(0, 1, len(t)) * sd
    return SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/x/bandwidth",), v[:, None])


def test_recent_windows_hold_ten_scores_beyond_each_quantile():
    assert (recent(0.1), recent(0.9), recent(0.95), recent(0.99)) == (100, 100, 200, 1000)


@pytest.mark.parametrize("noise_after", [4.0, 0.25])
def test_the_intervals_follow_days_busier_or_calmer_than_the_backtest(noise_after):
    """After the fit the noise grows fourfold (or shrinks): the backtest's calibration alone
    covers far from the 80 % asked; calibrated online on the newest scores, the last two days
    are covered near 80 %, each tail missed near 10 %."""
    s = regime(noise_after)
    split, last = 8 * DAY, 10 * DAY
    sel = Selection(all_baselines(season=DAY), horizon=1).fit(s.slice(0, split))
    y = s.values[last:, 0]
    _, online = sel.forecast(s.values, 1)
    _, fixed = sel.forecast_tail(s.values, 1, None, 0)  # no row calibrated online
    def cover(qs):
        return float(((y >= qs[0, last:, 0]) & (y <= qs[-1, last:, 0])).mean())
    assert 0.72 <= cover(online) <= 0.88, cover(online)
    assert 0.05 <= float((y > online[-1, last:, 0]).mean()) <= 0.15
    assert not 0.7 <= cover(fixed) <= 0.9, cover(fixed)  # what the online calibration repairs


def test_the_online_calibration_reads_only_what_was_observed_when_the_forecast_was_made():
    s = regime(3.0, days=10)
    q = (0.1, 0.9, 0.95)  # windows of 100, 100 and 200 scores
    sel = Selection(all_baselines(season=DAY, quantiles=q), horizon=3, quantiles=q).fit(s.slice(0, 8 * DAY))
    v = s.values.copy()
    i = 9 * DAY
    for h in (1, 3):
        med, qs = sel.forecast(v, h)
        later = v.copy()
        later[i - h + 1:] *= 5.0  # whatever happens after the forecast origin
        med2, qs2 = sel.forecast(later, h)
        assert med2[i] == med[i] and (qs2[:, i] == qs[:, i]).all()
        assert (qs2[:, i + 150] != qs[:, i + 150]).any()  # rows after it do read the new scores
        # the tail computed for a prediction is the same as the whole array's
        _, tail = sel.forecast_tail(v[:i + 1], h, None, 4)
        _, whole = sel.forecast(v[:i + 1], h)
        np.testing.assert_array_equal(tail[:, -4:], whole[:, -4:])
        step = np.diff(whole, axis=0)
        assert (step[np.isfinite(step)] >= 0).all()  # windows of 100 and 200 never cross


def test_a_series_the_candidates_mostly_forecast_exactly_is_ranked_on_plain_errors():
    """Where the median candidate's error is 0 on nine backtest steps in ten, clipping at its
    90th percentile would make every candidate tie at 0: no clip there."""
    v = np.full(4 * DAY, 5.0)
    v[300:], v[700:] = 7.0, 6.0
    s = SeriesSet(pd.Timestamp("2026-01-05", tz="UTC"), STEP, ("t/a/bandwidth",), v[:, None])
    sel = Selection(all_baselines(season=DAY), horizon=2).fit(s)
    assert np.isinf(sel.clip).all()
    c = sel.choice()["t/a/bandwidth"][1]
    assert c["rank_mae"] == c["backtest_mae"] and c["chosen"] != "seasonal_naive"
