"""The decision core against the seed's cases: no increase -> no change; an increase within free
capacity grows the allocation; contention respects priorities; a drop is released only after the
hysteresis window; never below current use."""

from __future__ import annotations

import pytest

from controller.allocator import AllocatorSettings, AllocatorState, allocate
from controller.plan import Allocation, Plan
from topologies import bundled, load_spec

S = AllocatorSettings(headroom=0.0, hold_s=300, release_fraction=0.1, min_change=0.05)


@pytest.fixture(scope="module")
def spec():
    return load_spec(bundled("default"))


def plan_of(**rates):
    return Plan("cur", tuple(Allocation(*k.split("_"), v) for k, v in rates.items()))


def rate(plan, tenant, app):
    return plan.allocation(tenant, app).rate_mbps


def test_no_forecast_increase_no_change(spec):
    cur = plan_of(red_video=20.0)
    p = allocate(spec, {("red", "video"): 20.0}, {("red", "video"): 15.0}, cur, 0.0, AllocatorState(), S)
    assert rate(p, "red", "video") == 20.0
    p = allocate(spec, {("red", "video"): 20.5}, {}, cur, 0.0, AllocatorState(), S)  # within 5 %
    assert rate(p, "red", "video") == 20.0


def test_increase_within_free_capacity_grows(spec):
    cur = plan_of(red_video=20.0)
    p = allocate(spec, {("red", "video"): 30.0}, {}, cur, 0.0, AllocatorState(), S)
    assert rate(p, "red", "video") == 30.0


def test_contention_respects_priorities(spec):
    from controller.allocator import app_links
    from controller.tenancy import compile_network

    links = app_links(spec, compile_network(spec).paths)
    shared = links[("blue", "dns")] & links[("green", "backup")]
    assert shared == {frozenset(("s1", "s3"))}  # 50 Mbit/s
    # blue has priority 2, green 1; green wants more than any alternative path could carry
    fc = {("blue", "dns"): 40.0, ("green", "backup"): 60.0}
    p = allocate(spec, fc, {}, None, 0.0, AllocatorState(), S)
    assert rate(p, "blue", "dns") == pytest.approx(40.0)
    assert rate(p, "green", "backup") == pytest.approx(0.95 * 50 - 40.0, abs=0.01)
    assert p.allocation("green", "backup").path is None
    assert any("green/backup" in r and "limited by link s1-s3" in r for r in p.reasons)


def test_drop_released_only_after_the_hysteresis_window(spec):
    cur = plan_of(red_video=30.0)
    st = AllocatorState()
    fc = {("red", "video"): 10.0}
    assert rate(allocate(spec, fc, {}, cur, 0.0, st, S), "red", "video") == 30.0
    assert rate(allocate(spec, fc, {}, cur, 299.0, st, S), "red", "video") == 30.0
    assert rate(allocate(spec, fc, {}, cur, 301.0, st, S), "red", "video") == 10.0
    # a short dip does not count towards the window
    st = AllocatorState()
    allocate(spec, fc, {}, cur, 0.0, st, S)
    allocate(spec, {("red", "video"): 30.0}, {}, cur, 100.0, st, S)
    assert rate(allocate(spec, fc, {}, cur, 350.0, st, S), "red", "video") == 30.0


def test_never_below_current_use(spec):
    p = allocate(spec, {("red", "video"): 5.0}, {("red", "video"): 12.0}, None, 0.0, AllocatorState(), S)
    assert rate(p, "red", "video") == 12.0


def test_headroom_applies_to_the_forecast(spec):
    p = allocate(spec, {("red", "video"): 10.0}, {}, None, 0.0, AllocatorState(),
                 AllocatorSettings(headroom=0.2))
    assert rate(p, "red", "video") == pytest.approx(12.0)


def test_contention_moves_to_an_alternative_path_when_one_exists(spec):
    from controller.plan import parse_plan

    # blue (priority 2) fills s1-s3, the 50 Mbit/s link on green/backup's path s5-s1-s3; green
    # (priority 1, from s5 to s3) fits on s5-s2-s4-s3
    fc = {("blue", "dns"): 40.0, ("green", "backup"): 30.0}
    p = allocate(spec, fc, {}, None, 0.0, AllocatorState(), S)
    green = p.allocation("green", "backup")
    assert green.rate_mbps == pytest.approx(30.0)
    assert green.path == ("s5", "s2", "s4", "s3")
    assert any("green/backup: moved to path s5-s2-s4-s3" in r for r in p.reasons)
    assert p.allocation("blue", "dns").path is None
    parse_plan(p.to_dict(), spec)  # the plan the allocator makes is a valid plan


def test_a_ceiling_bounds_the_rate_after_rounding_to_the_kbit(spec):
    """The planner's spend cap is a ceiling: the rate may not round up past it."""
    k = ("red", "video")
    p = allocate(spec, {k: 30.0}, {k: 5.0}, None, 0.0, AllocatorState(), S, ceiling={k: 12.34567})
    assert rate(p, *k) == pytest.approx(12.345) and rate(p, *k) <= 12.34567
    assert "held to the ceiling" in " ".join(p.reasons)
    free = allocate(spec, {k: 30.0}, {k: 5.0}, None, 0.0, AllocatorState(), S)
    assert rate(free, *k) == pytest.approx(30.0)  # headroom 0
