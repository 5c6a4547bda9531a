"""The compute replay on the lab: a trace column drives a CPU-limited host's calibrated CPU load
while each policy sets its quota; the cgroup measures what the load got. A static quota above
every step never throttles it, the reactive threshold is throttled at the rise, and the result is
scored and printed beside the bandwidth figures."""

from __future__ import annotations

import json

import pandas as pd

from netshadow.cli import main
from topologies import bundled


def test_a_trace_drives_a_hosts_cpu_and_the_policies_are_measured_by_its_cgroup(tmp_path, capsys):
    low, high = [0.1] * 8, [0.5] * 4
    shares = (low + high) * 3  # two periods of history, the third replayed
    t = pd.date_range("2026-01-05", periods=len(shares), freq="1h", tz="UTC")
    pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M"), "cpu": [s * 100 for s in shares]}).to_csv(
        tmp_path / "t.csv", index=False)
    (tmp_path / "m.yaml").write_text("compute:\n  - {column: cpu, host: h2, scale: 0.01}\n")
    rc = main(["replay", "--spec", str(bundled("compute")), "--trace", str(tmp_path / "t.csv"),
               "--map", str(tmp_path / "m.yaml"), "--compress", "1h=1", "--days", "0.5",
               "--policy", "static", "--policy", "reactive", "--policy", "oracle", "--prefix", "nti",
               "--workdir", str(tmp_path / "work"), "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "r.json").read_text())
    s = doc["compute"]["summary"]
    runs = doc["compute"]["runs"]
    # the load is calibrated: where nothing held it back it used what the trace asked for
    static = runs["static"]
    used, asked = static["offered"], static["demand"]
    assert all(abs(u[0] - a[0]) <= 0.05 for u, a in zip(used, asked)), (used, asked)
    assert s["static"]["violation_steps"] == 0 and s["oracle"]["violation_steps"] == 0, s
    assert s["reactive"]["violation_steps"] >= 1, s  # the rise comes before the threshold reacts
    assert s["oracle"]["reserved_mbit"] < s["reactive"]["reserved_mbit"], s
    assert ": CPU" in out
