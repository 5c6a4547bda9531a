"""A plan's CPU quota reaches a lab host's cgroup through its agent, and holds a busy loop to it."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from controller.store import Store
from emulation.agents import start_agent, stop_agents
from tests.waiting import wait_for

from .conftest import SPECS, running_lab


def test_plan_cpu_quota_limits_the_host(tmp_path):
    with running_lab(str(SPECS / "cpu.yaml"), "ntj", tmp_path, db=True) as lab:
        url = lab.ctl.url.removesuffix("/api/v1")
        agents = {"h1": start_agent(lab.lab, "h1", url, tmp_path / "spool",
                                    token_file=str(tmp_path / "token"), log_dir=tmp_path)}
        burn = None
        try:
            r = requests.post(f"{lab.ctl.url}/plans", json={"name": "q", "cpu_quotas": {"h1": 0.2}},
                              headers={"Authorization": f"Bearer {lab.token}"}, timeout=10)
            assert r.status_code == 200, r.text
            cg = Path("/sys/fs/cgroup/cpu") / f"{lab.lab.prefix}h1"
            period = int((cg / "cpu.cfs_period_us").read_text())
            deadline = time.time() + 15
            while time.time() < deadline and int((cg / "cpu.cfs_quota_us").read_text()) != period // 5:
                time.sleep(0.5)
            assert int((cg / "cpu.cfs_quota_us").read_text()) == period // 5
            burn = lab.lab.host("h1").popen(["sh", "-c", "while :; do :; done"])
            t0 = time.time()

            def burning():  # four readings of the burning host after it settled
                r = requests.get(f"{lab.ctl.url}/series", params={"series": "host/red/h1/cpu",
                                                                   "since": t0 + 2}, timeout=10).json()
                return r["series"] and len(r["series"][0]["points"]) >= 4
            wait_for(burning, 60, "four CPU readings of h1 under load")
        finally:
            if burn is not None:
                burn.kill()
                burn.wait()
            stop_agents(agents)
        store = Store(tmp_path / "netshadow.db")
        cpu = [v for t, v in store.query(["host/red/h1/cpu"])["host/red/h1/cpu"] if t > t0 + 2]
        quota = [v for _, v in store.query(["host/red/h1/cpu_quota"])["host/red/h1/cpu_quota"]]
        store.close()
        assert cpu and max(cpu) < 0.3 and sum(cpu) / len(cpu) > 0.12, cpu  # held to ~0.2 of a CPU
        assert quota and quota[-1] == 0.2
