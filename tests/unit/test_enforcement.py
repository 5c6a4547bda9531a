"""Plan enforcement's pure core on the fake switches: apply, partial failure, rollback, the
deadline, meter read-back and the regression watch - no lab, no threads, no clock."""

from __future__ import annotations

import pytest

from controller.core import AddMeter, Barrier, ModifyMeter, ReadMeters
from controller.enforcement import (
    Done,
    Outcome,
    RegressionWatch,
    Result,
    Send,
    Shape,
    Transaction,
    rollback,
)
from controller.plan import parse_plan
from controller.tenancy import compile_network
from tests.fakeof import FakeSwitches, installed
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
DPIDS = frozenset(s.dpid for s in SPEC.switches)
BASE = compile_network(SPEC)


def plan(rate_mbps: float = 20, **extra):
    return parse_plan({"name": f"p{rate_mbps}", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": rate_mbps, **extra}]}, SPEC)


def drive(tx: Transaction, sw: FakeSwitches, shape_error=None, now: float = 0.0,
          tick_s: float = 1.0, max_steps: int = 10_000) -> Result:
    """Perform the transaction's steps on ``sw`` and feed back the switches' answers, in order;
    when nothing is left to answer, time moves on by ``tick_s``."""
    pending = list(tx.start(now))
    for _ in range(max_steps):
        while pending:
            step = pending.pop(0)
            if isinstance(step, Done):
                assert tx.done and tx.result == step.result
                return step.result
            if isinstance(step, Shape):
                pending += tx.shaped(shape_error(step.compiled) if shape_error else None, now)
                continue
            assert isinstance(step, Send)
            if not tx.current(step):
                continue  # a phase the transaction turned away from
            xid = sw.send(step.dpid, step.message)
            if isinstance(step.message, Barrier):
                pending += tx.barrier_sent(step, xid, now)
            elif xid is None:
                pending += tx.not_connected(step, now)
        if sw.replies:
            kind, *args = sw.replies.pop(0)
            if kind == "barrier":
                pending += tx.barrier_replied(args[0], now)
            elif kind == "error":
                pending += tx.error(args[0], args[1], now)
            else:
                pending += tx.meters_read(args[0], args[1], now)
        else:
            now += tick_s
            pending += tx.tick(now)
    raise AssertionError(f"transaction never finished; waiting for {tx.waiting_for()}")


def test_apply_installs_the_plan_and_its_meters_then_reads_them_back():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    result = drive(Transaction(BASE, new, DPIDS), sw)
    assert result == Result(Outcome.APPLIED) and result.in_force and result.text() == "applied"
    assert sw.state() == installed(new)
    # the meter went in before any flow used it, and every switch was asked for its meters
    kinds = [type(m).__name__ for _, m in sw.sent]
    first_flow = min(i for i, k in enumerate(kinds) if k in ("AddFlow", "ModifyFlow"))
    assert kinds.index("AddMeter") < first_flow
    assert {d for d, m in sw.sent if isinstance(m, ReadMeters)} == DPIDS


def test_a_changed_rate_is_modified_in_place():
    old, new = compile_network(SPEC, plan(20)), compile_network(SPEC, plan(30))
    sw = FakeSwitches(old)
    assert drive(Transaction(old, new, DPIDS), sw).outcome is Outcome.APPLIED
    assert any(isinstance(m, ModifyMeter) for _, m in sw.sent)
    assert not any(isinstance(m, AddMeter) for _, m in sw.sent)
    assert sw.state() == installed(new)


def test_an_error_part_way_rolls_everything_back():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    seen = []

    def reject(dpid, m):  # the first flow change is refused, after the meter went in
        if type(m).__name__ in ("AddFlow", "ModifyFlow") and not seen:
            seen.append(dpid)
            return "OpenFlow error type=5 code=0"
        return None

    sw.reject = reject
    result = drive(Transaction(BASE, new, DPIDS), sw)
    assert result.outcome is Outcome.ROLLED_BACK and not result.in_force
    assert result.reason.startswith(f"switch {seen[0]:#x}: OpenFlow error type=5")
    assert result.text().startswith("rolled back: switch")
    assert any(isinstance(m, AddMeter) for _, m in sw.sent)  # it was part-way in
    assert sw.state() == installed(BASE)  # nothing of the plan is left anywhere


def test_a_disconnected_switch_fails_the_apply_and_the_rollback_says_so():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    sw.gone = {1}  # the meter's switch
    result = drive(Transaction(BASE, new, DPIDS), sw)
    assert result.outcome is Outcome.ROLLBACK_FAILED
    assert result.reason == ("switch 0x1 is not connected; rollback also failed: "
                             "switch 0x1 is not connected")


def test_a_switch_that_never_confirms_times_out_and_the_rest_is_rolled_back():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    sw.silent = {1}
    result = drive(Transaction(BASE, new, DPIDS, timeout_s=3.0), sw)
    assert result.outcome is Outcome.ROLLBACK_FAILED  # the silent switch cannot confirm the undo either
    assert "switch 0x1 did not confirm within 3.0 s" in result.reason
    # the switches that answered hold the previous plan again
    flows, meters = sw.state()
    want_flows, _ = installed(BASE)
    assert {d: f for d, f in flows.items() if d != 1} == {d: f for d, f in want_flows.items() if d != 1}


def test_meters_read_back_wrong_roll_the_plan_back():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    sw.meter_lies = {1: {}}  # the switch reports no meter although it accepted it
    result = drive(Transaction(BASE, new, DPIDS), sw)
    # the forward read-back fails; the rollback's read-back expects no meter on s1, which holds
    assert result.outcome is Outcome.ROLLED_BACK
    assert result.reason.startswith("switch 0x1: meters read back {}, expected {")
    assert sw.state() == installed(BASE)


def test_tc_shaping_failure_rolls_back():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    calls = []

    def shape(compiled):
        calls.append(compiled)
        return "tc: RTNETLINK answers: Operation not permitted" if compiled is new else None

    result = drive(Transaction(BASE, new, DPIDS), sw, shape_error=shape)
    assert result == Result(Outcome.ROLLED_BACK, "tc: RTNETLINK answers: Operation not permitted")
    assert calls == [new, BASE] and sw.state() == installed(BASE)


def test_a_meterless_switch_is_not_asked_for_meters():
    new = compile_network(SPEC, plan(20))
    sw = FakeSwitches(BASE)
    result = drive(Transaction(BASE, new, DPIDS, meterless=frozenset({2, 3})), sw)
    assert result.outcome is Outcome.APPLIED
    assert {d for d, m in sw.sent if isinstance(m, ReadMeters)} == DPIDS - {2, 3}


def test_nothing_to_change_still_confirms_the_meters():
    sw = FakeSwitches(BASE)
    assert drive(Transaction(BASE, BASE, DPIDS), sw).outcome is Outcome.APPLIED
    assert all(isinstance(m, ReadMeters) for _, m in sw.sent)


def test_events_that_are_not_the_transactions_change_nothing():
    new = compile_network(SPEC, plan(20))
    tx = Transaction(BASE, new, DPIDS)
    steps = tx.start(0.0)
    assert steps and all(isinstance(s, Send) for s in steps)
    assert tx.barrier_replied(999_999, 0.0) == []  # someone else's barrier
    assert tx.error(0xDEAD, "not one of ours", 0.0) == []
    assert tx.meters_read(1, {}, 0.0) == []  # not reading meters yet
    assert tx.tick(1.0) == [] and not tx.done


def test_the_regression_watch_rolls_back_to_the_previous_plan():
    old, new = compile_network(SPEC, plan(20)), compile_network(SPEC, plan(5))
    sw = FakeSwitches(new)
    watch = RegressionWatch("p5", (("red", "video"), ("blue", "dns")), t_apply=100.0, watch_s=4.0)
    assert watch.before == (96.0, 100.0) and watch.after == (101.0, 105.0)
    assert not watch.due(106.9) and watch.due(107.0)
    worse = watch.regressions({("red", "video"): (18e6, 5e6), ("blue", "dns"): (1e6, 0.99e6)})
    assert worse == ["red/video delivered 5.00 Mbit/s after the apply, 18.00 before"]
    result = drive(rollback(new, old, DPIDS, frozenset(), "regression: " + worse[0]), sw)
    assert result.outcome is Outcome.ROLLED_BACK and result.reason.startswith("regression: red/video")
    assert sw.state() == installed(old)


@pytest.mark.parametrize("before, after", [(None, 1e6), (0.0, 0.0), (1e6, None), (1e6, 0.96e6)])
def test_the_watch_judges_only_a_measured_drop_beyond_its_tolerance(before, after):
    watch = RegressionWatch("p", (("red", "video"),), t_apply=0.0, watch_s=1.0)
    assert watch.regressions({("red", "video"): (before, after)}) == []


def test_after_an_error_the_rest_of_the_phase_is_not_sent():
    new = compile_network(SPEC, plan(20))
    tx = Transaction(BASE, new, DPIDS)
    first = tx.start(0.0)
    back = tx.error(1, "OpenFlow error type=6 code=1", 0.0)  # before the phase went out
    assert not any(tx.current(s) for s in first)
    assert back and all(tx.current(s) for s in back if isinstance(s, Send))
