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
