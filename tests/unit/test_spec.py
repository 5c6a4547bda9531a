"""The spec validator: valid specs load, and every kind of bad input names its field and value."""

from __future__ import annotations

import copy

import pytest
import yaml

from netshadow.cli import main
from topologies import SpecError, bundled, load_spec, parse_spec


def minimal() -> dict:
    return {
        "name": "t",
        "switches": [{"name": "s1"}, {"name": "s2"}],
        "links": [{"a": "s1", "b": "s2", "capacity_mbps": 50}],
        "hosts": [
            {"name": "h1", "switch": "s1", "ip": "10.0.0.1/24"},
            {"name": "h2", "switch": "s2", "ip": "10.0.0.2/24"},
            {"name": "h3", "switch": "s2", "ip": "10.0.0.3/24"},
        ],
        "tenants": [
            {"id": "red", "hosts": ["h1", "h2"],
             "applications": [{"name": "web", "protocol": "tcp", "port": 80}],
             "policies": [{"from": ["h1"], "to": ["h2"], "apps": ["web"]}]},
            {"id": "blue", "hosts": ["h3"]},
        ],
    }


def test_bundled_specs_are_valid():
    d = load_spec(bundled("default"))
    assert len(d.tenants) == 3 and all(2 <= len(t.applications) <= 3 for t in d.tenants)
    a = load_spec(bundled("abilene"))
    assert len(a.switches) == 12 and len(a.links) == 15 and len(a.hosts) == 12


def test_defaults_and_round_trip():
    spec = parse_spec(minimal(), "m.yaml")
    assert spec.switch("s2").dpid == 2
    assert spec.host("h1").mac == "02:00:0a:00:00:01"
    assert spec.host("h1").link_mbps == 100.0
    assert spec.allowed() == {("h1", "h2", "web")}
    assert parse_spec(spec.to_dict()) == spec


def test_wildcards_expand_to_tenant_members():
    d = minimal()
    d["tenants"][0]["policies"] = [{"from": "*", "to": "*", "apps": "*"}]
    spec = parse_spec(d)
    assert spec.allowed() == {("h1", "h2", "web"), ("h2", "h1", "web")}


def _set(path: str, value):
    """A mutation that sets ``path`` (dotted, with [i]) to ``value``; None deletes."""
    def mutate(d):
        parts = path.replace("[", ".").replace("]", "").split(".")
        obj = d
        for p in parts[:-1]:
            obj = obj[int(p)] if p.isdigit() else obj[p]
        last = parts[-1]
        if value is None:
            del obj[last]
        elif last.isdigit():
            obj[int(last)] = value
        else:
            obj[last] = value
    return mutate


BAD = [
    # (what, mutation, field named in the message, value shown in the message)
    ("unknown top-level key", _set("colour", "red"), "colour", "red"),
    ("unknown key in a link", _set("links[0].latency", 5), "links[0].latency", "5"),
    ("missing required key", _set("hosts[0].ip", None), "hosts[0].ip", "None"),
    ("wrong type for capacity", _set("links[0].capacity_mbps", "fast"), "links[0].capacity_mbps", "fast"),
    ("boolean is not a number", _set("links[0].capacity_mbps", True), "links[0].capacity_mbps", "True"),
    ("capacity zero", _set("links[0].capacity_mbps", 0), "links[0].capacity_mbps", "0"),
    ("capacity negative", _set("links[0].capacity_mbps", -10), "links[0].capacity_mbps", "-10"),
    ("capacity above Mininet's limit", _set("links[0].capacity_mbps", 10000), "links[0].capacity_mbps",
     "10000"),
    ("link to unknown switch", _set("links[0].b", "s9"), "links[0].b", "s9"),
    ("self loop", _set("links[0].b", "s1"), "links[0].b", "s1"),
    ("host on unknown switch", _set("hosts[1].switch", "s7"), "hosts[1].switch", "s7"),
    ("tenant names unknown host", _set("tenants[1].hosts[0]", "h99"), "tenants[1].hosts[0]", "h99"),
    ("host in two tenants", _set("tenants[1].hosts", ["h3", "h1"]), "tenants[1].hosts[1]", "h1"),
    ("name too long for an interface", _set("switches[0].name", "switch01"), "switches[0].name",
     "switch01"),
    ("name with a dash", _set("hosts[0].name", "h-1"), "hosts[0].name", "h-1"),
    ("duplicate IP", _set("hosts[1].ip", "10.0.0.1/24"), "hosts[1].ip", "10.0.0.1"),
    ("bad IP", _set("hosts[1].ip", "10.0.0.300"), "hosts[1].ip", "10.0.0.300"),
    ("hosts in different subnets", _set("hosts[1].ip", "10.9.0.2/24"), "hosts[1].ip", "10.9.0.2/24"),
    ("bad MAC", _set("hosts[0].mac", "00:11:22:33:44"), "hosts[0].mac", "00:11:22:33:44"),
    ("multicast MAC", _set("hosts[0].mac", "01:00:00:00:00:01"), "hosts[0].mac", "01:00:00:00:00:01"),
    ("unknown protocol", _set("tenants[0].applications[0].protocol", "sctp"),
     "tenants[0].applications[0].protocol", "sctp"),
    ("port out of range", _set("tenants[0].applications[0].port", 70000),
     "tenants[0].applications[0].port", "70000"),
    ("policy names unknown app", _set("tenants[0].policies[0].apps", ["ftp"]),
     "tenants[0].policies[0].apps[0]", "ftp"),
    ("policy names host of another tenant", _set("tenants[0].policies[0].to", ["h3"]),
     "tenants[0].policies[0].to[0]", "h3"),
    ("duplicate tenant id", _set("tenants[1].id", "red"), "tenants[1].id", "red"),
    ("tenant id with capitals", _set("tenants[1].id", "Blue"), "tenants[1].id", "Blue"),
    ("duplicate switch name", _set("switches[1].name", "s1"), "switches[1].name", "s1"),
    ("host named like a switch", _set("hosts[0].name", "s1"), "hosts[0].name", "s1"),
    ("duplicate dpid", _set("switches[1].dpid", 1), "switches[1].dpid", "1"),
    ("disconnected switch", _set("links", []), "links", "s2"),
    ("cpu share above one", _set("hosts[0].cpu", 1.5), "hosts[0].cpu", "1.5"),
    ("empty tenant", _set("tenants[1].hosts", []), "tenants[1].hosts", "[]"),
    ("spec is not a mapping", lambda d: d.clear() or d.update({"x": 1}), "x", "1"),
]


@pytest.mark.parametrize("what,mutate,fld,value", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_field_and_value(what, mutate, fld, value):
    d = copy.deepcopy(minimal())
    mutate(d)
    with pytest.raises(SpecError) as e:
        parse_spec(d, "bad.yaml")
    msg = str(e.value)
    assert msg.startswith("bad.yaml: "), msg
    assert e.value.field == fld, msg
    assert f"{fld}:" in msg and value in msg, msg


def test_top_level_not_a_mapping():
    with pytest.raises(SpecError, match="must be a mapping"):
        parse_spec(["a", "b"], "list.yaml")


def test_load_spec_reports_yaml_syntax_with_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nswitches: [\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert str(p) in str(e.value) and "line" in e.value.field


def test_load_spec_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot be read"):
        load_spec(tmp_path / "nope.yaml")


def test_check_config_exit_codes(tmp_path, capsys):
    assert main(["check-config", str(bundled("default"))]) == 0
    assert "ok" in capsys.readouterr().out
    bad = copy.deepcopy(minimal())
    bad["links"][0]["capacity_mbps"] = -1
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(bad))
    assert main(["check-config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "links[0].capacity_mbps" in err and "-1" in err and str(p) in err

