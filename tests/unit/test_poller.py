"""The polling core with synthetic replies: aggregation per tenant/app, links, switches, gaps."""

from __future__ import annotations

import pytest

from controller.cookies import Cookie
from controller.rules import TABLE_ACL
from controller.telemetry.poller import FlowStat, MeterStat, PollCore, PortStat
from controller.tenancy import app_number, compile_network, tenant_number
from topologies import bundled, load_spec, wire


@pytest.fixture
def setup():
    spec = load_spec(bundled("default"))
    compiled = compile_network(spec)
    return spec, compiled, PollCore(spec, compiled.rules, interval_s=1.0)


def flows_with_bytes(compiled, dpid, per_rule: dict[int, int], duration):
    """Flow stats for every rule of a switch; rules whose cookie is in ``per_rule`` carry
    that many bytes (split evenly), others zero."""
    out = []
    rules = compiled.rules[dpid]
    counts = {}
    for r in rules:
        counts[r.cookie] = counts.get(r.cookie, 0) + 1
    for r in rules:
        b = per_rule.get(r.cookie, 0) // counts[r.cookie] if r.table == TABLE_ACL else 0
        out.append(FlowStat(r.table, r.priority, r.match, r.cookie, b, b // 100, duration))
    return out


def red_web(spec):
    return Cookie(tenant_number(spec, "red"), app_number(spec, "red", "web"), 1).encode()


def run_cycle(poll, compiled, t, byte_map, duration, skip=()):
    """One poll cycle at ``t``: requests, replies; returns the samples of this cycle (closed by
    beginning the next one, as the controller does)."""
    poll.begin_cycle(t, sorted(compiled.rules))
    for dpid in sorted(compiled.rules):
        if dpid in skip:
            continue
        poll.on_flow_stats(dpid, flows_with_bytes(compiled, dpid, byte_map.get(dpid, {}), duration),
                           t + 0.01)
    samples = poll._close_cycle(t + 0.5)
    return samples


def value(samples, name):
    found = [s for s in samples if s.series == name]
    assert len(found) == 1, (name, found)
    return found[0].value


def test_app_rate_summed_over_ingress_switches(setup):
    spec, compiled, poll = setup
    c = red_web(spec)
    run_cycle(poll, compiled, 100.0, {}, 50.0)  # baseline
    run_cycle(poll, compiled, 101.0, {1: {c: 125_000}}, 51.0)  # h1 is on s1
    out = run_cycle(poll, compiled, 102.0, {1: {c: 250_000}}, 52.0)
    assert value(out, "app/red/web/fwd/bps") == pytest.approx(1e6, rel=1e-3)
    assert value(out, "app/red/web/rev/bps") == 0.0
    assert value(out, "app/blue/web/fwd/bps") == 0.0


def test_a_late_reply_defers_the_sample_and_the_next_covers_both_intervals(setup):
    spec, compiled, poll = setup
    c = red_web(spec)
    run_cycle(poll, compiled, 100.0, {}, 50.0)
    run_cycle(poll, compiled, 101.0, {1: {c: 125_000}}, 51.0)
    out = run_cycle(poll, compiled, 102.0, {1: {c: 250_000}}, 52.0, skip=(1,))
    assert [x for x in out if x.series == "app/red/web/fwd/bps"] == []  # late, not lost
    assert poll.stats.missed_replies[(1, "flow")] == 1 and poll.stats.late >= 1
    assert value(out, "app/green/backup/fwd/bps") == 0.0  # green lives elsewhere
    out = run_cycle(poll, compiled, 103.0, {1: {c: 375_000}}, 53.0)
    assert value(out, "app/red/web/fwd/bps") == pytest.approx(1e6, rel=1e-3)  # 250 kB over 2 s


def test_a_switch_silent_for_several_intervals_makes_the_app_sample_a_gap(setup):
    spec, compiled, poll = setup
    c = red_web(spec)
    run_cycle(poll, compiled, 100.0, {}, 50.0)
    run_cycle(poll, compiled, 101.0, {1: {c: 125_000}}, 51.0)
    notes = []
    for t in (102.0, 103.0, 104.0):
        out = run_cycle(poll, compiled, t, {}, t - 50, skip=(1,))
        notes += [(x.value, x.note) for x in out if x.series == "app/red/web/fwd/bps"]
    assert notes and all(v is None and "no reply from ['s1']" in n for v, n in notes)
    # blue's web rules are on s1 too (h4) - also a gap; green lives elsewhere and is fine
    assert value(out, "app/blue/web/fwd/bps") is None
    assert value(out, "app/green/backup/fwd/bps") == 0.0


def test_reprogrammed_switch_gives_no_negative_rate(setup):
    spec, compiled, poll = setup
    c = red_web(spec)
    run_cycle(poll, compiled, 100.0, {1: {c: 10_000_000}}, 500.0)
    run_cycle(poll, compiled, 101.0, {1: {c: 10_125_000}}, 501.0)
    # the switch disconnected (a cycle without it), reconnected and was re-programmed:
    # counters restart, durations restart
    poll.switch_gone(1)
    out = run_cycle(poll, compiled, 101.5, {}, 0.0, skip=(1,))
    out += run_cycle(poll, compiled, 102.0, {1: {c: 60_000}}, 0.5)
    out += run_cycle(poll, compiled, 103.0, {1: {c: 185_000}}, 1.5)
    vals = [s.value for s in out if s.series == "app/red/web/fwd/bps"]
    assert vals[0] is None and vals[-1] == pytest.approx(1e6, rel=1e-3)
    assert all(v is None or v >= 0 for s in out for v in [s.value])


def test_links_utilisation_and_switch_totals(setup):
    spec, compiled, poll = setup
    w = wire(spec)
    (sa, pa), (sb, pb) = w.link_ports[0]  # s1-s2, 100 Mbit/s
    dpa = spec.switch(sa).dpid

    def ports(tx):
        return [PortStat(pa, 0, tx, 0, tx // 1000, 10.0), PortStat(0xFFFFFFFE, 0, 10**9, 0, 0, 10.0)]

    poll.begin_cycle(100.0, [dpa])
    poll.on_port_stats(dpa, ports(0), 100.0)
    poll.begin_cycle(101.0, [dpa])
    poll.on_port_stats(dpa, ports(6_250_000), 101.0)  # 50 Mbit/s
    out, _ = poll.begin_cycle(102.0, [dpa])
    assert value(out, "link/s1-s2/s1>s2/bps") == pytest.approx(50e6)
    assert value(out, "link/s1-s2/s1>s2/util") == pytest.approx(0.5)
    assert value(out, "switch/s1/tx_bps") == pytest.approx(50e6)  # LOCAL port not counted
    # switches that are not connected get gap samples for what they measure
    assert value(out, "link/s1-s2/s2>s1/bps") is None


def test_meter_rates(setup):
    spec, compiled, poll = setup
    poll.begin_cycle(100.0, [1])
    poll.on_meter_stats(1, [MeterStat(7, 0, 0, 0, 0, 5.0)], 100.0)
    poll.on_meter_stats(1, [MeterStat(7, 1_250_000, 1000, 250_000, 200, 6.0)], 101.0)
    out, _ = poll.begin_cycle(101.5, [1])
    assert value(out, "meter/s1/7/in_bps") == pytest.approx(10e6)
    assert value(out, "meter/s1/7/drop_bps") == pytest.approx(2e6)


def test_foreign_switch_is_ignored(setup):
    _, _, poll = setup
    poll.on_flow_stats(0xDEAD, [], 1.0)
    assert poll.samples == []


def test_new_rules_from_a_plan_join_the_aggregation(setup):
    from controller.plan import parse_plan

    spec, compiled, poll = setup
    assert poll.contributors["app/red/web/rev"] == {spec.switch("s4").dpid, spec.switch("s2").dpid}
    plan = parse_plan({"extra_policies": [{"tenant": "red", "from": ["h3"], "to": ["h1"],
                                           "apps": ["web"]}]}, spec)
    poll.set_rules(compile_network(spec, plan).rules)
    # h3 (on s2) now also opens web connections to h1 (on s1): s1 answers, s2 asks
    assert spec.switch("s1").dpid in poll.contributors["app/red/web/rev"]
    assert spec.switch("s2").dpid in poll.contributors["app/red/web/fwd"]
