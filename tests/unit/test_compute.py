"""Compute in the plan: memory limits and CPU quotas parsed and refused by name, the planner
sizing a host's quota from its forecast (ahead of a rise, never below use, released after the
hold, within what a plan sets), the reactive baseline on CPU, the compute replay's mapping and its
idealised run beside bandwidth, the calibrated CPU load, and the season of a repeating pattern."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from controller.allocator import AllocatorState, allocate
from controller.plan import Plan, PlanError, parse_plan
from emulation import cpuload
from emulation.trace import ReplayError, compute_demand, parse_mapping
from models.baselines import infer_season
from models.forecast import Forecast, SeriesForecast
from models.series import SeriesKey, SeriesSet
from planner.core import Planner, PlannerError, PlannerSettings
from planner.reactive import ReactivePlanner
from topologies import bundled, load_spec

SPEC = load_spec(bundled("compute"))
CPU = SeriesKey("red", "h2", "cpu")
MEM = SeriesKey("red", "h2", "memory")
STEP = 1.0
T0 = 1_800_000_000.0


def observed(vals, keys=(CPU,)):
    v = np.array(vals, dtype=float).reshape(len(vals), -1)
    return SeriesSet(pd.Timestamp(T0, unit="s", tz="UTC"), STEP, tuple(k.name for k in keys), v)


def fixed(obs: SeriesSet, medians, width=0.02) -> Forecast:
    last = obs.time(obs.rows - 1)
    times = tuple((last + pd.Timedelta(seconds=STEP * h)).isoformat() for h in range(1, len(medians) + 1))
    series = tuple(SeriesForecast(n, times, tuple(medians), tuple(
        (q, tuple(max(0.0, m - width) if q < 0.5 else m + width for m in medians)) for q in (0.1, 0.9)),
        "fixed") for n in obs.names)
    return Forecast(last.isoformat(), STEP, series)


def planner(**kw) -> Planner:
    return Planner(SPEC, PlannerSettings(**{"headroom": 0.0, "hold_steps": 3, "initial_margin": 0.0, **kw}))


# ---------------------------------------------------------------------------- the plan
def test_a_plan_carries_cpu_quotas_and_memory_limits_and_round_trips():
    p = parse_plan({"name": "c", "cpu_quotas": {"h2": 0.4}, "memory_limits": {"h2": 256}}, SPEC)
    assert p.cpu_quota("h2") == 0.4 and p.memory_limit("h2") == 256.0 and p.cpu_quota("h4") is None
    assert parse_plan(json.loads(json.dumps(p.to_dict())), SPEC) == p


@pytest.mark.parametrize("data, field", [
    ({"memory_limits": {"h2": 1}}, "memory_limits.h2"),  # under 16 MiB
    ({"memory_limits": {"nope": 64}}, "memory_limits.nope"),
    ({"memory_limits": [64]}, "memory_limits"),
    ({"memory_limits": {"h2": float("nan")}}, "memory_limits.h2"),
    ({"cpu_quotas": {"h2": 1.5}}, "cpu_quotas.h2"),
    ({"cpu_quotas": {"h2": 0.0}}, "cpu_quotas.h2"),
    ({"cpu_quotas": {"h2": True}}, "cpu_quotas.h2"),
])
def test_bad_compute_in_a_plan_is_refused_by_name(data, field):
    with pytest.raises(PlanError) as e:
        parse_plan({"name": "c", **data}, SPEC)
    assert e.value.field == field


def test_the_allocator_serves_a_network_of_one_switch():
    spec = load_spec(bundled("default"))
    one = spec.__class__(spec.name, spec.switches[:1], (), tuple(h for h in spec.hosts if h.switch == "s1"),
                         (), spec.source)
    plan = allocate(one, {}, {}, None, 0.0, AllocatorState())
    assert plan.allocations == ()


# ---------------------------------------------------------------------------- the planner
def test_the_quota_is_raised_before_a_forecast_rise_and_released_after_the_hold():
    p = planner()
    obs = observed([0.1] * 20)
    d = p.decide(T0 + 20, obs, fixed(obs, [0.1, 0.1, 0.6]), None)
    assert d.plan.cpu_quota("h2") == pytest.approx(0.62)  # the largest upper value of the horizon
    assert d.plan.allocations == ()  # compute alone: no meter
    current = d.plan
    for i in range(3):  # the rise passed: the requirement falls, the quota waits out the hold
        obs = observed([0.1] * (21 + i))
        d = p.decide(T0 + 21 + i, obs, fixed(obs, [0.1, 0.1, 0.1]), current)
        assert d.plan.cpu_quota("h2") == pytest.approx(0.62), i
        current = d.plan
    obs = observed([0.1] * 25)
    d = p.decide(T0 + 25, obs, fixed(obs, [0.1, 0.1, 0.1]), current)
    assert d.plan.cpu_quota("h2") == pytest.approx(0.12)


def test_the_quota_is_never_below_use_nor_outside_what_a_plan_sets():
    obs = observed([0.5] * 20)
    d = planner().decide(T0 + 20, obs, fixed(obs, [0.05]), None)
    assert d.plan.cpu_quota("h2") >= 0.5  # the floor: a collapse is not believed
    obs = observed([0.9] * 20)
    d = planner(headroom=0.5).decide(T0 + 20, obs, fixed(obs, [0.95]), None)
    assert d.plan.cpu_quota("h2") == 1.0 and any("capped" in r for r in d.plan.reasons)


def test_a_throttled_step_counts_against_the_budget_and_raises_the_margin():
    p = planner(initial_margin=0.0)
    obs = observed([0.2] * 20)
    d = p.decide(T0 + 20, obs, fixed(obs, [0.2]), None)
    before = p.margins[CPU].margin
    obs = observed([0.2] * 20 + [0.4])  # it asked for 0.4 under a 0.22 quota
    d = p.decide(T0 + 21, obs, fixed(obs, [0.2]), d.plan)
    assert p.margins[CPU].violated == 1 and p.margins[CPU].margin > before
    assert d.violation_share[CPU] == 1.0


def test_memory_is_sized_in_mib_beside_cpu_in_one_plan():
    obs = observed([[0.2, 300.0]] * 20, keys=(CPU, MEM))
    d = planner(headroom=0.1).decide(T0 + 20, obs, fixed(obs, [0.2]), None)
    assert d.plan.memory_limit("h2") >= 330.0 and d.plan.cpu_quota("h2") >= 0.2
    parse_plan(d.plan.to_dict(), SPEC)  # what the planner decides, the controller accepts


def test_a_compute_series_must_name_a_host_of_its_tenant():
    obs = observed([0.1] * 10, keys=(SeriesKey("red", "h4", "cpu"),))
    with pytest.raises(PlannerError, match="h4"):
        planner().decide(T0 + 10, obs, fixed(obs, [0.1]), None)


def test_the_reactive_baseline_follows_the_last_measurement_in_each_unit():
    r = ReactivePlanner(PlannerSettings(), STEP)
    obs = observed([[0.1, 100.0]] * 5, keys=(CPU, MEM))
    p1 = r.decide(T0 + 5, obs, None, "r1")
    assert 0.1 < p1.cpu_quota("h2") <= 0.2 and p1.memory_limit("h2") >= 100
    obs = observed([[0.1, 100.0]] * 5 + [[0.6, 100.0]], keys=(CPU, MEM))
    p2 = r.decide(T0 + 6, obs, p1, "r2")
    assert p2.cpu_quota("h2") >= 0.6 / 0.9 - 1e-9  # only after the rise was measured
    parse_plan(p2.to_dict(), SPEC)


# ---------------------------------------------------------------------------- the compute replay
def test_a_mapping_drives_a_cpu_limited_hosts_cpu():
    m = parse_mapping({"compute": [{"column": "cpu", "host": "h2", "scale": 0.01}]}, SPEC, ["cpu"])
    assert m.flows == () and m.compute[0].key == ("red", "h2")
    d = compute_demand(np.array([[40.0], [np.nan], [60.0]]), m, ("cpu",))
    assert d[:, 0].tolist() == pytest.approx([0.4, 0.4, 0.6])
    with pytest.raises(ReplayError, match="more than 1"):
        compute_demand(np.array([[150.0]]), m, ("cpu",))


@pytest.mark.parametrize("change, field", [
    ({"host": "h1"}, "compute[0].host"),  # no cpu share
    ({"host": "nope"}, "compute[0].host"),
    ({"scale": -1}, "compute[0].scale"),
    ({"column": "other"}, "compute[0].column"),
    ({"cores": 1}, "compute[0].cores"),
])
def test_compute_mapping_errors_name_the_field(change, field):
    with pytest.raises(ReplayError) as e:
        parse_mapping({"compute": [{"column": "cpu", "host": "h2", **change}]}, SPEC, ["cpu"])
    assert str(e.value).startswith(field), e.value


def test_the_compute_replay_is_printed_beside_the_bandwidth_one(tmp_path, capsys):
    from netshadow.cli import main

    t = pd.date_range("2026-01-05", periods=4 * 48, freq="30min", tz="UTC")
    day = np.sin(np.arange(len(t)) * 2 * np.pi / 48)
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M"), "bw": 10 + 5 * day,
                  "cpu": 40 + 20 * day}).to_csv(tmp_path / "t.csv", index=False)
    (tmp_path / "m.yaml").write_text(
        "flows:\n  - {column: bw, tenant: red, app: api, src: h1, dst: h2}\n"
        "compute:\n  - {column: cpu, host: h2, scale: 0.01}\n")
    rc = main(["replay", "--spec", "compute", "--trace", str(tmp_path / "t.csv"), "--map",
               str(tmp_path / "m.yaml"), "--compress", "1800=1", "--ideal", "--forecaster",
               "seasonal_naive", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert ": CPU" in out and "compute: violation_ratio_vs_reactive" in out and "bandwidth: " in out
    doc = json.loads((tmp_path / "r.json").read_text())
    c = doc["compute"]["summary"]
    assert set(c) == {"static", "reactive", "predictive", "oracle"}
    assert c["oracle"]["reserved_mbit"] < c["static"]["reserved_mbit"]
    assert max(max(row) for row in doc["compute"]["runs"]["static"]["allocated"]) <= 1.0


# ---------------------------------------------------------------------------- the load and the season
def test_the_cpu_load_follows_its_schedule_in_cpu_time():
    clock = {"t": 0.0, "cpu": 0.0}

    def now():
        return clock["t"]

    def cpu():  # spinning costs what it takes: cpu time and wall time advance together
        clock["t"] += 0.0001
        clock["cpu"] += 0.0001
        return clock["cpu"]

    def sleep(s):
        clock["t"] += s

    used = cpuload.run([0.25, 0.5, 0.0], 1.0, 0.0, clock=now, cpu=cpu, sleep=sleep)
    assert used == pytest.approx([0.25, 0.5, 0.0], abs=0.03)
    with pytest.raises(ValueError, match="item 1"):
        cpuload.parse_shares("0.1,2")


def test_a_season_given_to_the_forecaster_is_the_one_its_seasonal_baselines_use():
    from planner.forecasters import ForecasterChoice, fit

    v = np.array(([0.1] * 10 + [0.5] * 6) * 3)
    s = SeriesSet(pd.Timestamp(0, unit="s", tz="UTC"), 1.0, ("a/b/cpu",), v[:, None])
    assert infer_season(s) == 2  # a square wave's first lags correlate more than its period
    m, _ = fit(ForecasterChoice("seasonal_naive", 0.9, 4, season=16), s)
    assert m.season == 16
    fc = m.predict(4, s)
    assert list(fc.series[0].median) == pytest.approx([0.1, 0.1, 0.1, 0.1])
    with pytest.raises(PlannerError, match="season"):
        ForecasterChoice("seasonal_naive", 0.9, 1, season=1)


def test_plan_has_no_compute_by_default():
    assert Plan("x").cpu_quotas == () and Plan("x").memory_limits == ()
