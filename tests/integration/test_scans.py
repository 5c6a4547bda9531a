"""Scan history on the lab: ``netshadow run --scan-prefix`` scans production, the controller stores
and serves the scans (``/api/v1/scans``, ``/metrics``), and after a link breaks the loop reports
the pairs that stopped answering as drift and moves an application off the broken link, whose
traffic then arrives again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import requests

from emulation.controller_proc import free_port
from tests.waiting import wait_for

from .conftest import running_lab


def _loop(lab, db, *extra):
    cmd = [sys.executable, "-m", "netshadow", "run", "--spec", lab.spec_path,
           "--controller", lab.ctl.url.rsplit("/api/v1", 1)[0], "--token-file", str(lab.workdir / "token"),
           "--step", "1", "--interval", "1", "--history", "60", "--forecaster", "persistence",
           "--hold", "5", "--db", str(db), "--status-port", str(free_port()),
           "--scan-prefix", lab.lab.prefix, "--scan-every", "1", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    with sqlite3.connect(db) as c:
        return [json.loads(x[0]) for x in c.execute("SELECT record FROM cycles ORDER BY cycle")]


def _rx_bytes(lab, host):
    return int(lab.lab.host(host).cmd(f"cat /sys/class/net/{lab.lab.prefix}{host}-eth0/statistics/rx_bytes"))


def _metrics_path(rec, tenant, app):
    a = next(a for a in rec["plan"]["allocations"] if (a["tenant"], a["app"]) == (tenant, app))
    return a.get("path")


def test_scans_are_stored_and_a_broken_link_is_reported_and_avoided(tmp_path):
    with running_lab("default", "ntl", tmp_path, db=True) as lab:
        h7, h8 = lab.spec.host("h7"), lab.spec.host("h8")
        rx = lab.lab.host("h8").popen([sys.executable, "-u", "-m", "emulation.udpgen", "recv",
                                       "--port", "8125", "--seconds", "300"], stdout=subprocess.PIPE)
        rx.stdout.readline()
        tx = lab.lab.host("h7").popen(
            [sys.executable, "-m", "emulation.udpgen", "send", "--iface", f"{lab.lab.prefix}h7-eth0",
             "--src-mac", h7.mac, "--dst-mac", h8.mac, "--src-ip", h7.ip, "--dst-ip", h8.ip,
             "--dport", "8125", "--rate-mbps", "5", "--seconds", "240"], stdout=subprocess.DEVNULL)
        try:
            def measured():
                r = requests.get(f"{lab.ctl.url}/series", params={
                    "series": "app/green/metrics/fwd/bps", "since": time.time() - 30}, timeout=10).json()
                pts = r["series"][0]["points"] if r["series"] else []
                return len([v for _, v in pts if v]) >= 5
            wait_for(measured, 60, "five measured seconds of the green/metrics stream")

            # 1. the intact network: scanned, stored, no drift
            (rec,) = _loop(lab, tmp_path / "a.db", "--cycles", "1")
            assert rec["scan"]["results"] > 100 and rec["scan"]["drift"] == [], rec["scan"]
            assert rec["scan"]["suspect_links"] == []
            # the scan's RTTs are the profiler's covariate: green/metrics (UDP) by its ICMP probe
            assert rec["covariate"]["rtt_steps"]["green/metrics/bandwidth"] >= 1, rec.get("covariate")
            got = requests.get(f"{lab.ctl.url}/scans", params={"origin": "production", "src": "h7"},
                               timeout=10).json()
            assert got["drift"] == [] and got["scans"]
            answered = {(r["dst"], r["proto"], r["port"]) for r in got["latest"] if r["reachable"]}
            assert ("h8", "tcp", 873) in answered and ("h8", "icmp", None) in answered
            assert not any(r["reachable"] for r in got["latest"] if r["dst"] == "h1")  # another tenant
            text = requests.get(lab.ctl.url.removesuffix("/api/v1") + "/metrics", timeout=10).text
            assert 'netshadow_scan_conforms{dst="h8",origin="production",port="873",proto="tcp",' \
                   'src="h7"} 1.0' in text
            for params, status in (({"limit": "0"}, 400), ({"src": "nope"}, 404), ({"since": "x"}, 400),
                                   ({"origin": "mars"}, 400), ({"what": "1"}, 400)):
                r = requests.get(f"{lab.ctl.url}/scans", params=params, timeout=10)
                assert r.status_code == status and r.json()["field"], (params, r.text)
            r = requests.post(f"{lab.ctl.url}/scans", json={"origin": "production", "t": 1, "results": []},
                              timeout=10)
            assert r.status_code == 401

            # 2. s1-s3 breaks: green's h7 -> h8 path (s5-s1-s3) goes dark
            assert lab.lab.net.configLinkStatus(f"{lab.lab.prefix}s1", f"{lab.lab.prefix}s3", "down") is None
            before = _rx_bytes(lab, "h8")
            time.sleep(1.0)  # a measurement window, not a wait: 5 Mbit/s would bring 625 kB in it
            assert _rx_bytes(lab, "h8") - before < 20_000  # nothing of the 5 Mbit/s arrives
            recs = _loop(lab, tmp_path / "b.db", "--cycles", "2")
            drift = {(d["src"], d["dst"], d["proto"], d["port"]) for d in recs[0]["scan"]["drift"]}
            assert ("h7", "h8", "tcp", 873) in drift and ("h4", "h5", "tcp", 80) in drift, drift
            assert "s1-s3" in recs[0]["scan"]["suspect_links"], recs[0]["scan"]
            path = _metrics_path(recs[-1], "green", "metrics")  # within two cycles
            assert path and all({a, b} != {"s1", "s3"} for a, b in zip(path, path[1:])), path
            assert any("the scans say" in x for x in recs[-1]["plan"]["reasons"]), recs[-1]["plan"]["reasons"]
            assert recs[-1]["outcome"] in ("applied", "unchanged"), recs[-1]
            before = _rx_bytes(lab, "h8")
            wait_for(lambda: _rx_bytes(lab, "h8") - before > 300_000, 10,
                     "the stream arriving at h8 over the new path")
        finally:
            for p in (tx, rx):
                p.kill()
                p.wait()
