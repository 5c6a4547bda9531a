"""Plans: validated against the spec, every bad field named; policy additions merge into tenants."""

from __future__ import annotations

import json

import pytest

from controller.plan import PlanError, load_plan, parse_plan
from controller.tenancy import compile_network
from tests.fakeof import FakeOFNetwork, ip_packet
from topologies import bundled, load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec(bundled("default"))


def test_valid_plan(spec):
    p = parse_plan({"name": "p1", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 20, "burst_kbit": 500, "dscp": 46},
        {"tenant": "blue", "app": "dns", "rate_mbps": 2.5}],
        "cpu_quotas": {"h1": 0.5}, "valid_from": 10, "valid_until": 20}, spec)
    assert p.cost_mbps() == 22.5
    assert p.allocation("red", "video").burst == 500
    assert p.allocation("blue", "dns").burst == 250  # default: 0.1 s at the rate
    assert parse_plan(p.to_dict(), spec) == p


@pytest.mark.parametrize("data,field", [
    ([], "plan"),
    ({"colour": 1}, "colour"),
    ({"allocations": [{"tenant": "nobody", "app": "web", "rate_mbps": 1}]}, "allocations[0].tenant"),
    ({"allocations": [{"tenant": "red", "app": "dns", "rate_mbps": 1}]}, "allocations[0].app"),
    ({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 0}]}, "allocations[0].rate_mbps"),
    ({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 500}]}, "allocations[0].rate_mbps"),
    ({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 1, "dscp": 99}]}, "allocations[0].dscp"),
    ({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 1},
                      {"tenant": "red", "app": "web", "rate_mbps": 2}]}, "allocations[1].app"),
    ({"extra_policies": [{"tenant": "red", "from": ["h4"], "to": ["h1"], "apps": ["web"]}]},
     "extra_policies[0].from"),
    ({"cpu_quotas": {"h99": 0.5}}, "cpu_quotas.h99"),
    ({"valid_from": 20, "valid_until": 10}, "valid_until"),
])
def test_bad_plans_name_the_field(spec, data, field):
    with pytest.raises(PlanError) as e:
        parse_plan(data, spec)
    assert e.value.field == field and str(e.value).startswith(f"{field}:")


def test_load_plan_errors(tmp_path, spec):
    with pytest.raises(PlanError, match="cannot be read"):
        load_plan(str(tmp_path / "none.json"), spec)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PlanError, match="not valid JSON"):
        load_plan(str(tmp_path / "bad.json"), spec)
    (tmp_path / "ok.json").write_text(json.dumps({"name": "x"}))
    assert load_plan(str(tmp_path / "ok.json"), spec).name == "x"


def test_extra_policy_opens_exactly_that_port(spec):
    plan = parse_plan({"extra_policies": [{"tenant": "red", "from": ["h2"], "to": ["h1"],
                                           "apps": ["web"]}]}, spec)
    before = FakeOFNetwork(spec, compile_network(spec).rules)
    after = FakeOFNetwork(spec, compile_network(spec, plan).rules)
    pkt = ip_packet(spec, "h2", "h1", "tcp", 40000, 80)
    assert before.send("h2", pkt).delivered_to is None
    assert after.send("h2", pkt).delivered_to == "h1"
    assert after.send("h2", ip_packet(spec, "h2", "h1", "tcp", 40000, 5432)).delivered_to is None


def other_path(spec, src, dst):
    from controller.routing import Router, shortest_paths

    r = Router(spec)
    current = compile_network(spec).paths[(src, dst)]
    alts = [p for p in shortest_paths(r.adj, current[0], current[-1]) if p != current]
    return current, alts[0]


def test_application_path_moves_only_that_application(spec):
    current, alt = other_path(spec, "h1", "h2")
    plan = parse_plan({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 10,
                                        "path": list(alt)}]}, spec)
    net = FakeOFNetwork(spec, compile_network(spec, plan).rules)
    web = net.send("h1", ip_packet(spec, "h1", "h2", "tcp", 40000, 80))
    assert web.delivered_to == "h2" and tuple(web.hops) == alt
    back = net.send("h2", ip_packet(spec, "h2", "h1", "tcp", 80, 40000))
    assert back.delivered_to == "h1" and tuple(back.hops) == tuple(reversed(alt))
    video = net.send("h1", ip_packet(spec, "h1", "h2", "udp", 40000, 5004))
    assert video.delivered_to == "h2" and tuple(video.hops) == current


def test_path_change_is_made_before_it_is_broken(spec):
    from controller.core import AddFlow, DeleteFlow, diff_networks

    _, alt = other_path(spec, "h1", "h2")
    base = compile_network(spec)
    moved = compile_network(spec, parse_plan({"allocations": [
        {"tenant": "red", "app": "web", "rate_mbps": 10, "path": list(alt)}]}, spec))
    phases, summary = diff_networks(base, moved)
    first_hop = spec.switch(alt[0]).dpid
    order = [d for ph in phases for d, msgs in ph.items()
             for m in msgs if isinstance(m, AddFlow) and m.rule.priority == 1100
             and dict(m.rule.match).get("tcp_dst") == 80]
    assert order[-1] == first_hop and len(order) == len(alt)  # the ingress switch goes last
    # and back: the ingress switch stops first
    phases, _ = diff_networks(moved, base)
    dels = [d for ph in phases for d, msgs in ph.items()
            for m in msgs if isinstance(m, DeleteFlow) and dict(m.rule.match).get("tcp_dst") == 80]
    assert dels[0] == first_hop


@pytest.mark.parametrize("path,msg", [
    (["s1", "s4"], "no link between s1 and s4"),
    (["s1", "s9"], "not a switch"),
    (["s2", "s4"], "does not join"),
    (["s1", "s2", "s1", "s2"], "visits a switch twice"),
    ("s1", "non-empty list"),
])
def test_a_path_that_is_not_a_path_is_refused(spec, path, msg):
    with pytest.raises(PlanError, match=msg) as e:
        parse_plan({"allocations": [{"tenant": "red", "app": "web", "rate_mbps": 1, "path": path}]},
                   spec)
    assert e.value.field == "allocations[0].path"
