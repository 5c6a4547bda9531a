"""A plan's compute reaches a lab host's cgroups through its agent: the CPU quota holds a busy
loop to it; the memory limit is set, but never below what the host uses."""

from __future__ import annotations

import os
import signal
import sys
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


def test_plan_memory_limit_reaches_the_hosts_memory_cgroup_never_below_its_use(tmp_path):
    with running_lab(str(SPECS / "cpu.yaml"), "ntj", tmp_path, db=True) as lab:
        url = lab.ctl.url.removesuffix("/api/v1")
        cg = Path("/sys/fs/cgroup/memory") / f"{lab.lab.prefix}h1"
        assert (cg / "cgroup.procs").read_text().split()  # the lab put the host's shell in it
        # from the host's shell (so in its memory cgroup), a process holding 48 MiB: more than the
        # smallest limit a plan may set; and one started from outside it, not in the cgroup yet
        hog = int(lab.lab.host("h1").cmd(
            # (its sleep only keeps the memory held until the finally kills it)
            f"{sys.executable} -c \"import time; x = bytearray(48 << 20); "
            f"x[::4096] = b'1' * len(x[::4096]); time.sleep(60)\" >/dev/null 2>&1 & echo $!").split()[-1])
        sleeper = lab.lab.host("h1").popen(["sleep", "60"])
        wait_for(lambda: int((cg / "memory.usage_in_bytes").read_text()) > 48 * 2**20, 20,
                 "the 48 MiB process charged to h1's memory cgroup")
        agents = {"h1": start_agent(lab.lab, "h1", url, tmp_path / "spool",
                                    token_file=str(tmp_path / "token"), log_dir=tmp_path)}
        try:
            for mib, want in ((256, 256 * 2**20), (16, None)):  # 16 MiB: under the host's use
                r = requests.post(f"{lab.ctl.url}/plans", json={"name": f"m{mib}",
                                                                "memory_limits": {"h1": mib}},
                                  headers={"Authorization": f"Bearer {lab.token}"}, timeout=10)
                assert r.status_code == 200, r.text

                def applied(mib=mib):
                    v = int((cg / "memory.limit_in_bytes").read_text())
                    return v == 256 * 2**20 if mib == 256 else v != 256 * 2**20
                wait_for(applied, 30, f"h1's memory limit after the {mib} MiB plan")
                limit = int((cg / "memory.limit_in_bytes").read_text())
                used = int((cg / "memory.usage_in_bytes").read_text())
                if want is not None:
                    assert limit == want
                else:
                    assert limit >= used > 48 * 2**20  # never below what the host uses
            assert str(sleeper.pid) in (cg / "cgroup.procs").read_text().split()
            assert sleeper.poll() is None and Path(f"/proc/{hog}").exists()  # nothing was killed
        finally:
            sleeper.kill()
            sleeper.wait()
            try:
                os.kill(hog, signal.SIGKILL)
            except (ProcessLookupError, UnboundLocalError):
                pass
            stop_agents(agents)
        store = Store(tmp_path / "netshadow.db")
        limits = [v for _, v in store.query(["host/red/h1/memory_limit"])["host/red/h1/memory_limit"]]
        store.close()
        assert 256.0 in limits
