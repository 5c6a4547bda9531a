"""Host agents: stop the controller for 30 s while agents run (and kill -9 one agent during the
outage), start it again - every sample of that window arrives, none twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import requests

from controller.store import Store
from emulation.agents import start_agent, stop_agents
from emulation.controller_proc import ControllerProcess
from tests.waiting import wait_for

from .conftest import running_lab

OUTAGE_S = 30


def spool_len(path) -> int:
    with sqlite3.connect(path) as c:
        return c.execute("SELECT COUNT(*) FROM spool").fetchone()[0]


def test_agents_survive_controller_outage_and_own_restart(tmp_path):
    with running_lab("default", "ntj", tmp_path, db=True) as lab:
        spool = tmp_path / "spool"
        url = lab.ctl.url.removesuffix("/api/v1")
        tok = str(tmp_path / "token")
        hosts = ["h1", "h5", "h7"]
        agents = {h: start_agent(lab.lab, h, url, spool, token_file=tok, log_dir=tmp_path)
                  for h in hosts}
        try:
            def all_reporting():
                r = requests.get(f"{lab.ctl.url}/series", params={"kind": "host"}, timeout=10)
                names = {s["host"] for s in r.json()["series"]}
                return set(hosts) <= names
            wait_for(all_reporting, 30, "a stored reading from every agent")
            # traffic so that network counters move
            lab.lab.host("h1").cmd(f"ping -n -c3 -i0.2 {lab.spec.host('h2').ip}")
            old = lab.ctl
            old.stop()  # SIGTERM: the controller flushes and exits
            down_at = time.time()
            # kill -9 one agent mid-outage: its unacknowledged readings are only in its spool
            wait_for(lambda: spool_len(spool / "h5.db") >= 5, OUTAGE_S, "h5 spooling readings")
            # a fixed wait on purpose: the scenario is an outage of OUTAGE_S seconds, whatever
            # the machine's speed (the condition it needs, readings spooled, was waited for above)
            time.sleep(max(0.0, down_at + OUTAGE_S / 2 - time.time()))  # the outage's first half
            os.kill(agents["h5"].pid, signal.SIGKILL)
            agents["h5"].wait()
            assert spool_len(spool / "h5.db") >= 5
            agents["h5"] = start_agent(lab.lab, "h5", url, spool, token_file=tok, log_dir=tmp_path)
            time.sleep(OUTAGE_S / 2)  # the outage's second half (the scenario's length, on purpose)
            up_at = time.time()
            lab.ctl = ControllerProcess(lab.spec_path, old.of_port, old.rest_port,
                                        log_path=tmp_path / "controller-2.log",
                                        extra_args=old.extra_args, db_path=old.db_path).start()
            deadline = time.time() + 30
            while time.time() < deadline and any(spool_len(spool / f"{h}.db") for h in hosts):
                time.sleep(0.5)
            assert all(spool_len(spool / f"{h}.db") == 0 for h in hosts)
        finally:
            stop_agents(agents)
        store = Store(old.db_path)
        for h in hosts:
            rows = store.agent_samples(h)
            seqs = [s for s, _ in rows]
            assert len(seqs) == len(set(seqs)), f"{h}: a sample was stored twice"
            assert seqs == list(range(1, len(seqs) + 1)), f"{h}: a sample is missing"
            in_outage = [t for _, t in rows if down_at + 1 < t < up_at - 1]
            # one reading per second; the restarted agent needs one interval for its baseline
            assert len(in_outage) >= OUTAGE_S - 5, (h, len(in_outage))
        cpu = store.query(["host/red/h1/cpu"])["host/red/h1/cpu"]
        assert cpu and all(v is not None and v >= 0 for _, v in cpu)
        tx = store.query(["host/red/h1/tx_bps"])["host/red/h1/tx_bps"]
        assert max(v for _, v in tx) > 0  # the pings were seen
        store.close()
