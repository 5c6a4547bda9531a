"""``netshadow run`` against the real lab: it reads the controller's telemetry, applies a plan
that covers a running stream, shows its status over HTTP and /metrics, continues its numbering
after a kill -9, and verifies a plan in a shadow network before applying it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time

import pytest
import requests

from emulation import cleanup
from emulation.controller_proc import free_port
from tests.waiting import wait_for

from .conftest import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab("default", "ntn", tmp_path_factory.mktemp("loop"), db=True) as running:
        h1, h2 = running.spec.host("h1"), running.spec.host("h2")
        rx = running.lab.host("h2").popen([sys.executable, "-u", "-m", "emulation.udpgen", "recv",
                                           "--port", "5004", "--seconds", "300"], stdout=subprocess.PIPE)
        rx.stdout.readline()
        tx = running.lab.host("h1").popen(
            [sys.executable, "-m", "emulation.udpgen", "send", "--iface", f"{running.lab.prefix}h1-eth0",
             "--src-mac", h1.mac, "--dst-mac", h2.mac, "--src-ip", h1.ip, "--dst-ip", h2.ip,
             "--dport", "5004", "--rate-mbps", "10", "--seconds", "240"], stdout=subprocess.DEVNULL)
        try:
            def measured():  # a few seconds of the stream's telemetry first
                r = requests.get(f"{running.ctl.url}/series", params={
                    "series": "app/red/video/fwd/bps", "since": time.time() - 30}, timeout=10).json()
                pts = r["series"][0]["points"] if r["series"] else []
                return len([v for _, v in pts if v]) >= 5
            wait_for(measured, 60, "five measured seconds of the red/video stream")
            yield running
        finally:
            for p in (tx, rx):
                p.kill()
                p.wait()


def loop_cmd(lab, db, port, *extra):
    return [sys.executable, "-m", "netshadow", "run", "--spec", lab.spec_path,
            "--controller", lab.ctl.url.rsplit("/api/v1", 1)[0], "--token-file", str(lab.workdir / "token"),
            "--step", "1", "--interval", "1", "--history", "60", "--forecaster", "persistence",
            "--hold", "5", "--db", str(db), "--status-port", str(port), *extra]


def cycles(db):
    with sqlite3.connect(db) as c:
        return [json.loads(r[0]) for r in c.execute("SELECT record FROM cycles ORDER BY cycle")]


def test_loop_allocates_for_the_running_stream(lab, tmp_path):
    db = tmp_path / "loop.db"
    r = subprocess.run(loop_cmd(lab, db, free_port(), "--cycles", "3"), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = cycles(db)
    assert [x["cycle"] for x in recs] == [1, 2, 3]
    assert all(x["outcome"] in ("applied", "unchanged") for x in recs), recs[-1]
    assert "red/video/bandwidth" in recs[-1]["keys"] and recs[-1]["scored"]["red/video/bandwidth"]["n"] >= 1
    plan = requests.get(f"{lab.ctl.url}/plans/current", timeout=5).json()["plan"]
    video = next(a for a in plan["allocations"] if (a["tenant"], a["app"]) == ("red", "video"))
    # the 10 Mbit/s stream, its forecast's upper quantile (persistence plus at most the largest
    # step change measured) and the budget's margin (one mean step change at the start, half of
    # one more per violated cycle), with headroom. On a busy machine the per-second measurements
    # vary by several Mbit/s (CI measured 13.14 and 19.5 against a fixed 15), so the bound is read
    # from what was measured; a plan sized from anything but this stream would be far outside
    pts = requests.get(f"{lab.ctl.url}/series", params={"series": "app/red/video/fwd/bps",
                                                          "since": time.time() - 120}, timeout=10).json()
    mbps = [v / 1e6 for _, v in pts["series"][0]["points"] if v]
    steps = [abs(b - a) for a, b in zip(mbps, mbps[1:])]
    bound = 1.05 * (max(mbps) + max(steps) + 3 * statistics.mean(steps)) + 0.1
    assert 10.0 <= video["rate_mbps"] <= min(bound, 40.0), (video, bound, recs[-1]["margin_mbps"])


def test_status_metrics_and_restart_after_kill_9(lab, tmp_path):
    db, port = tmp_path / "loop.db", free_port()
    subprocess.run(loop_cmd(lab, db, port, "--cycles", "2"), check=True, capture_output=True, timeout=120)
    p = subprocess.Popen(loop_cmd(lab, db, port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        status = {}
        while time.monotonic() < deadline:
            try:
                status = requests.get(f"http://127.0.0.1:{port}/api/v1/loop", timeout=2).json()
            except requests.RequestException:
                status = {}
            if status.get("cycle", 0) >= 3:
                break
            time.sleep(0.3)
        assert status["resumed_from"] == 2 and status["cycle"] >= 3 and status["status"] == "running"
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        assert "netshadow_loop_cycles_total" in text
        assert 'netshadow_loop_allocated_mbps{app="video",tenant="red"}' in text
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    n = len(cycles(db))
    r = subprocess.run(loop_cmd(lab, db, port, "--cycles", "1"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    recs = cycles(db)
    assert [x["cycle"] for x in recs] == list(range(1, n + 2))  # no gap, no duplicate
    # the fresh loop warmed up before its first cycle (on what its 60 s of history held beyond
    # the 48 steps the planner is shown at least); a resumed one goes on from what it stored
    assert 0 <= recs[0]["warmed_up_steps"] <= 60 - 48 and all("warmed_up_steps" not in x for x in recs[1:])


def test_plan_verified_in_a_shadow_network_first(lab, tmp_path):
    db = tmp_path / "loop.db"
    try:
        r = subprocess.run(loop_cmd(lab, db, free_port(), "--cycles", "1", "--verify", "shadow",
                                    "--shadow-duration", "2", "--shadow-prefix", "ntm"),
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr[-2000:]
        (rec,) = cycles(db)
        assert rec["shadow"]["verdict"] == "pass", rec["shadow"]
        assert rec["outcome"] in ("applied", "unchanged"), rec
        assert rec["horizon_steps"] >= 3  # covers the shadow run plus the apply
    finally:
        assert cleanup.find("ntm").empty()
