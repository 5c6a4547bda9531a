"""Compute in the closed loop, on the lab: a CPU-limited host whose load follows a repeating
pattern gets its CPU quota from ``netshadow run`` - raised before each rise, so its cgroup's
``cpu.stat`` shows (almost) no throttled time through the rise, and lowered after it - while the
reactive threshold, run through the same loop, is throttled at every rise."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from emulation.agents import start_agent, stop_agents
from emulation.controller_proc import free_port

from .conftest import SPECS, running_lab

LOW, HIGH = 0.1, 0.5  # of one CPU
LOW_STEPS, HIGH_STEPS = 10, 6
PERIOD = LOW_STEPS + HIGH_STEPS  # seconds (one step a second)


class CgroupWatch:
    """Samples the host's cgroup (quota and cumulative throttled seconds) every 0.2 s."""

    def __init__(self, cg: Path):
        self.cg, self.samples, self._stop = cg, [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _read(self):
        period = int((self.cg / "cpu.cfs_period_us").read_text())
        quota = int((self.cg / "cpu.cfs_quota_us").read_text()) / period
        stat = dict(line.split() for line in (self.cg / "cpu.stat").read_text().splitlines())
        return time.time(), quota, int(stat["throttled_time"]) / 1e9

    def _run(self):
        while not self._stop.wait(0.2):
            self.samples.append(self._read())

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=5)

    def throttled(self, lo: float, hi: float) -> float:
        """Seconds throttled between the samples nearest ``lo`` and ``hi``."""
        a = min(self.samples, key=lambda s: abs(s[0] - lo))
        b = min(self.samples, key=lambda s: abs(s[0] - hi))
        return b[2] - a[2]

    def quota_at(self, t: float) -> float:
        return max((s for s in self.samples if s[0] <= t), key=lambda s: s[0])[1]

    def quotas(self, lo: float, hi: float) -> list[float]:
        return [q for t, q, _ in self.samples if lo <= t <= hi]


def _run_policy(lab, policy: str, periods: int, loop_from: int, tmp: Path):
    """Drive h1 with ``periods`` of the pattern, ``netshadow run --policy`` allocating from the
    start of period ``loop_from`` on (what came before is the telemetry history it starts with,
    measured under the host's own share); the cgroup watch and the load's start time."""
    shares = ([LOW] * LOW_STEPS + [HIGH] * HIGH_STEPS) * periods
    t0 = math.ceil(time.time()) + 2
    cg = Path("/sys/fs/cgroup/cpu") / f"{lab.lab.prefix}h1"
    cmd = [sys.executable, "-m", "netshadow", "run", "--spec", lab.spec_path,
           "--controller", lab.ctl.url.rsplit("/api/v1", 1)[0], "--token-file", str(lab.workdir / "token"),
           "--policy", policy, "--forecaster", "seasonal_naive", "--step", "1", "--interval", "1",
           "--history", "120", "--compute", "cpu", "--season", str(PERIOD), "--db", str(tmp / f"{policy}.db"),
           "--status-port", str(free_port())]
    load = lab.lab.host("h1").popen([sys.executable, "-m", "emulation.cpuload", "--step", "1",
                                     "--start", str(t0), "--shares", ",".join(map(str, shares))],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    loop = None
    try:
        with CgroupWatch(cg) as watch:
            # the loop starts at a point of the load's wall-clock schedule (its history), not
            # after a guessed delay: the load runs from t0 whatever the machine does
            time.sleep(max(0.0, t0 + loop_from * PERIOD - time.time()))
            with open(tmp / f"{policy}.log", "wb") as log:
                loop = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
            out, err = load.communicate(timeout=len(shares) + 60)
        assert load.returncode == 0, err.decode()[-500:]
        assert loop.poll() is None, (tmp / f"{policy}.log").read_text()[-2000:]
    finally:
        for p in (load, loop):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    return watch, t0


def test_cpu_quota_is_raised_before_each_rise_and_the_reactive_one_is_throttled(tmp_path):
    with running_lab(str(SPECS / "cpu.yaml"), "ntk", tmp_path, db=True) as lab:
        url = lab.ctl.url.removesuffix("/api/v1")
        agents = {"h1": start_agent(lab.lab, "h1", url, tmp_path / "spool",
                                    token_file=str(tmp_path / "token"), log_dir=tmp_path)}
        try:
            # the loop starts with three periods of history and its first two are judged
            pred, p0 = _run_policy(lab, "predictive", 5, 3, tmp_path)
            react, r0 = _run_policy(lab, "reactive", 3, 1, tmp_path)
        finally:
            stop_agents(agents)
    rises = [p0 + k * PERIOD + LOW_STEPS for k in (3, 4)]
    raised = [pred.quota_at(r - 0.2) for r in rises]
    pred_throttled = [pred.throttled(r - 0.5, r + HIGH_STEPS - 1) for r in rises]
    lowered = [min(pred.quotas(r + HIGH_STEPS + 1, r + PERIOD - 3)) for r in rises[:1]]
    r_rises = [r0 + k * PERIOD + LOW_STEPS for k in (1, 2)]
    react_throttled = [react.throttled(r - 0.5, r + HIGH_STEPS - 1) for r in r_rises]
    figures = dict(raised=raised, pred_throttled=pred_throttled, lowered=lowered,
                   react_throttled=react_throttled)
    print(f"compute loop figures: {figures}")
    # raised before the rise (about 0.72 here: the horizon covers the bucket in which the rise
    # first shows in full); that it was enough is what the throttled time through the rise says
    assert all(q >= 0.9 * HIGH for q in raised), figures
    assert all(t <= 0.1 for t in pred_throttled), figures  # through the rise: near zero
    assert all(q <= 0.8 * HIGH for q in lowered), figures  # released below the peak's demand after it
    assert all(t >= 0.5 for t in react_throttled), figures  # the threshold only follows the rise
