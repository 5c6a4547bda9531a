"""``netshadow run``'s LSTM path on small data: the factory builds a model that serves the
quantile and the horizon the loop asks for, the cycle allocates that quantile's forecast, the
next cycle updates the same model, and a horizon the model cannot reach is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from models.series import SeriesKey
from netshadow.loop import decide_cycle, model_input, observed
from planner.core import Planner, PlannerError, PlannerSettings
from planner.forecasters import ForecasterChoice, fit, forecast
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
KEYS = [SeriesKey("red", "video"), SeriesKey("blue", "dns")]
STEP = 10.0


def history(rows=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * STEP + 1_800_000_000.0
    base = 20 + 8 * np.sin(2 * np.pi * np.arange(rows) / 24)
    v = np.stack([base + rng.normal(0, 1, rows), base / 2 + rng.normal(0, 1, rows)], axis=1)
    v[5, 1] = np.nan  # a bucket without a measurement: carried forward for the model
    return t, np.clip(v, 0, None)


def test_the_loops_lstm_serves_the_asked_quantile_and_horizon():
    q = 0.95
    t, v = history()
    choice = ForecasterChoice("lstm", quantile=q, horizon=8, epochs=3)
    series = model_input(observed(KEYS, t, v, STEP))
    model, note = fit(choice, series)
    assert note == "lstm (trained)" and q in model.quantiles and model.horizon >= 8
    planner = Planner(SPEC, PlannerSettings(quantile=q, headroom=0.0, spend_cap=False))
    d = decide_cycle(planner, choice, model, KEYS, t, v, STEP, None, t[-1] + STEP, "loop-1")
    # the requirement is that quantile's largest value over the horizon plus the budget's
    # cold-start margin (one mean step change, before any outcome is measured)
    want = max(forecast(model, choice, series).get(KEYS[0].name).quantile(q)) + d.margin_mbps[KEYS[0]]
    assert d.margin_mbps[KEYS[0]] == pytest.approx(np.mean(np.abs(np.diff(v[:, 0]))), rel=1e-4)
    assert d.horizon == 8 and d.required_mbps[KEYS[0]] == pytest.approx(want)
    assert d.plan.allocation("red", "video").rate_mbps == pytest.approx(max(want, v[-1, 0]), abs=2e-3)
    # the next cycle updates the same model: same quantiles and horizon, so no retraining
    again, note = fit(choice, series, previous=model, retrain=True)
    assert note == "lstm (updated)" and again.quantiles == model.quantiles
    # a longer horizon than it was built for means a new model, never a shorter forecast ...
    longer = ForecasterChoice("lstm", quantile=q, horizon=model.horizon + 2, epochs=3)
    with pytest.raises(PlannerError, match=rf"^horizon: {model.horizon + 2} steps are needed"):
        forecast(model, longer, series)
    m2, note = fit(longer, series, previous=model)
    assert note == "lstm (trained)" and m2.horizon >= model.horizon + 2
