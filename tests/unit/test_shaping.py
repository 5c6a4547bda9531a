"""The meter capability probe and the tc HTB fallback (pure parts): a switch without meters gets
its admission rules without the meter and an HTB class per meter on the port the application's
packets leave by; tc commands and read-back parsing."""

from __future__ import annotations

import pytest

from controller.core import AddFlow, AddMeter, ClearMeters, ControllerCore
from controller.plan import parse_plan
from controller.shaping import ShapeMatch, meter_support
from controller.tc import filter_commands, parse_classes
from tests.fakeof import FakeOFNetwork, ip_packet
from topologies import bundled, load_spec, wire


def video_plan(spec, rate):
    return parse_plan({"name": f"v{rate}", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": rate}]}, spec)


def test_meter_features_decide_support():
    assert meter_support(max_meter=65536, band_types=0b10)
    assert not meter_support(max_meter=0, band_types=0b10)
    assert not meter_support(max_meter=100, band_types=0b100)  # DSCP remark only, no drop band


def test_switch_without_meters_gets_htb_classes_instead():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0, plan=video_plan(spec, 20))
    s1 = spec.switch("s1").dpid
    core.switch_connected(s1, 1.0)
    msgs = core.meter_features(s1, False, 1.0)
    assert not [m for m in msgs if isinstance(m, (AddMeter, ClearMeters))]
    assert not [m for m in msgs if isinstance(m, AddFlow) and m.rule.meter is not None]
    assert core.health(1.0)["switches"]["s1"]["enforcement"].startswith("tc-htb")
    (shape,) = core.compiled.shapes
    assert shape.dpid == s1 and shape.rate_kbps == 20_000
    # the port red's video packets from h1 leave s1 by: towards the next switch of h1 -> h2's path
    path = core.compiled.paths[("h1", "h2")]
    assert shape.port == wire(spec).neighbour_port("s1", path[1])
    h1, h2 = spec.host("h1"), spec.host("h2")
    assert ShapeMatch(h1.ip, h2.ip, 17, 5004) in shape.matches
    # forwarding is unchanged: the packets still arrive
    net = FakeOFNetwork(spec, core.compiled.rules)
    assert net.send("h1", ip_packet(spec, "h1", "h2", "udp", dport=5004)).delivered_to == "h2"


def test_switch_with_meters_keeps_them_and_plan_diff_names_tc_changes():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0, plan=video_plan(spec, 20), no_meters=frozenset({"s1"}))
    assert core.compiled.shapes and not core.compiled.meters.get(spec.switch("s1").dpid)
    core.switch_connected(1, 1.0)
    core.meter_features(1, True, 1.0)  # the switch has meters, but the operator said not to use them
    assert core.health(1.0)["switches"]["s1"]["enforcement"] == "tc-htb: named in no_meters"
    new, msgs, summary = core.prepare_plan(video_plan(spec, 30))
    assert [c["rate_kbps"] for c in summary["tc_classes_modified"]] == [30_000]
    assert not summary["meters_modified"] and not summary["meters_added"]
    assert msgs == []  # nothing changes in the OpenFlow tables of a meterless switch


def test_unknown_no_meters_switch_is_rejected():
    with pytest.raises(ValueError, match="no_meters: 'sX'"):
        ControllerCore(load_spec(bundled("default")), 0.0, no_meters=frozenset({"sX"}))


def test_tc_read_back_parsing_and_filters():
    text = ("class htb 5:101 root prio 0 rate 20Mbit ceil 20Mbit burst 32000b cburst 1600b \n"
            "class htb 5:1 root prio 0 rate 100Mbit ceil 100Mbit burst 15337b cburst 1600b \n"
            "class htb 1:203 root prio 0 rate 1500Kbit ceil 1500Kbit burst 1600b cburst 1600b \n"
            "class htb 1:204 root prio 0 rate 750bit ceil 750bit burst 1600b cburst 1600b \n")
    assert parse_classes(text) == {0x101: 20_000, 0x1: 100_000, 0x203: 1500, 0x204: 1}
    from controller.shaping import ShapeRule

    rule = ShapeRule(1, 3, 0x103, 20_000, 2000, (ShapeMatch("10.0.0.1", "10.0.0.2", 17, 5004),))
    (cmd,) = filter_commands("s1-eth3", 5, [rule])
    assert cmd[cmd.index("flowid") + 1] == "5:103"
    assert " ".join(cmd).count("match ip") == 4 and "5004" in cmd


def test_a_barrier_reply_that_beats_its_waiter_still_confirms():
    """The reply to a barrier can arrive on the OpenFlow thread before the sender has registered
    its wait; the apply must still be confirmed, not time out."""
    from controller.core import Barrier, ReadMeters
    from controller.enforcer import PlanEnforcer

    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0)
    for s in spec.switches:
        core.switch_connected(s.dpid, 0.0)
        core.meter_features(s.dpid, True, 0.0)
        core.barrier_replied(s.dpid, 0.0)
    xids = iter(range(1, 10_000))
    enf = None

    def send(dpid, m):
        xid = next(xids)
        if isinstance(m, Barrier):
            enf.barrier(xid)  # answered before send() returns
        elif isinstance(m, ReadMeters):
            enf.meters_read(dpid, {m_.meter_id: m_.rate_kbps for m_ in core_new.meters.get(dpid, ())})
        return xid

    enf = PlanEnforcer(core, send, timeout_s=0.5)
    plan = video_plan(spec, 20)
    core_new = core.compile(plan)
    res = enf.apply(plan, "test")
    assert res["outcome"] == "applied", res
