"""What makes a shadow run a measurement of the host rather than of the plan, and the repeat of
a disturbed run (pure logic: the measurements are given, no lab is built)."""

from __future__ import annotations

import pytest

from controller.plan import parse_plan
from emulation.report import FlowResult, LinkResult
from emulation.shadow import FlowDemand, Shadow
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
VIDEO = FlowDemand("red", "video", "h1", "h2", "udp", 5004, (15.0, 15.0))
DNS = FlowDemand("blue", "dns", "h4", "h5", "udp", 53, (0.0, 5.0))  # silent in its first step
WEB = FlowDemand("red", "web", "h1", "h2", "tcp", 80, (10.0,))


def flow(d: FlowDemand, loss=0.0, gap=0.01, meter=None) -> FlowResult:
    offered = max(d.rates_mbps)
    return FlowResult(d.tenant, d.app, d.src, d.dst, d.protocol, offered,
                      offered * (1 - (loss or 0.0)), loss, 16.0 if d.app == "video" else None,
                      gap, meter, None if meter is None else offered * (1 - meter))


@pytest.fixture
def shadow(tmp_path):
    sh = Shadow(SPEC, prefix="nxu", workdir=tmp_path)
    sh.plan = parse_plan({"name": "p", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 16}]}, SPEC)
    return sh


def test_a_clean_run_has_no_stall_and_no_host_loss(shadow):
    assert shadow._stalls([VIDEO], [flow(VIDEO, meter=0.0)]) == []
    assert shadow._host_loss([VIDEO], [flow(VIDEO, meter=0.0)], []) == []


def test_a_silence_longer_than_the_meters_burst_is_a_stall(shadow):
    (why,) = shadow._stalls([VIDEO], [flow(VIDEO, gap=0.35)])
    assert "red/video h1>h2 silent 0.350 s" in why and "0.100 s" in why


def test_a_plan_burst_sets_how_long_a_silence_may_be(shadow):
    shadow.plan = parse_plan({"name": "p", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 16, "burst_kbit": 8000}]}, SPEC)
    assert shadow._stalls([VIDEO], [flow(VIDEO, gap=0.35)]) == []  # a 0.5 s burst


def test_a_schedule_with_a_silent_step_is_not_a_stall(shadow):
    assert shadow._stalls([DNS], [flow(DNS, gap=4.0)]) == []


def test_loss_the_meter_explains_is_not_the_hosts(shadow):
    assert shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.3, meter=0.295)], []) == []


def test_loss_outside_the_meter_without_a_congested_link_is_the_hosts(shadow):
    (why,) = shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.05, meter=0.0)], [])
    assert "red/video h1>h2 lost 5.0% outside its meter" in why


HOT = LinkResult("s1-s2", "s1>s2", 0.99, 1.0, ("red/video h1>h2",))
COLD = LinkResult("s1-s2", "s1>s2", 0.40, 0.5, ("red/video h1>h2",))


def test_loss_on_a_congested_path_is_not_the_hosts(shadow):
    assert shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.05, meter=0.0)], [HOT]) == []
    assert shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.05, meter=0.0)], [COLD]) != []


def test_tcp_flows_have_neither(shadow):
    assert shadow._stalls([WEB], [flow(WEB, loss=None, gap=None)]) == []
    assert shadow._host_loss([WEB], [flow(WEB, loss=None, gap=None)], []) == []


def test_the_plan_is_judged_by_what_its_meter_dropped(shadow):
    why = shadow._shortfall(flow(VIDEO, loss=0.3, meter=0.3), [])
    assert why.startswith("red/video: its meter dropped 30.0% of 15.00 Mbit/s offered (passed 10.50)")
    # the host lost 5 % outside the meter on an uncongested path: not the plan's doing
    assert shadow._shortfall(flow(VIDEO, loss=0.05, meter=0.0), [COLD]) is None
    # lost on a congested link of its path: the plan's (its route)
    assert "across congested s1>s2" in shadow._shortfall(flow(VIDEO, loss=0.05, meter=0.0), [HOT])


def test_without_meter_counters_the_plan_is_judged_by_delivery(shadow):
    assert "red/video delivered 14.25 of 15.00" in shadow._shortfall(flow(VIDEO, loss=0.05), [])
    assert shadow._shortfall(flow(VIDEO, loss=0.005), []) is None
    assert shadow._shortfall(flow(DNS, loss=0.5), []) is None  # nothing guaranteed


def test_a_stalled_run_is_measured_again_and_the_report_says_so(shadow, monkeypatch):
    runs = iter([([flow(VIDEO, gap=0.3, meter=0.04)], [], []),
                 ([flow(VIDEO, gap=0.5, meter=0.02)], [], []),
                 ([flow(VIDEO, meter=0.0)], [], [])])
    calls = []
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p: calls.append(1) or next(runs))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert len(calls) == 3 and report.attempts == 3
    assert report.disturbances == () and report.verdict == "pass"


def test_host_loss_alone_is_reported_not_measured_again(shadow, monkeypatch):
    calls = []
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p: calls.append(1) or
                        ([flow(VIDEO, loss=0.05, meter=0.0)], [], []))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert len(calls) == 1 and report.verdict == "pass"
    assert any("outside its meter" in x for x in report.disturbances)


def test_after_the_last_attempt_the_stalled_run_is_judged_as_measured(shadow, monkeypatch):
    shadow.attempts = 2
    monkeypatch.setattr(shadow, "_run_once",
                        lambda d, s, p: ([flow(VIDEO, loss=0.05, gap=0.4, meter=0.05)], [], []))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.attempts == 2 and report.verdict == "fail"
    assert any("silent 0.400 s" in x for x in report.disturbances)
    assert any("red/video: its meter dropped 5.0%" in x for x in report.reasons)


@pytest.mark.parametrize("bad", [0, 11, 2.5, "3"])
def test_attempts_out_of_range_is_refused_by_name(tmp_path, bad):
    with pytest.raises(ValueError, match="attempts"):
        Shadow(SPEC, prefix="nxu", workdir=tmp_path, attempts=bad)
