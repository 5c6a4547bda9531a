"""What makes a shadow run a measurement of the host rather than of the plan (CPU-bound: its
verdict untrusted), and the repeat of a disturbed run (pure logic: the measurements are given,
no lab is built)."""

from __future__ import annotations

import pytest

from controller.plan import parse_plan
from emulation.hostcpu import CLK_TCK, CpuSample, CpuUse, between
from emulation.loadrun import Measured
from emulation.report import FlowResult, LinkResult
from emulation.shadow import FlowDemand, Shadow
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
VIDEO = FlowDemand("red", "video", "h1", "h2", "udp", 5004, (15.0, 15.0))
DNS = FlowDemand("blue", "dns", "h4", "h5", "udp", 53, (0.0, 5.0))  # silent in its first step
WEB = FlowDemand("red", "web", "h1", "h2", "tcp", 80, (10.0,))


def flow(d: FlowDemand, loss=0.0, gap=0.01, meter=None, sent=1.0) -> FlowResult:
    scheduled = sum(d.rates_mbps) / len(d.rates_mbps)
    offered = scheduled * sent
    return FlowResult(d.tenant, d.app, d.src, d.dst, d.protocol, offered,
                      offered * (1 - (loss or 0.0)), loss, 16.0 if d.app == "video" else None,
                      gap, meter, None if meter is None else offered * (1 - meter), scheduled)


def measured(*flows, cpu=None) -> Measured:
    return Measured(list(flows), [], [], cpu)


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
# more was routed onto it than it carried (an overloaded HTB link delivers well below its rate)
OVERLOADED = LinkResult("s1-s3", "s1>s3", 0.21, 0.3, ("red/video h1>h2",), 1.2)


def test_loss_on_a_congested_path_is_not_the_hosts(shadow):
    assert shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.05, meter=0.0)], [HOT]) == []
    assert shadow._host_loss([VIDEO], [flow(VIDEO, loss=0.8, meter=0.0)], [OVERLOADED]) == []
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
    runs = iter([measured(flow(VIDEO, gap=0.3, meter=0.04)),
                 measured(flow(VIDEO, gap=0.5, meter=0.02)),
                 measured(flow(VIDEO, meter=0.0))])
    calls = []
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): calls.append(1) or next(runs))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert len(calls) == 3 and report.attempts == 3
    assert report.disturbances == () and report.verdict == "pass" and report.trusted


def test_host_loss_alone_is_not_measured_again_but_makes_the_run_untrusted(shadow, monkeypatch):
    calls = []
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): calls.append(1) or
                        measured(flow(VIDEO, loss=0.05, meter=0.0)))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert len(calls) == 1 and report.verdict == "untrusted" and not report.trusted
    assert any("outside its meter" in x for x in report.disturbances)


def test_after_the_last_attempt_a_stalled_run_is_untrusted_with_what_it_measured(shadow, monkeypatch):
    shadow.attempts = 2
    monkeypatch.setattr(shadow, "_run_once",
                        lambda d, s, p, c=(): measured(flow(VIDEO, loss=0.05, gap=0.4, meter=0.05)))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.attempts == 2 and report.verdict == "untrusted"
    assert any("silent 0.400 s" in x for x in report.disturbances)
    assert any("red/video: its meter dropped 5.0%" in x for x in report.reasons)


def test_a_generator_behind_its_schedule_makes_the_run_untrusted(shadow, monkeypatch):
    monkeypatch.setattr(shadow, "_run_once",
                        lambda d, s, p, c=(): measured(flow(VIDEO, sent=0.95, meter=0.0)))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.verdict == "untrusted"
    assert report.disturbances == ("red/video h1>h2: its generator sent 14.25 of 15.00 Mbit/s scheduled",)
    monkeypatch.setattr(shadow, "_run_once",
                        lambda d, s, p, c=(): measured(flow(VIDEO, sent=0.99, meter=0.0)))
    assert shadow.run([VIDEO], duration_s=2, probe=False).verdict == "pass"


def test_a_busy_datapath_thread_is_reported_but_judges_nothing(shadow, monkeypatch):
    busy = CpuUse(2.0, 0.97, 0.96)
    # lost 5 % past its meter on a congested link: the plan's, however busy the thread was
    short = flow(VIDEO, loss=0.05, meter=0.0)
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): Measured([short], [HOT], [], busy))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.verdict == "fail" and report.disturbances == ()
    assert any("red/video: lost 5.0%" in r for r in report.reasons)
    assert report.cpu == {"seconds": 2.0, "busy": 0.97, "ovs_thread_cores": 0.96, "steal": 0.0}


def test_what_a_meter_says_it_dropped_fails_the_plan_however_busy_the_host(shadow, monkeypatch):
    busy = CpuUse(2.0, 0.97, 0.96)
    monkeypatch.setattr(shadow, "_run_once",
                        lambda d, s, p, c=(): measured(flow(VIDEO, loss=0.3, meter=0.3), cpu=busy))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.verdict == "fail" and report.disturbances == ()


def test_a_shortfall_while_the_datapath_dropped_unread_packets_is_untrusted(shadow, monkeypatch):
    short = flow(VIDEO, loss=0.05, meter=0.0)
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): Measured(
        [short], [HOT], [], None, {"ntms1-eth1": 40, "ntms3-eth2": 2}))
    report = shadow.run([VIDEO], duration_s=2, probe=False)
    assert report.verdict == "untrusted" and report.rx_drops == {"ntms1-eth1": 40, "ntms3-eth2": 2}
    assert "dropped 42 packets it never read" in report.disturbances[0]
    assert "ntms1-eth1 40" in report.disturbances[0]
    # a run that met its objectives stands; none dropped: the shortfall is the plan's
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): Measured(
        [flow(VIDEO, meter=0.0)], [], [], None, {"ntms1-eth1": 40}))
    assert shadow.run([VIDEO], duration_s=2, probe=False).verdict == "pass"
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): Measured([short], [HOT], [], None, {}))
    assert shadow.run([VIDEO], duration_s=2, probe=False).verdict == "fail"


def test_a_policy_violation_fails_a_cpu_bound_run_all_the_same(shadow, monkeypatch):
    from emulation.report import PathResult

    opened = PathResult("h1", "h4", "tcp", 80, False, True, 0.2, 0.3, 0.3)
    monkeypatch.setattr(shadow, "_run_once", lambda d, s, p, c=(): Measured(
        [flow(VIDEO, loss=0.05, meter=0.0)], [], [opened], None))
    assert shadow.run([VIDEO], duration_s=2, probe=False).verdict == "fail"


def test_cpu_use_between_two_samples():
    tck = CLK_TCK  # ticks per second
    a = CpuSample(10.0, 1000, 600, ((1, 100), (2, 50)))
    b = CpuSample(12.0, 1400, 700, ((1, 100 + round(2 * tck * 0.9)), (2, 60), (3, 5)))  # 3 is new
    use = between(a, b)
    assert use.busy == 0.75 and use.seconds == 2.0 and use.steal == 0.0
    assert use.ovs_thread_cores == 0.9
    stolen = between(CpuSample(0, 1000, 600, (), 10), CpuSample(1, 1400, 700, (), 50))
    assert stolen.steal == 0.1  # 40 of the 400 ticks went to other machines
    assert between(CpuSample(0, 1, 1, ()), CpuSample(1, 2, 2, ())).ovs_thread_cores is None


@pytest.mark.parametrize("bad", [0, 11, 2.5, "3"])
def test_attempts_out_of_range_is_refused_by_name(tmp_path, bad):
    with pytest.raises(ValueError, match="attempts"):
        Shadow(SPEC, prefix="nxu", workdir=tmp_path, attempts=bad)
