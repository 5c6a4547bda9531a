"""Shadow fidelity as pure logic: two reports of the same plan and load compared figure by
figure; an untrusted (CPU-bound) side is not scored; the port counters and the production
lab's hosts found by prefix."""

from __future__ import annotations

import dataclasses

import pytest

from emulation.fidelity import compare
from emulation.ports import PortCounters, parse_dump_ports
from emulation.production import AttachedLab, ProductionError
from emulation.report import FlowResult, LinkResult, ShadowReport
from topologies import bundled, load_spec


def flow(app="video", delivered=20.0, loss=0.001, rtt=1.5, proto="udp", p50=1.0) -> FlowResult:
    return FlowResult("red", app, "h1", "h2", proto, 20.0, delivered, loss, 25.0, 0.01, 0.0,
                      20.0, 20.0, p50, rtt)


def report(flows, util=0.4, verdict="pass", disturbances=()) -> ShadowReport:
    links = (LinkResult("s1-s2", "s1>s2", util, util, ("red/video h1>h2",), util),
             LinkResult("s1-s3", "s1>s3", 0.0001, 0.0, (), 0.0))  # no flow: not compared
    return ShadowReport("p", 25.0, 8.0, tuple(flows), links, (), (), (), verdict, (), 1,
                        tuple(disturbances))


def test_identical_runs_score_zero_and_are_faithful():
    f = compare(report([flow()]), report([flow()]))
    assert f.scored and f.score == 0.0 and f.faithful and f.verdicts_agree
    assert [lk.direction for lk in f.links] == ["s1>s2"]


def test_each_figure_is_measured_against_its_own_tolerance():
    # 4 % off in rate (tolerance 5 %), 0.8 pp in loss (1 pp), RTT 1.9 against 1.5 ms (0.5 ms)
    f = compare(report([flow(delivered=19.2, loss=0.009, rtt=1.9)], util=0.41), report([flow()], util=0.4))
    (a,) = f.apps
    assert a.delivered_error == pytest.approx(0.04) and a.loss_error_pp == pytest.approx(0.8)
    assert a.rtt_error_ms == pytest.approx(0.4)
    assert a.worst == pytest.approx(0.8) and f.links[0].error == pytest.approx(0.025)
    assert f.score == pytest.approx(0.8) and f.faithful


def test_one_figure_out_of_tolerance_makes_the_run_unfaithful():
    f = compare(report([flow(rtt=3.0)]), report([flow(rtt=2.0)]))  # 1 ms, more than 10 % and 0.5 ms
    assert f.score == pytest.approx(2.0) and f.faithful is False
    big = compare(report([flow(rtt=30.0)]), report([flow(rtt=28.0)]))  # 2 ms off is within 10 %
    assert big.apps[0].worst == pytest.approx(2.0 / 2.8, abs=1e-3)


def test_the_p50_shift_tells_a_constant_of_the_path_from_queueing():
    # the whole distribution moved (p50 and p95 by 1 ms): the path's latency differs
    moved = compare(report([flow(rtt=3.0, p50=2.0)]), report([flow(rtt=2.0, p50=1.0)]))
    # only the tail moved: queueing the shadow did not reproduce
    tail = compare(report([flow(rtt=3.0, p50=1.0)]), report([flow(rtt=2.0, p50=1.0)]))
    assert moved.apps[0].rtt_error_ms == tail.apps[0].rtt_error_ms == pytest.approx(1.0)
    assert moved.apps[0].rtt_p50_shift_ms == pytest.approx(1.0)
    assert tail.apps[0].rtt_p50_shift_ms == pytest.approx(0.0)
    assert moved.score == tail.score  # reported beside the error; the score is not changed
    no_rtt = compare(report([flow(proto="tcp", p50=None)]), report([flow(proto="tcp")]))
    assert no_rtt.apps[0].rtt_p50_shift_ms is None


def test_a_verdict_production_contradicts_is_unfaithful_whatever_the_figures():
    f = compare(report([flow()], verdict="pass"), report([flow()], verdict="fail"))
    assert f.score == 0.0 and not f.verdicts_agree and f.faithful is False


def test_a_cpu_bound_side_is_flagged_and_not_scored():
    f = compare(report([flow()]), report([flow(delivered=5.0)], verdict="untrusted",
                                         disturbances=("red/video: its generator sent 5 of 20",)))
    assert not f.scored and f.score is None and f.faithful is None
    assert f.untrusted == ("production: red/video: its generator sent 5 of 20",)
    assert f.to_dict()["faithful"] is None


def test_tcp_flows_have_no_loss_figure_and_an_app_on_one_side_only_is_named():
    f = compare(report([flow("web", loss=None, proto="tcp"), flow()]),
                report([flow("web", loss=None, proto="tcp")]))
    assert f.apps[0].loss_error_pp is None
    assert f.missing == ("red/video: not measured in production",) and f.faithful is False


def test_dump_ports_parses_rx_and_tx_bytes_and_leaves_local_out():
    text = """OFPST_PORT reply (OF1.3) (xid=0x2): 3 ports
  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=0, bytes=0, drop=0, errs=0, coll=0
  port  1: rx pkts=10, bytes=15140, drop=0, errs=0, frame=0, over=0, crc=0
           tx pkts=3, bytes=180, drop=0, errs=0, coll=0
           duration=12.5s
  port  2: rx pkts=?, bytes=?, drop=?, errs=?, frame=?, over=?, crc=?
           tx pkts=7, bytes=700, drop=0, errs=0, coll=0
"""
    assert parse_dump_ports(text) == {1: PortCounters(15140, 180), 2: PortCounters(0, 700)}


def test_production_hosts_are_found_by_their_shells_name(tmp_path):
    spec = load_spec(bundled("default"))
    for pid, h in enumerate((h.name for h in spec.hosts), start=100):
        (tmp_path / str(pid)).mkdir()
        argv = ["bash", "--norc", "-is", f"mininet:nsl{h}"]
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (tmp_path / "self").mkdir()
    lab = AttachedLab(spec, "nsl", proc=tmp_path)
    assert lab.host("h1").pid == 100 and lab.host("h8").pid == 107
    assert lab.host("h2")._argv(["true"]) == ["mnexec", "-da", "101", "true"]
    with pytest.raises(ProductionError, match=r"^--production-prefix: no running lab host nxxh1"):
        AttachedLab(spec, "nxx", proc=tmp_path)


def test_a_report_is_trusted_only_without_disturbances():
    r = report([flow()])
    assert r.trusted and not dataclasses.replace(r, disturbances=("x",)).trusted
