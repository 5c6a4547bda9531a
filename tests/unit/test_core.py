"""Switch lifecycle in the pure core, replayed on the fake OpenFlow network."""

from __future__ import annotations

from controller.core import (
    AddFlow,
    AddMeter,
    Barrier,
    ClearFlows,
    ClearMeters,
    ControllerCore,
    ProbeMeters,
)
from tests.fakeof import FakeOFNetwork, ip_packet
from topologies import bundled, load_spec


def apply(net: FakeOFNetwork, msgs) -> None:
    for m in msgs:
        if isinstance(m, ClearFlows):
            net.clear(m.dpid)
        elif isinstance(m, AddFlow):
            net.add(m.rule)


def connect(core: ControllerCore, dpid: int, now: float, meters: bool = True) -> list:
    """A switch connects and answers the meter features probe."""
    probe = core.switch_connected(dpid, now)
    if not probe:
        return []
    assert probe == [ProbeMeters(dpid)]
    return core.meter_features(dpid, meters, now)


def test_connect_programs_switch_then_barrier_makes_it_ready():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=100.0)
    assert core.health(100.0)["status"] == "starting"
    assert core.switch_connected(1, now=101.0) == [ProbeMeters(1)]
    assert core.health(101.0)["switches"]["s1"]["state"] == "probing"
    msgs = core.meter_features(1, True, now=101.0)
    assert isinstance(msgs[0], ClearFlows) and isinstance(msgs[1], ClearMeters)
    assert isinstance(msgs[-1], Barrier)
    assert all(isinstance(m, AddFlow) and m.rule.dpid == 1 for m in msgs[2:-1])
    h = core.health(101.0)["switches"]["s1"]
    assert h["state"] == "installing" and h["enforcement"] == "meters"
    assert core.barrier_replied(1, now=101.25)  # this reply completed the programming
    assert not core.barrier_replied(1, now=102.0)  # a plan's later barrier does not
    h = core.health(101.3)
    assert h["switches"]["s1"]["state"] == "ready"
    assert h["switches"]["s1"]["install_s"] == 0.25
    assert h["status"] == "starting" and h["all_ready_after_s"] is None


def test_all_switches_ready_and_traffic_flows_on_fake_network():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0)
    net = FakeOFNetwork(spec)
    assert net.send("h1", ip_packet(spec, "h1", "h2", "icmp")).delivered_to is None
    for i, s in enumerate(spec.switches):
        apply(net, connect(core, s.dpid, now=1.0 + i))
        core.barrier_replied(s.dpid, now=1.5 + i)
    h = core.health(10.0)
    assert h["status"] == "ok"
    assert h["all_ready_after_s"] == 1.5 + len(spec.switches) - 1
    assert net.send("h1", ip_packet(spec, "h1", "h2", "icmp")).delivered_to == "h2"


def test_reconnect_clears_stale_state_first():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0)
    net = FakeOFNetwork(spec)
    from controller.rules import FlowRule

    stale = FlowRule.make(1, 0, 5000, {}, [("output", 1)], 0)  # would forward everything
    net.add(stale)
    apply(net, connect(core, 1, 1.0))
    assert stale.key not in net.tables[1]
    core.barrier_replied(1, 1.1)
    core.switch_disconnected(1, 2.0)
    assert core.health(2.0)["switches"]["s1"]["state"] == "disconnected"
    apply(net, connect(core, 1, 3.0))
    assert core.health(3.0)["switches"]["s1"]["programmed"] == 2


def test_unknown_switch_gets_nothing_and_is_reported():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    assert connect(core, 0xABC, 1.0) == []
    assert core.health(1.0)["unknown_dpids"] == [0xABC]


def test_switch_errors_degrade_health():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0)
    for s in spec.switches:
        connect(core, s.dpid, 1.0)
        core.barrier_replied(s.dpid, 1.1)
    core.switch_error(2, "OpenFlow error type=4 code=9", 2.0)
    h = core.health(2.0)
    assert h["status"] == "degraded"
    assert h["switches"]["s2"]["errors"] == ["OpenFlow error type=4 code=9"]


def test_late_barrier_for_disconnected_switch_is_ignored():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    connect(core, 1, 1.0)
    core.switch_disconnected(1, 1.5)
    core.barrier_replied(1, 2.0)
    assert core.health(2.0)["switches"]["s1"]["state"] == "disconnected"


def test_plan_meters_are_installed_before_the_flows_that_use_them():
    from controller.plan import parse_plan

    spec = load_spec(bundled("default"))
    plan = parse_plan({"name": "p", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 20, "dscp": 46}]}, spec)
    core = ControllerCore(spec, now=0.0, plan=plan)
    msgs = connect(core, 1, 1.0)  # h1, red's video client, is on s1
    meters = [m for m in msgs if isinstance(m, AddMeter)]
    assert len(meters) == 1 and meters[0].meter.rate_kbps == 20_000
    first_metered = next(i for i, m in enumerate(msgs) if isinstance(m, AddFlow) and m.rule.meter)
    assert msgs.index(meters[0]) < first_metered
    metered = [m.rule for m in msgs if isinstance(m, AddFlow) and m.rule.meter]
    assert {dict(r.match)["udp_dst"] for r in metered} == {5004}
    assert all(("set_dscp", 46) in r.actions for r in metered)
    assert not [m for m in connect(core, 4, 1.0) if isinstance(m, AddMeter)]


def test_a_plan_of_the_same_structure_compiles_to_what_a_full_compile_gives():
    """The core reuses the last compile's rules when only rates change; every other change (an
    application more, a DSCP mark, a path, a policy addition, a switch without meters) must
    compile in full, and the result must equal compile_network's either way."""
    from controller.core import ModifyMeter, diff_networks
    from controller.plan import parse_plan
    from controller.shaping import realize
    from controller.tenancy import compile_network

    spec = load_spec(bundled("default"))

    def plan(**video):
        return parse_plan({"name": "p", "allocations": [
            {"tenant": "red", "app": "web", "rate_mbps": 3},
            {"tenant": "red", "app": "video", **{"rate_mbps": 20, **video}}]}, spec)

    alt = ["s1", "s3", "s4"]  # h1 on s1, h2 on s4
    extra = parse_plan({"name": "x", "allocations": [{"tenant": "red", "app": "video", "rate_mbps": 7}],
                        "extra_policies": [{"tenant": "red", "from": ["h2"], "to": ["h1"],
                                            "apps": ["web"]}]}, spec)
    plans = [None, plan(), plan(rate_mbps=25), plan(rate_mbps=25, burst_kbit=900),
             plan(rate_mbps=9, dscp=46), plan(rate_mbps=9, dscp=46, path=alt), plan(rate_mbps=4, path=alt),
             plan(), extra, parse_plan({"name": "y", "allocations": [
                 {"tenant": "red", "app": "video", "rate_mbps": 8}]}, spec), None]
    core = ControllerCore(spec, now=0.0)
    for meterless in (set(), {spec.switch("s1").dpid}):
        core.meterless = set(meterless)
        for p in plans:
            got = core.compile(p)
            full = compile_network(spec, p)
            rules, meters, shapes = realize(full.rules, full.meters, frozenset(meterless))
            assert (got.rules, got.meters, got.shapes, got.paths) == (rules, meters, shapes, full.paths)
    # a rate-only change sends one meter modification and nothing else
    core.meterless = set()
    before, after = core.compile(plan()), core.compile(plan(rate_mbps=30))
    phases, summary = diff_networks(before, after)
    sent = [m for ph in phases for msgs in ph.values() for m in msgs if not isinstance(m, Barrier)]
    assert [type(m) for m in sent] == [ModifyMeter] and sent[0].meter.rate_kbps == 30_000
    assert summary["flows_added"] == summary["flows_modified"] == summary["flows_deleted"] == 0
