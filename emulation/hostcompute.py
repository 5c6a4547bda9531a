"""A CPU-limited host's compute in a load run: its cgroup's quota set from the plan, the
calibrated CPU load (:mod:`emulation.cpuload`) at the forecast's shares, and the cgroup's own
counters (``cpuacct.usage``, ``cpu.stat``'s ``throttled_time``) before and after.

The judgement keeps the plan apart from the machine, as the flows' does: a load that got less
CPU than it asked for while its cgroup was throttled hit the plan's quota - a compute
bottleneck, and the plan fails; one that got less without being throttled lost the CPU to
something else on this machine - the host's doing, and the run is untrusted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from .report import ComputeResult

CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CGROUP_CPUACCT = Path("/sys/fs/cgroup/cpuacct")
DELIVERY_OBJECTIVE = 0.99  # of the CPU asked for, as for bandwidth
SLACK_CORES = 0.01  # what a duty-cycled load misses of its share without any cause
THROTTLE_EVIDENCE_S = 0.05  # throttled longer than this over a run: the quota bit


@dataclass(frozen=True)
class ComputeDemand:
    tenant: str
    host: str
    shares: tuple[float, ...]  # of one CPU, one per forecast step


def throttled_seconds(cgroup: str) -> float:
    """Cumulative seconds ``cgroup`` was held back by its CPU quota (``cpu.stat``)."""
    stat = dict(line.split() for line in (CGROUP_CPU / cgroup / "cpu.stat").read_text().splitlines())
    return int(stat.get("throttled_time", 0)) / 1e9


def counts(cgroup: str) -> tuple[float, float]:
    """(CPU seconds used, seconds throttled) of ``cgroup``, cumulative."""
    used = int((CGROUP_CPUACCT / cgroup / "cpuacct.usage").read_text()) / 1e9
    return used, throttled_seconds(cgroup)


def quota(cgroup: str) -> float | None:
    """The cgroup's CPU quota in cores (None: unlimited)."""
    q = int((CGROUP_CPU / cgroup / "cpu.cfs_quota_us").read_text())
    return None if q < 0 else q / int((CGROUP_CPU / cgroup / "cpu.cfs_period_us").read_text())


def set_quota(cgroup: str, cores: float | None) -> None:
    """Set the cgroup's quota to ``cores`` of one CPU (None: unlimited)."""
    period = int((CGROUP_CPU / cgroup / "cpu.cfs_period_us").read_text())
    value = -1 if cores is None else max(1000, int(cores * period))
    (CGROUP_CPU / cgroup / "cpu.cfs_quota_us").write_text(str(value))


def start_load(host, d: ComputeDemand, step_s: float, start: float):
    """The calibrated load in ``host`` (a lab host), from wall-clock ``start``."""
    import subprocess

    return host.popen([sys.executable, "-m", "emulation.cpuload", "--step", f"{step_s:.6f}",
                       "--start", f"{start:.6f}", "--shares", ",".join(f"{s:.4f}" for s in d.shares)],
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(d: ComputeDemand, before: tuple[float, float], after: tuple[float, float],
           seconds: float, quota_cores: float | None) -> ComputeResult:
    return ComputeResult(d.tenant, d.host, round(sum(d.shares) / len(d.shares), 4),
                         round((after[0] - before[0]) / seconds, 4), round(after[1] - before[1], 4),
                         quota_cores)


def judge(r: ComputeResult) -> tuple[str | None, str | None]:
    """(the plan's shortfall, the host's disturbance), either None."""
    if r.used_cores >= DELIVERY_OBJECTIVE * r.asked_cores - SLACK_CORES:
        return None, None
    what = f"host {r.host} got {r.used_cores:.2f} of the {r.asked_cores:.2f} CPU it asked for"
    if r.throttled_s > THROTTLE_EVIDENCE_S:
        q = "no quota" if r.quota_cores is None else f"its quota of {r.quota_cores:.2f}"
        return f"{what}: {q} held it back for {r.throttled_s:.2f} s", None
    return None, f"{what} without being throttled: the machine's CPUs were busy"
