"""``netshadow run``'s LSTM path on small data: the model it builds serves the quantile and the
horizon the loop asked for, and the decision allocates that quantile's forecast."""

from __future__ import annotations

import numpy as np
import pytest

from controller.allocator import AllocatorSettings
from controller.loop import LoopCore, LoopSettings
from netshadow.loop import make_model
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
KEYS = [("red", "video"), ("blue", "dns")]


def history(rows=120, step=10.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(rows) * step + 1_800_000_000.0
    base = 20 + 8 * np.sin(2 * np.pi * np.arange(rows) / 24)
    v = np.stack([base + rng.normal(0, 1, rows), base / 2 + rng.normal(0, 1, rows)], axis=1)
    return t, np.clip(v, 0, None)


@pytest.mark.parametrize("q", [0.95])
def test_the_loops_lstm_serves_the_asked_quantile_and_horizon(q):
    t, v = history()
    model, note = make_model("lstm", KEYS, t, v, 10.0, quantile=q, horizon=8)
    assert note == "lstm (trained)" and q in model.quantiles and model.horizon >= 8
    core = LoopCore(SPEC, LoopSettings(step_s=10.0, quantile=q,
                                       allocator=AllocatorSettings(headroom=0.0, hold_s=60)))
    d = core.decide(t[-1] + 10, KEYS, t, v, model, horizon=8)
    ext = np.vstack([v, np.full((8, 2), np.nan)])
    qi = model.quantiles.index(q)
    want = max(float(model.forecast(ext[: len(v) + h], h)[1][qi, -1, 0]) for h in range(1, 9))
    assert max(d.forecast["red/video"]["upper"]) == pytest.approx(want, rel=1e-3)
    # the next cycle updates the same model: same quantiles and horizon, so no retraining
    again, note = make_model("lstm", KEYS, t, v, 10.0, previous=model, retrain=True, quantile=q, horizon=8)
    assert note == "lstm (updated)" and again.quantiles == model.quantiles
    # a longer horizon than it was built for means a new model, never a shorter forecast
    longer, note = make_model("lstm", KEYS, t, v, 10.0, previous=model, retrain=True, quantile=q,
                              horizon=model.horizon + 2)
    assert note == "lstm (trained)" and longer.horizon >= model.horizon + 2
