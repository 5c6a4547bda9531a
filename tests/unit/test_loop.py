"""The closed loop's decision core: forecasts become plans ahead of demand, earlier forecasts are
scored when their steps are measured, anomalous surges follow the anomaly policy, and bad
forecasts fall back to the reactive rate."""

from __future__ import annotations

import numpy as np
import pytest

from controller.allocator import AllocatorSettings
from controller.loop import LoopCore, LoopError, LoopSettings
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
KEYS = [("red", "video")]


class Fixed:
    """Forecasts ``median`` with a band of +-``width`` at every horizon (policy logic only)."""

    quantiles = (0.1, 0.5, 0.9)

    def __init__(self, median, width=1.0):
        self.median, self.width = median, width

    def forecast(self, values, h, start=None):
        m = np.full(values.shape, self.median, dtype=float)
        return m, np.stack([m - self.width, m, m + self.width])


def series(vals, step=10.0, t0=1000.0):
    v = np.array(vals, dtype=float).reshape(-1, 1)
    return np.arange(len(v)) * step + t0, v


def core(**kw):
    return LoopCore(SPEC, LoopSettings(step_s=10.0, allocator=AllocatorSettings(headroom=0.0, hold_s=60),
                                       **kw))


def test_settings_are_checked():
    with pytest.raises(LoopError, match="anomaly_policy"):
        LoopSettings(anomaly_policy="ignore")
    with pytest.raises(LoopError, match="quantile"):
        LoopSettings(quantile=0.2)


def test_forecast_rise_is_allocated_before_it_happens():
    c = core()
    t, v = series([10] * 6)
    d = c.decide(1060.0, KEYS, t, v, Fixed(25.0), horizon=3)
    assert d.plan.allocation("red", "video").rate_mbps == pytest.approx(26.0)  # the upper quantile
    assert d.forecast["red/video"]["upper"] == [26.0, 26.0, 26.0] and not d.anomalies


def test_earlier_forecasts_are_scored_when_measured():
    c = core()
    t, v = series([10] * 6)
    c.decide(1060.0, KEYS, t, v, Fixed(12.0), horizon=2)  # forecasts for t = 1060 and 1070
    t2, v2 = series([10] * 6 + [11, 14])
    d = c.decide(1080.0, KEYS, t2, v2, Fixed(12.0), horizon=2)
    s = d.scored["red/video"]
    assert s["n"] == 2 and s["mae_mbps"] == pytest.approx(1.5) and s["coverage"] == 0.5


@pytest.mark.parametrize("policy, expect", [("cap", 12.5), ("alert", 10.0), ("allocate", 40.0)])
def test_anomalous_surge_follows_the_policy(policy, expect):
    c = core(anomaly_policy=policy, cap_factor=1.25)
    t, v = series([10] * 6)
    d = c.decide(1060.0, KEYS, t, v, Fixed(9.0), horizon=1)
    c.committed(d.plan)
    assert d.plan.allocation("red", "video").rate_mbps == pytest.approx(10.0)  # current use
    t2, v2 = series([10] * 6 + [40])  # 30 Mbit/s above a band 2 Mbit/s wide
    d = c.decide(1070.0, KEYS, t2, v2, Fixed(10.0), horizon=1)
    assert len(d.anomalies) == 1 and policy[:5] in d.anomalies[0]
    assert d.plan.allocation("red", "video").rate_mbps == pytest.approx(expect)


def test_bad_forecasts_fall_back_to_the_reactive_rate():
    c = LoopCore(SPEC, LoopSettings(step_s=10.0, trust_window=3, anomaly_threshold=1e9,
                                    allocator=AllocatorSettings(headroom=0.0, hold_s=0)))
    vals = [10.0] * 6
    d = None
    for _ in range(5):  # forecasts of 5 while the application keeps using 10 and then 20
        vals.append(20.0)
        t, v = series(vals)
        d = c.decide(1000.0 + 10 * len(vals), KEYS, t, v, Fixed(5.0, width=0.5), horizon=1)
        c.committed(d.plan)
    assert d.fallback == ("red/video",)
    assert d.scored["red/video"]["coverage"] == 0.0
    assert d.plan.allocation("red", "video").rate_mbps >= 20.0 / 0.9 - 0.01


def test_a_quantile_or_horizon_the_forecaster_cannot_serve_is_refused():
    t, v = series([10] * 6)
    with pytest.raises(LoopError, match=r"quantile: 0.95 is not among"):
        core(quantile=0.95).decide(1060.0, KEYS, t, v, Fixed(25.0), horizon=2)

    class Short(Fixed):
        horizon = 3
    with pytest.raises(LoopError, match=r"horizon: 5 steps are needed"):
        core().decide(1060.0, KEYS, t, v, Short(25.0), horizon=5)


@pytest.mark.parametrize("q", [0.6, 0.95])
def test_netshadow_run_allocates_at_the_quantile_it_was_given(q):
    from netshadow.loop import make_model

    rng = np.random.default_rng(0)
    t, v = series(20 + rng.normal(0, 3, 60).clip(-10, 10))
    model, _ = make_model("persistence", KEYS, t, v, 10.0, quantile=q, horizon=4)
    assert q in model.quantiles
    d = core(quantile=q).decide(t[-1] + 10, KEYS, t, v, model, horizon=4)
    ext = np.vstack([v, np.full((4, 1), np.nan)])
    want = max(float(model.forecast(ext[: len(v) + h], h)[1][model.quantiles.index(q), -1, 0])
               for h in range(1, 5))
    assert d.forecast["red/video"]["upper"] and max(d.forecast["red/video"]["upper"]) == pytest.approx(
        want, rel=1e-3)
    other, _ = make_model("persistence", KEYS, t, v, 10.0, quantile=0.9, horizon=4)
    d90 = core(quantile=0.9).decide(t[-1] + 10, KEYS, t, v, other, horizon=4)
    r, r90 = d.plan.allocation("red", "video").rate_mbps, d90.plan.allocation("red", "video").rate_mbps
    assert (r > r90) if q > 0.9 else (r < r90)
