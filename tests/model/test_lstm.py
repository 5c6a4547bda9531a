"""The LSTM on small seeded series: an accuracy table, calibrated intervals on known noise,
bit-for-bit save/load, the fallback for short history, retraining in one call."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import metrics
from models.baselines import Persistence
from models.evaluate import evaluate
from models.forecast import Forecast
from models.series import SeriesSet

NOISE = 1.0
PERIOD = 48


def make_series(n_series=6, rows=1600, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    cols = [20 + 3 * k + 8 * np.sin(2 * np.pi * t / PERIOD + k) + rng.normal(0, NOISE, rows)
            for k in range(n_series)]
    return SeriesSet(pd.Timestamp("2024-01-01"), 1800.0, tuple(f"s{k}" for k in range(n_series)),
                     np.clip(np.stack(cols, axis=1), 0, None))


@pytest.fixture(scope="module")
def trained():
    from models.lstm import LSTMForecaster

    s = make_series()
    m = LSTMForecaster(window=24, horizon=3, units=24, epochs=25, batch=256, patience=4,
                       learning_rate=5e-3, verbose=0, seed=1)
    m.fit(s.slice(0, 1300))
    scores, preds = evaluate([m, Persistence()], s, 1300, [1, 3], trained=(m,))
    return s, m, scores, preds


# (model, horizon, maximum MAE): seeded regression table. The noise alone has MAE 0.80.
ACCURACY = [("lstm", 1, 1.05), ("lstm", 3, 1.15), ("persistence", 1, 1.6)]


@pytest.mark.parametrize("model,h,max_mae", ACCURACY)
def test_accuracy_table(trained, model, h, max_mae):
    _, _, scores, _ = trained
    sc = next(x for x in scores if x.model == model and x.horizon == h)
    assert sc.mae <= max_mae, sc


def test_lstm_beats_persistence(trained):
    _, _, scores, _ = trained
    for h in (1, 3):
        lstm = next(x for x in scores if x.model == "lstm" and x.horizon == h)
        pers = next(x for x in scores if x.model == "persistence" and x.horizon == h)
        assert lstm.mae < 0.8 * pers.mae


def test_interval_coverage_on_known_noise(trained):
    _, m, scores, _ = trained
    for h in (1, 3):
        sc = next(x for x in scores if x.model == "lstm" and x.horizon == h)
        assert 0.72 <= sc.coverage <= 0.88, sc
    assert 0.75 <= m.meta["validation"]["coverage"] <= 0.85


def test_save_load_bit_for_bit(trained, tmp_path):
    from models.lstm import LSTMForecaster

    s, m, _, _ = trained
    m.save(tmp_path / "model")
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"model.keras", "scaler.json",
                                                               "meta.json"}
    loaded = LSTMForecaster.load(tmp_path / "model").bind(s.slice(0, 1300))
    for h in (1, 3):
        a, qa = m.forecast(s.values, h, s.start)
        b, qb = loaded.forecast(s.values, h, s.start)
        assert np.array_equal(a, b, equal_nan=True) and np.array_equal(qa, qb, equal_nan=True)
    meta = loaded.meta
    assert meta["data_start"] == s.time(0).isoformat() and meta["horizon"] == 3
    assert "coverage" in meta["validation"]


def test_predict_gives_forecast_contract(trained):
    s, m, _, _ = trained
    m.series = s
    m._cache = None
    f = m.predict(3)
    assert isinstance(f, Forecast) and len(f.series) == 6
    sf = f.get("s0")
    assert sf.model == "lstm" and len(sf.median) == 3 and sf.note == ""
    assert Forecast.from_json(f.to_json()) == f


def test_short_history_falls_back_to_persistence():
    from models.lstm import LSTMForecaster

    s = make_series(n_series=2, rows=400)
    v = s.values.copy()
    v[:370, 1] = np.nan  # s1 has only 30 observations: too few for window + horizon
    s2 = SeriesSet(s.start, s.step_s, s.names, v)
    m = LSTMForecaster(window=24, horizon=8, units=8, epochs=2, verbose=0).fit(s2)
    assert m.meta["fallback"] == ["s1"]
    f = m.predict(2)
    assert "fallback: persistence" in f.get("s1").note and f.get("s0").note == ""
    assert f.get("s1").median[0] == v[-1, 1]


def test_retrain_is_one_call():
    from models.lstm import LSTMForecaster

    s = make_series(n_series=2, rows=500)
    m = LSTMForecaster(window=12, horizon=2, units=8, epochs=2, verbose=0).fit(s.slice(0, 400))
    w0 = [w.copy() for w in m.model.get_weights()]
    m.update(s, epochs=1)
    assert m.meta["data_end"] == s.time(499).isoformat()
    assert any(not np.array_equal(a, b) for a, b in zip(w0, m.model.get_weights()))
    with pytest.raises(ValueError, match="names differ"):
        m.update(make_series(n_series=3, rows=500))


def test_bad_parameters():
    from models.lstm import LSTMForecaster

    with pytest.raises(ValueError, match="window"):
        LSTMForecaster(window=1)
    with pytest.raises(ValueError, match="val_fraction"):
        LSTMForecaster(val_fraction=0.9)
    with pytest.raises(ValueError, match="patch: .* dividing window 36 .got 5"):
        LSTMForecaster(window=36, patch=5)


def test_patched_model_reads_several_steps_per_recurrent_step(tmp_path):
    """patch=3 (the tpp default): 24 window steps are 8 recurrent steps of 3; it still learns the
    seasonal series, and the setting survives save/load."""
    from models.lstm import FEATURES, LSTMForecaster

    s = make_series(n_series=4, rows=1200)
    m = LSTMForecaster(window=24, horizon=2, units=16, epochs=15, batch=256, patience=4,
                       learning_rate=5e-3, verbose=0, seed=1, patch=3).fit(s.slice(0, 1000))
    lstm = next(layer for layer in m.model.layers if layer.__class__.__name__ == "LSTM")
    assert tuple(lstm.input.shape[1:]) == (8, 3 * FEATURES)
    scores, _ = evaluate([m, Persistence()], s, 1000, [1], trained=(m,))
    lstm_mae = next(x.mae for x in scores if x.model == "lstm")
    pers_mae = next(x.mae for x in scores if x.model == "persistence")
    assert lstm_mae < 0.8 * pers_mae, (lstm_mae, pers_mae)
    m.save(tmp_path / "p3")
    loaded = LSTMForecaster.load(tmp_path / "p3").bind(s.slice(0, 1000))
    assert loaded.patch == 3
    a, qa = m.forecast(s.values, 2, s.start)
    b, qb = loaded.forecast(s.values, 2, s.start)
    assert np.array_equal(a, b, equal_nan=True) and np.array_equal(qa, qb, equal_nan=True)


def test_metrics_helper_consistent(trained):
    s, _, scores, preds = trained
    med = preds[("lstm", 1)][0]
    assert metrics.mae(s.values[1300:], med) == pytest.approx(
        next(x.mae for x in scores if x.model == "lstm" and x.horizon == 1))


def test_a_history_moved_on_by_a_step_forecasts_as_a_fresh_model_does(trained):
    """The network's outputs are reused for the windows that did not change (a loop or a replay
    forecasts from the same history moved on by a step, its newest row revised); the forecasts
    must be those of a model that computes every window anew."""
    s, m, _, _ = trained
    v = s.values
    calls = [(v[100:700], 100), (v[101:701], 101), (v[101:701].copy(), 101), (v[102:702], 102),
             (v[90:690], 90), (v[102:702], 102)]
    revised = v[103:703].copy()
    revised[-1] *= 1.7  # the open step, measured further
    calls.append((revised, 103))
    gap = v[104:704].copy()
    gap[-30:-25, 2] = np.nan
    calls.append((gap, 104))
    calls.append((gap, 104, "naive"))  # the same time without its time zone: nothing is reused
    for values, row, *naive in calls:
        start = s.time(row) if not naive else s.time(row).tz_convert(None)
        m._cache = None  # the per-call cache would hide the reuse being checked
        got = [m.forecast(values, h, start) for h in (1, 3)]
        m.forget()  # as a model that computes every window anew
        fresh = [m.forecast(values, h, start) for h in (1, 3)]
        for (gm, gq), (fm, fq) in zip(got, fresh):
            np.testing.assert_allclose(gm, fm, rtol=1e-5, atol=1e-5, equal_nan=True)
            np.testing.assert_allclose(gq, fq, rtol=1e-5, atol=1e-5, equal_nan=True)
    # and only the windows that changed went through the network
    m._cache = None
    seen = []
    real = m._predict_windows
    m._predict_windows = lambda x, batch=8192: (seen.append(len(x)), real(x, batch))[1]
    try:
        m.forecast(v[105:705], 1, s.time(105))
        m._cache = None
        m.forecast(v[106:706], 1, s.time(106))
    finally:
        del m._predict_windows
    assert seen[-1] == v.shape[1]  # one new origin: one window per series
