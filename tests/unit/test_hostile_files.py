"""Regression tests for hostile files: specs (YAML bombs, depth, duplicate keys, size), replay
traces and mappings, and the repairs the trace loader reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emulation.replay_measures import compare
from emulation.trace import ReplayError, load_mapping, parse_compress, parse_mapping
from models.series import SeriesError, from_frame
from netshadow.errors import one_line
from netshadow.replaycmd import describe_repairs, parse_corrupt, prepare
from topologies import SpecError, bundled, load_spec
from topologies.yamlio import MAX_NODES, YamlInputError, load_yaml

SPEC = load_spec(bundled("default"))
ROOT = bundled("default").parent.parent


def alias_bomb(levels: int = 9, fan: int = 10) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- YAML
def test_alias_bomb_is_refused_before_anything_expands_it(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(alias_bomb())
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert "aliases" in str(e.value) and str(p) in str(e.value)


def test_modest_aliases_still_work():
    assert load_yaml("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}
    with pytest.raises(YamlInputError):
        load_yaml(alias_bomb(levels=6))  # 10^6 nodes once expanded
    assert MAX_NODES < 10**6


@pytest.mark.parametrize("depth", [40, 10_000])
def test_deep_nesting_is_a_spec_error_not_a_recursion_error(tmp_path, depth):
    p = tmp_path / "deep.yaml"
    p.write_text("name: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert "line 1" in str(e.value)


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    p = tmp_path / "dup.yaml"
    text = bundled("default").read_text()
    p.write_text(text + "\nname: again\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert e.value.field == f"line {len(text.splitlines()) + 2}" and "duplicate key" in str(e.value)


def test_a_20_mb_spec_is_refused_at_once_without_echoing_it(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("name: " + "x" * 20_000_000 + "\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert len(str(e.value)) < 300 and "limit" in str(e.value)


def test_long_values_are_cut_in_spec_errors(tmp_path):
    p = tmp_path / "long.yaml"
    p.write_text("name: default\nswitches: " + "x" * 50_000 + "\n")
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert len(str(e.value)) < 300


def test_libyaml_is_used_where_available():
    import yaml

    from topologies import yamlio

    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML was built without libyaml here")
    assert yamlio._Base is yaml.CSafeLoader


def test_cli_lines_are_one_line_and_bounded():
    assert one_line("a\nb\t c") == "a b c"
    assert len(one_line("x" * 10_000)) == 300


# ---------------------------------------------------------------------- replay inputs
MAP = {"scale": 1.0, "flows": [{"column": "series1", "tenant": "red", "app": "video",
                                "src": "h1", "dst": "h2"}]}


@pytest.mark.parametrize("text", ["1800=inf", "inf=1", "1800=nan", "1800=-1", "1800", "a=b=c"])
def test_compress_refuses_what_cannot_be_replayed(text):
    with pytest.raises(ReplayError, match="compress"):
        parse_compress(text)


@pytest.mark.parametrize("change,needle", [
    ({"extra": 1}, "extra: unknown field"),
    ({"scale": float("inf")}, "scale"),
    ({"scale": float("nan")}, "scale"),
    ({"scale": True}, "scale"),
])
def test_mapping_refuses_unknown_keys_and_non_finite_scale(change, needle):
    with pytest.raises(ReplayError, match=needle):
        parse_mapping({**MAP, **change}, SPEC, ["series1"])


def test_mapping_errors_name_the_file(tmp_path):
    p = tmp_path / "m.json"
    p.write_text('{"scale": NaN, "flows": []}')
    with pytest.raises(ReplayError) as e:
        load_mapping(p, SPEC)
    assert str(p) in str(e.value) and "NaN" in str(e.value)
    p.write_text('{"scale": 1, "flows": [], "zz": 1}')
    with pytest.raises(ReplayError) as e:
        load_mapping(p, SPEC)
    assert str(p) in str(e.value) and "zz" in str(e.value)


def write_trace(path, values, times=None):
    n = len(values)
    times = times if times is not None else pd.date_range("2026-01-01", periods=n, freq="30min").strftime(
        "%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, "series1": values}).to_csv(path, index=False)
    return path


def write_map(path, scale=1.0):
    import json

    path.write_text(json.dumps({**MAP, "scale": scale}))
    return path


def test_a_demand_no_plan_could_guarantee_is_refused_naming_column_and_time(tmp_path):
    trace = write_trace(tmp_path / "t.csv", [1.0] * 200 + [1e308] + [1.0] * 100)
    with pytest.raises(ReplayError) as e:
        prepare(SPEC, str(trace), str(write_map(tmp_path / "m.json")), "1800=1", None, 1)
    assert "series1" in str(e.value) and "2026-01-05 04:00" in str(e.value) and str(trace) in str(e.value)


def test_an_all_zero_day_replays_and_its_ratios_are_defined_or_none(tmp_path):
    s = {"violation_s": 0.0, "reserved_mbit": 0.0, "peaks": 0, "peaks_preallocated": 0}
    r = {"violation_s": 0.0, "reserved_mbit": 10.0, "peaks": 0, "peaks_preallocated": 0}
    out = compare({"predictive": s, "reactive": r, "oracle": s})
    assert out["reserved_ratio_vs_oracle"] == 1.0 and out["reserved_ratio_vs_reactive"] == 0.0
    out = compare({"predictive": r, "oracle": s})
    assert out["reserved_ratio_vs_oracle"] is None


@pytest.mark.parametrize("text", ["shift:-3", "shift:0", "shift:x", "noise:-1", "noise:inf", "noise:nan",
                                  "jitter", "shift:1e9"])
def test_corrupt_is_refused_up_front(text):
    with pytest.raises(ReplayError, match="corrupt"):
        parse_corrupt(text)


def test_corrupt_accepts_the_documented_forms():
    assert parse_corrupt(None) is None
    assert callable(parse_corrupt("shift")) and callable(parse_corrupt("noise:0.5"))


def test_start_that_is_not_a_time_is_a_replay_error(tmp_path):
    trace = write_trace(tmp_path / "t.csv", [1.0] * 400)
    with pytest.raises(ReplayError, match="start: not a time"):
        prepare(SPEC, str(trace), str(write_map(tmp_path / "m.json")), "1800=1", "notatime", 1)


def test_epoch_seconds_time_column_is_read_as_seconds():
    t0 = 1_767_225_600  # 2026-01-01T00:00Z
    df = pd.DataFrame({"time": [t0 + 1800 * i for i in range(10)], "a": np.arange(10.0)})
    s, _ = from_frame(df)
    assert s.step_s == 1800 and str(s.start) == "2026-01-01 00:00:00+00:00"


def test_a_grid_of_billions_of_cells_is_refused():
    times = ["1970-01-01T00:00:00"] + [f"2026-01-01T00:00:{i:02d}" for i in range(10)]
    df = pd.DataFrame({"time": times, "a": np.arange(11.0)})  # a 1 s step over 56 years
    with pytest.raises(SeriesError, match="cells"):
        from_frame(df)


def test_repairs_are_reported():
    df = pd.DataFrame({"time": ["2026-01-01T01:00", "2026-01-01T00:00", "2026-01-01T00:30",
                                "2026-01-01T00:30", "2026-01-01T02:00"], "a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    _, report = from_frame(df)
    text = describe_repairs(report)
    assert report.reordered == 1 and report.duplicates_dropped == 1
    assert "out of time order" in text and "duplicated time" in text and "missing steps" in text


def test_a_small_spec_that_would_compile_millions_of_rules_is_refused(tmp_path):
    import yaml

    switches = [{"name": f"s{i}", "dpid": i + 1} for i in range(10)]
    links = [{"a": f"s{i}", "b": f"s{i + 1}", "capacity_mbps": 100} for i in range(9)]
    hosts = [{"name": f"h{n}", "switch": f"s{n % 10}", "ip": f"10.{n // 250}.{n % 250}.1/8",
              "link_mbps": 100} for n in range(400)]
    tenant = {"id": "t", "hosts": [h["name"] for h in hosts],
              "applications": [{"name": "web", "protocol": "tcp", "port": 80}],
              "policies": [{"from": "*", "to": "*", "apps": ["web"]}]}
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump({"name": "big", "switches": switches, "links": links, "hosts": hosts,
                                 "tenants": [tenant]}))
    assert p.stat().st_size < 40_000  # small file, 160 000 allowed pairs: 2 million rules
    with pytest.raises(SpecError) as e:
        load_spec(p)
    assert e.value.field == "tenants" and "at most" in str(e.value)
