"""Trace replay, pure parts: mapping validation, compression, the demo trace, the policies'
decisions, the measures and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.reactive import ReactiveSettings
from emulation.meters import parse_meter_stats
from emulation.policies import (
    HindsightPersistence,
    OraclePolicy,
    ReactivePolicy,
    StaticPolicy,
    StepInput,
    hindsight_multipliers,
)
from emulation.replay import ReplayResult, actuation_lead
from emulation.replay_measures import (
    compare,
    forecast_peak_steps,
    peak_onsets,
    peak_steps,
    summarise,
)
from emulation.trace import ReplayError, demand, parse_compress, parse_mapping, synthetic_trace
from models.base import Forecaster
from models.series import SeriesKey, SeriesSet
from planner.core import PlannerSettings
from planner.forecasters import ForecasterChoice
from planner.replay import PredictivePolicy, shift_peaks
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
GOOD = {"scale": 0.5, "flows": [
    {"column": "a", "tenant": "red", "app": "video", "src": "h1", "dst": "h2"},
    {"column": "b", "tenant": "green", "app": "metrics", "src": "h7", "dst": "h8"}]}
KEYS = [("red", "video"), ("green", "metrics")]


def test_mapping_accepts_a_good_one():
    m = parse_mapping(GOOD, SPEC, ["a", "b"])
    assert m.scale == 0.5 and [f.key for f in m.flows] == KEYS


@pytest.mark.parametrize("change, field", [
    ({"scale": 0}, "scale"),
    ({"flows": []}, "flows"),
    ({"flows": [{**GOOD["flows"][0], "column": "zz"}]}, "flows[0].column"),
    ({"flows": [{**GOOD["flows"][0], "tenant": "nobody"}]}, "flows[0].tenant"),
    ({"flows": [{**GOOD["flows"][0], "app": "web"}]}, "flows[0].app"),  # TCP
    ({"flows": [{**GOOD["flows"][0], "src": "h4"}]}, "flows[0].src"),  # another tenant's host
    ({"flows": [{**GOOD["flows"][0], "src": "h2", "dst": "h1"}]}, "flows[0]"),  # not allowed
    ({"flows": [GOOD["flows"][0], {**GOOD["flows"][0], "column": "b"}]}, "flows[1].app"),  # twice
    ({"flows": [{**GOOD["flows"][0], "rate": 3}]}, "flows[0].rate"),
])
def test_mapping_errors_name_the_field(change, field):
    with pytest.raises(ReplayError) as e:
        parse_mapping({**GOOD, **change}, SPEC, ["a", "b"])
    assert str(e.value).startswith(field)


def test_compress():
    assert parse_compress("300=1") == (300.0, 1.0)
    assert parse_compress("5min=0.5") == (300.0, 0.5)
    for bad in ("300", "300=0", "x=1", "300=0.1"):
        with pytest.raises(ReplayError, match="compress"):
            parse_compress(bad)


def test_demand_scales_and_carries_gaps_forward():
    m = parse_mapping(GOOD, SPEC, ["a", "b"])
    v = np.array([[2.0, 4.0], [np.nan, 6.0], [8.0, -1.0]])
    d = demand(v, m, ("a", "b"))
    assert d.tolist() == [[1.0, 2.0], [1.0, 3.0], [4.0, 0.0]]


def test_synthetic_trace_is_deterministic_with_a_daily_peak():
    a, b = synthetic_trace(), synthetic_trace()
    assert a.equals(b) and len(a) == 8 * 48
    day = a.iloc[-48:]
    hour = pd.to_datetime(day["time"]).dt.hour
    peak_hour = hour[day["series1"].idxmax()]
    assert 18 <= peak_hour <= 22 and day["series1"].max() > 2.5 * day["series1"].min()


def step(t, offered, dropped=None):
    o = np.array(offered, dtype=float).reshape(t, -1) if t else np.zeros((0, 2))
    return StepInput(t, t * 300.0, o, np.zeros_like(o) if dropped is None else np.array(dropped))


def test_static_and_oracle():
    d = np.array([[1.0, 2.0], [5.0, 1.0], [3.0, 3.0]])
    assert StaticPolicy(KEYS, d, 0.0).decide(step(0, [])).tolist() == [5.0, 3.0]
    o = OraclePolicy(KEYS, d, 0.1)
    assert o.decide(step(2, [[1, 2], [5, 1]])) == pytest.approx([3.3, 3.3])


def test_reactive_raises_after_use_passes_the_threshold():
    r = ReactivePolicy(KEYS, np.array([10.0, 10.0]), ReactiveSettings(cooldown_s=600))
    assert r.decide(step(0, [])).tolist() == [10.0, 10.0]
    out = r.decide(step(1, [[9.5, 3.0]]))
    assert out[0] > 10.5 and out[1] == 10.0  # only the busy one, and only after the fact


class Told(Forecaster):
    """A forecaster whose next value the test sets (for the adapter's logic only); it goes
    through the profiler's own ``predict``, so the planner sees a real ``Forecast``."""

    name = "told"
    window = 2

    def __init__(self):
        super().__init__((0.1, 0.9))
        self.next = np.zeros(2)

    def point(self, values, h):
        return np.broadcast_to(self.next, values.shape).copy()

    def forecast(self, values, h, start=None):
        med = self.point(values, h)
        return med, np.stack([med * 0.9, med * 1.05])


def predictive(history, spend_cap=False):
    """A policy on forecasts the test sets (no spend cap unless asked: a cold planner has saved
    nothing to pre-allocate with, see the spend cap's own test)."""
    m = Told().fit(SeriesSet(pd.Timestamp("2026-01-01"), 300.0, tuple(SeriesKey(*k).name for k in KEYS),
                             history))
    return m, PredictivePolicy(KEYS, SPEC, m, ForecasterChoice("persistence", 0.9, 1), history,
                               pd.Timestamp("2026-01-01"), 300.0,
                               PlannerSettings(anomaly_policy="allocate", spend_cap=spend_cap))


def test_predictive_allocates_before_a_rise_and_does_not_believe_a_collapse_after_a_violation():
    m, p = predictive(np.full((10, 2), 5.0))
    m.next = np.array([5.0, 5.0])
    for t in range(2):
        p.decide(step(t, [[5, 5]] * t))
    m.next = np.array([20.0, 5.0])
    out = p.decide(step(2, [[5, 5], [5, 5]]))
    assert out[0] >= 20.0 * 1.05  # raised before the step where demand rises
    assert p.band[2][1][0] == pytest.approx(21.0)
    # the first application's demand broke the plan in force: the violation counts against its
    # budget, and a forecast of 5 right after 30 is not believed (no such drop was measured)
    m.next = np.array([5.0, 5.0])
    out = p.decide(step(3, [[5, 5], [5, 5], [30, 1]]))
    assert out[0] >= 30 - 0.01 and "red/video" in p.notes[3] and "green" not in p.notes[3]
    red, green = (p.planner.margins[k] for k in p.series_keys)
    assert (red.violated, green.violated) == (1, 0) and red.margin > green.margin


def test_shift_peaks_delays_forecasts():
    c = shift_peaks(2)
    got = [c(t, np.array([float(t)]), np.array([float(t)]))[0][0] for t in range(5)]
    assert got == [0.0, 0.0, 0.0, 1.0, 2.0]


def result(policy, demand_, allocated, in_b, drop_b, rtt=(1.0, 2.0, None)):
    T, N = demand_.shape
    return ReplayResult(policy, 300.0, 1.0, KEYS[:N], demand_, allocated, demand_, in_b, drop_b,
                        apply_s=[0.01], rtt_ms=list(rtt))


def test_measures():
    d = np.array([[1.0], [1.0], [5.0], [5.0], [1.0], [1.0], [1.0], [1.0], [6.0], [6.0]])
    assert peak_onsets(d) == [(2, 0), (8, 0)]
    assert peak_onsets(np.array([[1.0], [6.0], [1.0], [6.0], [6.0], [1.0]])) == [(1, 0)]  # merged
    # the steps of those peaks above the threshold; a single-step spike is not one
    spiky = np.array([[1.0], [6.0], [1.0], [6.0], [6.0], [1.0], [1.0], [1.0], [1.0], [6.0], [1.0]])
    assert np.flatnonzero(peak_steps(spiky)[:, 0]).tolist() == [1, 3, 4]
    a = np.array([[2.0]] * 3 + [[6.0]] * 7)
    inb = np.full((10, 1), 1000.0)
    drop = np.zeros((10, 1))
    drop[2] = 500.0  # the first peak was not allocated in time
    s = summarise(result("reactive", d, a, inb, drop))
    assert s["violation_s"] == 300.0 and s["violation_steps"] == 1
    assert s["reserved_mbit"] == pytest.approx(48.0 * 300)
    assert (s["peaks"], s["peaks_preallocated"]) == (2, 1)
    assert s["probe_loss"] == pytest.approx(1 / 3)
    assert s["late_steps"] == 0
    late = result("reactive", d, a, inb, drop)
    # steps of 1 s: rates confirmed 0.3 s and 0.15 s into their steps were late, 0.05 s was not
    late.late_s = [-0.05] * 6 + [0.05, 0.15, 0.3]
    assert summarise(late)["late_steps"] == 2
    # which part of the round made them late: the 90th percentiles of each, ms
    assert s["decide_p90_ms"] is None and s["read_p90_ms"] is None
    late.decide_s, late.read_s = [0.01] * 9 + [0.8], [0.02] * 10
    t = summarise(late)
    assert t["decide_p90_ms"] == pytest.approx(89.0) and t["read_p90_ms"] == pytest.approx(20.0)
    assert t["apply_p90_ms"] == pytest.approx(10.0)
    p = summarise(result("predictive", d, a + 4, inb, np.zeros((10, 1))))
    r = compare({"predictive": p, "reactive": s, "oracle": s})
    assert r["violation_ratio_vs_reactive"] == 0.0 and r["reserved_ratio_vs_reactive"] > 1


def test_forecast_peaks_are_chosen_by_the_forecast_per_series():
    f = np.column_stack([np.arange(20.0), np.r_[30.0, np.arange(18.0), np.nan]])
    got = forecast_peak_steps(f)
    # the top tenth of each series' own forecasts; a missing forecast never counts
    assert np.flatnonzero(got[:, 0]).tolist() == [18, 19]
    assert np.flatnonzero(got[:, 1]).tolist() == [0, 18]
    # a flat forecast foresees no step above another: every step counts
    assert forecast_peak_steps(np.ones((5, 1))).all()
    assert forecast_peak_steps(f, share=0.25)[:, 0].sum() == 5
    assert not forecast_peak_steps(np.full((4, 1), np.nan)).any()
    with pytest.raises(ValueError, match="share"):
        forecast_peak_steps(f, share=0)


def test_meter_stats_parsing():
    text = ("OFPST_METER reply (OF1.3) (xid=0x2):\n"
            "meter:259 flow_count:2 packet_in_count:10 byte_in_count:12420 duration:3.1s bands:\n"
            "0: packet_count:3 byte_count:3726\n"
            "meter:515 flow_count:1 packet_in_count:0 byte_in_count:0 duration:3.1s bands:\n"
            "0: packet_count:0 byte_count:0\n")
    got = {mid: (c.bytes_in, c.bytes_dropped) for mid, c in parse_meter_stats(text).items()}
    assert got == {259: (12420, 3726), 515: (0, 0)}


def test_report_is_self_contained(tmp_path):
    from emulation.replay_report import write_report

    d = np.array([[1.0], [3.0], [2.0]])
    res = {n: result(n, d, d * k, np.ones((3, 1)), np.zeros((3, 1)))
           for n, k in (("reactive", 1.5), ("predictive", 1.2))}
    res["predictive"].band = {1: ([2.9], [3.2]), 2: ([2.1], [2.4])}
    page = write_report(res, tmp_path, "t", pd.date_range("2026-01-01", periods=3, freq="5min"), {})
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 2  # one per application + the comparison
    assert (tmp_path / "policies_cost_vs_violations.png").stat().st_size > 5000
    assert (tmp_path / "replay.json").exists()


def test_actuation_lead_covers_the_slow_rounds_within_half_a_step():
    assert actuation_lead([], 1.0) == pytest.approx(0.1)
    assert actuation_lead([], 0.1) == pytest.approx(0.05)  # never more than half a step
    # nine quick rounds and one slow one: the 90th percentile follows the tail, not the median
    rounds = [0.05] * 9 + [0.35]
    assert actuation_lead(rounds, 1.0) == pytest.approx(1.2 * np.percentile(rounds, 90))
    assert actuation_lead(rounds, 1.0) > 1.5 * np.median(rounds)
    assert actuation_lead([0.001] * 5, 1.0) == pytest.approx(0.05)  # a floor for jitter
    assert actuation_lead([0.9] * 5, 1.0) == pytest.approx(0.5)  # a decision sees half a step
    # only the last rounds count: a slow start is forgotten
    assert actuation_lead([0.4] * 10 + [0.1] * 20, 1.0) == pytest.approx(0.12)


def test_idealised_replay_scores_the_shortfall():
    from emulation.replay_ideal import simulate

    d = np.array([[4.0, 1.0], [8.0, 1.0], [8.0, 2.0], [2.0, 1.0]])
    res = simulate(StaticPolicy(KEYS, d, 0.0), d, 300.0, KEYS)
    s = summarise(res)
    assert s["violation_steps"] == 0 and s["reserved_mbit"] == pytest.approx((8 + 2) * 4 * 300)
    # a static reservation of 6 / 1.5 Mbit/s: steps 1 and 2 of the first application lose 2 of 8,
    # step 2 of the second loses 0.5 of 2
    res = simulate(StaticPolicy(KEYS, np.array([[6.0, 1.5]]), 0.0), d, 300.0, KEYS)
    s = summarise(res)
    assert s["violation_steps"] == 3 and s["violation_s"] == 900
    assert s["dropped_mbytes"] == pytest.approx((2 + 2 + 0.5) * 300 / 8)
    assert res.drop_bytes[1, 0] / res.in_bytes[1, 0] == pytest.approx(0.25)


def test_idealised_replay_feeds_the_policy_what_it_lost():
    from emulation.replay_ideal import simulate

    d = np.array([[4.0, 1.0], [9.0, 1.0], [9.0, 1.0], [9.0, 1.0]])
    r = ReactivePolicy(KEYS, np.array([5.0, 2.0]), ReactiveSettings(cooldown_s=600))
    res = simulate(r, d, 300.0, KEYS)
    # reactive sees the jump only after step 1 and raises for step 2: one violated step
    assert summarise(res)["violation_steps"] == 1
    assert res.allocated[2, 0] >= 9.0
    with pytest.raises(ValueError, match="demand"):
        simulate(r, d[:, :1], 300.0, KEYS)


def test_hindsight_multipliers_spend_the_budget_where_it_saves_most():
    from itertools import product

    from emulation.replay_ideal import simulate

    # application 0 is large and jumps by 1.5x once; application 1 is small and jumps by 3x once
    d = np.array([[10.0, 1.0], [15.0, 1.0], [10.0, 3.0], [11.0, 1.0], [10.0, 1.2]])
    before = np.array([10.0, 1.0])
    prev = np.vstack([before, d[:-1]])
    need = d * 0.99 / prev
    for budget in range(4):
        c = hindsight_multipliers(d, before, budget)
        s = summarise(simulate(HindsightPersistence(KEYS, before, c), d, 300.0, KEYS))
        assert s["violation_steps"] <= budget
        # no other choice of per-application constants among the candidates is cheaper
        cands = [sorted(set(need[:, j])) for j in range(2)]
        feasible = [x for x in product(*cands) if ((need > np.array(x) * (1 + 1e-9)).sum() <= budget)]
        cheapest = min(float((prev * np.array(x)).sum()) for x in feasible)
        assert float((prev * c).sum()) == pytest.approx(cheapest, rel=1e-6)
    # one violation is spent on the large application's jump: (1.485 - 1.089) x 56 Mbit/s of
    # previous demand saves more than the small one's 3x jump would, (2.97 - 1.188) x 7
    assert hindsight_multipliers(d, before, 1)[0] < 1.2
    assert hindsight_multipliers(d, before, 0)[0] == pytest.approx(1.485, rel=1e-6)


def test_hindsight_multipliers_count_what_no_constant_covers():
    d = np.array([[0.0, 1.0], [2.0, 1.0], [2.0, 1.0]])
    c = hindsight_multipliers(d, np.array([0.0, 1.0]), 1)  # 0 -> 2 is one violation whatever c is
    assert c[1] == pytest.approx(0.99, rel=1e-6)
    with pytest.raises(ValueError, match="budget_steps: 0"):
        hindsight_multipliers(d, np.array([0.0, 1.0]), 0)
    with pytest.raises(ValueError, match="budget_steps"):
        hindsight_multipliers(d, np.array([0.0, 1.0]), -1)


TRACES = Path(__file__).resolve().parents[2] / "traces"


def test_replay_refuses_a_bad_quantile_before_starting_a_lab(capsys):
    from netshadow.cli import main

    rc = main(["replay", "--spec", str(bundled("default")), "--trace", str(TRACES / "demo.csv"),
               "--map", str(TRACES / "demo-map.yaml"), "--compress", "1800=1",
               "--policy", "predictive", "--forecaster", "persistence", "--quantile", "1.5"])
    assert rc == 2
    assert "quantile: must be in (0.5, 1) (got 1.5)" in capsys.readouterr().err
    rc = main(["replay", "--spec", str(bundled("default")), "--trace", str(TRACES / "demo.csv"),
               "--map", str(TRACES / "demo-map.yaml"), "--compress", "1800=1",
               "--policy", "predictive", "--forecaster", "persistence", "--budget", "0.9"])
    assert rc == 2 and "budget: must be in (0, 0.5) (got 0.9)" in capsys.readouterr().err


def test_an_idealised_replay_holds_its_budget_and_records_it(tmp_path):
    """The budget travels from the command to the predictive policy's planner; a tighter budget
    buys fewer violated steps with more reserve on the same day."""
    from netshadow.replaycmd import ReplaySettings, run_replay

    docs = {}
    for b in (0.01, 0.2):
        rs = ReplaySettings(str(bundled("default")), str(TRACES / "demo.csv"), str(TRACES / "demo-map.yaml"),
                            "1800=1", ("predictive", "reactive"), forecaster="holt_winters",
                            json_out=str(tmp_path / f"{b}.json"), ideal=True, budget=b)
        docs[b] = json.loads((tmp_path / f"{b}.json").read_text()) if run_replay(rs) else None
    tight, loose = (docs[b]["summary"]["predictive"] for b in (0.01, 0.2))
    assert docs[0.2]["meta"]["budget"] == 0.2
    assert tight["violation_steps"] <= loose["violation_steps"]
    assert tight["reserved_mbit"] > loose["reserved_mbit"]


def test_a_baseline_forecaster_carries_the_allocated_quantile():
    from rich.console import Console

    from netshadow.replaycmd import make_forecaster, make_policy, prepare

    setup = prepare(SPEC, str(TRACES / "demo.csv"), str(TRACES / "demo-map.yaml"), "1800=1",
                    None, 1.0)
    m = make_forecaster(setup, "persistence", Console(quiet=True), quantile=0.99)
    assert m.quantiles == (0.1, 0.9, 0.99)
    p = make_policy("predictive", setup, m, quantile=0.99)
    rates = p.decide(StepInput(0, 0.0, np.zeros((0, 3)), np.zeros((0, 3))))
    assert rates.shape == (3,) and (rates > 0).all()
    # the replay's predictive policy starts as one that has run the day before its window
    assert p.warmed == 48 and len(setup.history) >= 48 + 48  # half-hour steps
    assert make_policy("predictive", setup, m, quantile=0.99, warmup=0).warmed == 0


def test_idealised_replay_from_the_command_line(tmp_path, capsys):
    """``netshadow replay --ideal``: no lab, every policy scored and reported."""
    import json

    from netshadow.cli import main

    rc = main(["replay", "--spec", str(bundled("default")), "--trace", str(TRACES / "demo.csv"),
               "--map", str(TRACES / "demo-map.yaml"), "--compress", "1800=1", "--ideal",
               "--forecaster", "persistence", "--json", str(tmp_path / "r.json"),
               "--report", str(tmp_path / "report")])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((tmp_path / "r.json").read_text())
    s = doc["summary"]
    assert set(s) == {"static", "reactive", "predictive", "oracle"}
    assert s["static"]["violation_s"] == 0 and s["oracle"]["violation_s"] == 0
    assert s["oracle"]["reserved_mbit"] < s["reactive"]["reserved_mbit"] < s["static"]["reserved_mbit"]
    assert (tmp_path / "report" / "index.html").stat().st_size > 10_000
    assert "idealised" in capsys.readouterr().out
