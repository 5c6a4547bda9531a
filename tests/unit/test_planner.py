"""The planner's one decision: forecasts become plans ahead of demand, earlier forecasts are
scored when their steps are measured, anomalous surges follow the anomaly policy, forecasts that
let an application down fall back to the reactive rate, and every setting is honoured or refused
by name. ``netshadow run``'s cycle and the replay's predictive policy give the same rates for the
same observations and forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controller.plan import Allocation, Plan
from emulation.replay_ideal import simulate
from models.baselines import Persistence
from models.forecast import Forecast, SeriesForecast
from models.series import SeriesError, SeriesKey, SeriesSet
from netshadow.loop import decide_cycle
from planner.core import Planner, PlannerError, PlannerSettings
from planner.forecasters import ForecasterChoice, fit, forecast
from planner.replay import PredictivePolicy
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
VIDEO = SeriesKey("red", "video")
STEP = 10.0
T0 = 1_800_000_000.0


def observed(vals, keys=(VIDEO,), t0=T0):
    v = np.array(vals, dtype=float).reshape(len(vals), -1)
    return SeriesSet(pd.Timestamp(t0, unit="s", tz="UTC"), STEP, tuple(k.name for k in keys), v)


def fixed(obs: SeriesSet, median, width=1.0, horizon=1, quantiles=(0.1, 0.9)) -> Forecast:
    """``median`` +- ``width`` at every step after ``obs`` (the planner's logic only)."""
    last = obs.time(obs.rows - 1)
    times = tuple((last + pd.Timedelta(seconds=STEP * h)).isoformat() for h in range(1, horizon + 1))
    meds = np.broadcast_to(np.asarray(median, dtype=float), (horizon,)).tolist()
    series = tuple(SeriesForecast(n, times, tuple(meds), tuple(
        (q, tuple(max(0.0, m - width) if q < 0.5 else m + width for m in meds)) for q in quantiles),
        "fixed") for n in obs.names)
    return Forecast(last.isoformat(), STEP, series)


def planner(**kw) -> Planner:
    return Planner(SPEC, PlannerSettings(**{"headroom": 0.0, "hold_steps": 6, **kw}))


def rate(d, key=VIDEO):
    return d.plan.allocation(*key.app_key).rate_mbps


def test_settings_are_checked_and_named():
    for kw, name in ((dict(anomaly_policy="ignore"), "anomaly_policy"), (dict(quantile=0.2), "quantile"),
                     (dict(headroom=float("nan")), "headroom"), (dict(trust_window=0), "trust_window"),
                     (dict(min_coverage=2), "min_coverage"), (dict(cap_factor=0.5), "cap_factor")):
        with pytest.raises(PlannerError, match=rf"^{name}: must be"):
            PlannerSettings(**kw)
    with pytest.raises(SeriesError, match="metric"):
        SeriesKey("red", "video", "latency")
    assert SeriesKey.parse("red/video/bandwidth") == VIDEO and VIDEO.unit == "Mbit/s"


def test_a_forecast_rise_is_allocated_before_it_happens_and_the_plan_says_how_long():
    obs = observed([10] * 6)
    d = planner().decide(T0 + 60, obs, fixed(obs, 25.0, horizon=3), None)
    assert rate(d) == pytest.approx(26.0)  # the upper quantile
    assert d.required_mbps[VIDEO] == pytest.approx(26.0) and not d.anomalies
    assert d.plan.valid_from == T0 + 60 and d.plan.valid_until == T0 + 60 + 3 * STEP
    assert d.forecast.get(VIDEO.name).model == "fixed"  # the evidence travels with the decision


def test_earlier_forecasts_are_scored_when_measured():
    p = planner()
    obs = observed([10] * 6)
    p.decide(T0 + 60, obs, fixed(obs, 12.0, horizon=2), None)  # for T0 + 60 and T0 + 70
    obs2 = observed([10] * 6 + [11, 14])
    d = p.decide(T0 + 80, obs2, fixed(obs2, 12.0), None)
    s = d.scored[VIDEO]
    assert s.n == 2 and s.mae_mbps == pytest.approx(1.5) and s.coverage == 0.5


# allocate: like any demand that broke its plan - the measured 40, raised by the reactive fallback
@pytest.mark.parametrize("policy, expect", [("cap", 12.5), ("alert", 10.0), ("allocate", 40.0 / 0.9)])
def test_an_anomalous_surge_follows_the_policy(policy, expect):
    p = planner(anomaly_policy=policy, cap_factor=1.25)
    obs = observed([10] * 6)
    d = p.decide(T0 + 60, obs, fixed(obs, 9.0), None)
    assert rate(d) == pytest.approx(10.0)  # current use
    obs2 = observed([10] * 6 + [40])  # 30 Mbit/s above a band 2 Mbit/s wide
    d = p.decide(T0 + 70, obs2, fixed(obs2, 10.0), d.plan)
    assert len(d.anomalies) == 1 and policy[:5] in d.anomalies[0]
    assert rate(d) == pytest.approx(expect, abs=1e-3)


def test_a_violation_under_the_plan_in_force_falls_back_to_the_reactive_rate():
    p = planner(anomaly_threshold=1e9, hold_steps=0)
    vals = [10.0] * 6
    obs = observed(vals)
    d = p.decide(T0 + 60, obs, fixed(obs, 5.0, width=0.5), None)
    in_force = d.plan
    vals.append(20.0)  # demand doubles under a plan of 10
    obs = observed(vals)
    d = p.decide(T0 + 70, obs, fixed(obs, 5.0, width=0.5), in_force)
    assert d.fallback == (VIDEO,) and "above the rate in force" in " ".join(d.plan.reasons)
    assert rate(d) >= 20.0 / 0.9 - 0.01  # the reactive reference raised it at 90 % use
    # with the same plan and no violation there is nothing to fall back from
    q = planner(anomaly_threshold=1e9, hold_steps=0)
    obs = observed([10.0] * 6)
    q.decide(T0 + 60, obs, fixed(obs, 5.0, width=0.5), None)
    obs = observed([10.0] * 7)
    assert q.decide(T0 + 70, obs, fixed(obs, 5.0, width=0.5), in_force).fallback == ()


def test_forecasts_worse_than_persistence_fall_back_and_so_does_low_coverage_when_asked():
    def run(**kw):
        p = planner(anomaly_threshold=1e9, hold_steps=0, trust_window=3, **kw)
        vals, d = [10.0] * 6, None
        for i in range(5):  # median forecasts of 30 while the application keeps near 10
            vals.append(10.0 + (i % 2))
            obs = observed(vals)
            d = p.decide(T0 + STEP * len(vals), obs, fixed(obs, 30.0, width=0.5), None)
        return d
    d = run()
    assert d.fallback == (VIDEO,) and "further off than persistence" in " ".join(d.plan.reasons)
    assert d.scored[VIDEO].coverage == 1.0  # generous, but wrong
    p = planner(anomaly_threshold=1e9, hold_steps=0, trust_window=3, min_coverage=0.5)
    vals = [10.0] * 6
    for _ in range(4):  # forecasts of 5 while the application keeps using 10: never covered
        obs = observed(vals)
        d = p.decide(T0 + STEP * len(vals), obs, fixed(obs, 10.0, width=0.0), None)
        vals.append(11.0)
    assert d.scored[VIDEO].coverage == 0.0 and d.fallback == (VIDEO,)


def test_what_the_forecast_cannot_serve_is_refused_by_name():
    obs = observed([10] * 6)
    with pytest.raises(PlannerError, match=r"^quantile: 0.95 is not among the quantiles"):
        planner(quantile=0.95).decide(T0 + 60, obs, fixed(obs, 25.0), None)
    other = observed([10] * 6, keys=(SeriesKey("blue", "dns"),))
    with pytest.raises(PlannerError, match=r"^forecast: has no series 'red/video/bandwidth'"):
        planner().decide(T0 + 60, obs, fixed(other, 25.0), None)
    with pytest.raises(PlannerError, match=r"^observed: series: a name is tenant/app/metric"):
        planner().decide(T0 + 60, SeriesSet(obs.start, STEP, ("red/video",), obs.values), fixed(obs, 1), None)


def test_the_forecaster_factory_honours_or_refuses_every_setting():
    for kw, name in ((dict(name="prophet"), "forecaster"), (dict(name="lstm", quantile=1.0), "quantile"),
                     (dict(name="lstm", horizon=0), "horizon"), (dict(name="lstm", horizon=2.5), "horizon")):
        with pytest.raises(PlannerError, match=rf"^{name}: must be"):
            ForecasterChoice(**kw)
    obs = observed(20 + np.random.default_rng(0).normal(0, 3, 60).clip(-10, 10))
    choice = ForecasterChoice("persistence", quantile=0.95, horizon=4)
    model, note = fit(choice, obs)
    assert note == "persistence" and model.quantiles == (0.1, 0.9, 0.95)
    f = forecast(model, choice, obs)
    assert len(f.get(VIDEO.name).times) == 4 and f.get(VIDEO.name).quantile(0.95)
    with pytest.raises(PlannerError, match=r"^quantile: 0.6 is not served by the persistence model"):
        forecast(model, ForecasterChoice("persistence", quantile=0.6, horizon=4), obs)
    # an LSTM on too little history is persistence, and the note says so
    m, note = fit(ForecasterChoice("lstm", 0.9, 2), observed([10.0] * 20))
    assert m.name == "persistence" and "needs 48 steps" in note


@pytest.mark.parametrize("q", [0.6, 0.95])
def test_netshadow_run_allocates_at_the_quantile_it_was_given(q):
    rng = np.random.default_rng(0)
    vals = (20 + rng.normal(0, 3, 60).clip(-10, 10)).reshape(-1, 1)
    times = T0 + np.arange(60) * STEP

    def cycle(quantile):
        choice = ForecasterChoice("persistence", quantile=quantile, horizon=4)
        model, _ = fit(choice, observed(vals))
        p = planner(quantile=quantile)
        return decide_cycle(p, choice, model, [VIDEO], times, vals, STEP, None, times[-1] + STEP, "t"), model
    d, model = cycle(q)
    want = max(forecast(model, ForecasterChoice("persistence", q, 4), observed(vals)).get(
        VIDEO.name).quantile(q))
    assert d.quantile == q and d.required_mbps[VIDEO] == pytest.approx(want)
    assert rate(d) == pytest.approx(round(want, 3), abs=2e-3)
    d90, _ = cycle(0.9)
    assert (rate(d) > rate(d90)) if q > 0.9 else (rate(d) < rate(d90))


def test_the_loop_and_the_replay_decide_the_same_rates_from_the_same_inputs():
    """One decision path: the replay's predictive policy (in the idealised replay) and
    ``netshadow run``'s cycle, given the same measurements, model and plan in force."""
    rng = np.random.default_rng(1)
    keys = [("red", "video"), ("blue", "dns")]
    skeys = [SeriesKey(*k) for k in keys]
    n_hist, n = 30, 24
    t = np.arange(n_hist + n)
    demand_all = np.stack([12 + 6 * np.sin(t / 4) + rng.normal(0, 1, len(t)),
                           4 + 2 * np.cos(t / 5) + rng.normal(0, 0.5, len(t))], axis=1).clip(0.5)
    history, demand = demand_all[:n_hist], demand_all[n_hist:]
    start = pd.Timestamp(T0, unit="s", tz="UTC")
    settings = PlannerSettings(quantile=0.9, trust_window=3)
    choice = ForecasterChoice("moving_average", quantile=0.9, horizon=1)
    model, _ = fit(choice, SeriesSet(start, STEP, tuple(k.name for k in skeys), history))
    policy = PredictivePolicy(keys, SPEC, model, choice, history, start, STEP, settings)
    replayed = simulate(policy, demand, STEP, keys).allocated
    loop = Planner(SPEC, settings)
    current = None
    for step in range(n):
        seen = np.vstack([history, demand[:step]])[-policy.context:]
        first = n_hist + step - len(seen)
        times = T0 + (first + np.arange(len(seen))) * STEP
        d = decide_cycle(loop, choice, model, skeys, times, seen, STEP, current, step * STEP, "loop")
        np.testing.assert_allclose(d.rates(skeys), replayed[step], atol=1e-9, err_msg=f"step {step}")
        current = Plan("in-force", tuple(Allocation(k.tenant, k.app, round(max(r, 0.1), 3))
                                         for k, r in zip(skeys, d.rates(skeys))))
    assert len({tuple(r) for r in replayed}) > 5  # the rates did follow the demand


def test_a_restarted_planner_scores_from_what_it_stored():
    a = planner()
    obs = observed([10] * 6)
    a.decide(T0 + 60, obs, fixed(obs, 12.0, horizon=2), None)
    b = planner()
    b.restore(a.memory())
    obs2 = observed([10] * 6 + [11, 14])
    da, db = (x.decide(T0 + 80, obs2, fixed(obs2, 12.0), None) for x in (a, b))
    assert da.scored == db.scored and db.scored[VIDEO].n == 2
    with pytest.raises(PlannerError, match="^memory:"):
        planner().restore({"forecasts": [["red/video", 1.0, [1]]]})


def test_a_persistence_model_from_the_factory_is_a_real_forecaster():
    # the factory's models are the profiler's own classes, not stand-ins
    m, _ = fit(ForecasterChoice("persistence", 0.9, 1), observed([1.0, 2.0, 3.0]))
    assert isinstance(m, Persistence)
