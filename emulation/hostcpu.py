"""What the machine's CPUs did during a run: the share of all cores busy, and the busiest thread
of the Open vSwitch daemon.

Shadow and production run on the same cores as the load generators. On the userspace datapath,
ports that are not DPDK ports are polled and forwarded by ``ovs-vswitchd``'s main thread, so one
core's worth of that thread is the datapath's ceiling whatever the number of cores. A report
gives both beside its verdict, to read it by; they judge nothing (a thread at 95 % of a core
still forwarded a bottleneck's 50 Mbit/s to the packet): what the host failed to carry shows as
stalls, loss outside the meter, a generator behind its schedule or packets the datapath never
read (:mod:`emulation.loadrun`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

OVS_PID_FILE = Path(os.environ.get("NETSHADOW_OVS_PID_FILE", "/var/run/openvswitch/ovs-vswitchd.pid"))
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    wall_s: float  # time.monotonic()
    total_ticks: int  # all cores, /proc/stat
    idle_ticks: int  # idle + iowait
    ovs_threads: tuple[tuple[int, int], ...]  # (thread id, utime + stime ticks)
    steal_ticks: int = 0  # all cores: time the hypervisor ran something else (a virtual machine)


@dataclass(frozen=True)
class CpuUse:
    """CPU over an interval: ``busy`` is the share of all cores (0-1); ``ovs_thread_cores`` the
    busiest ``ovs-vswitchd`` thread in cores (0-1; None when the daemon's threads cannot be
    read); ``steal`` the share of all cores' time a hypervisor gave to other machines (0-1: on
    a virtual machine, time nothing here could run)."""

    seconds: float
    busy: float
    ovs_thread_cores: float | None
    steal: float = 0.0

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "busy": round(self.busy, 3),
                "ovs_thread_cores": None if self.ovs_thread_cores is None
                else round(self.ovs_thread_cores, 3), "steal": round(self.steal, 3)}


def _ovs_threads(pid_file: Path | None = None) -> tuple[tuple[int, int], ...]:
    try:
        pid = int((pid_file or OVS_PID_FILE).read_text().split()[0])
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (OSError, ValueError, IndexError):
        return ()
    out = []
    for t in tasks:
        try:
            stat = (t / "stat").read_text()
        except OSError:  # the thread ended
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out.append((int(t.name), int(fields[11]) + int(fields[12])))  # utime, stime
    return tuple(out)


def sample(ovs_pid_file: Path | None = None) -> CpuSample:
    """The machine's CPU counters and those of the ``ovs-vswitchd`` whose pid is in
    ``ovs_pid_file`` (default: the system's, :data:`OVS_PID_FILE`)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: the first eight count toward the total
    return CpuSample(time.monotonic(), sum(v[:8]), v[3] + v[4], _ovs_threads(ovs_pid_file),
                     v[7] if len(v) > 7 else 0)


def between(a: CpuSample, b: CpuSample) -> CpuUse:
    """The CPU used from sample ``a`` to sample ``b``."""
    wall = max(b.wall_s - a.wall_s, 1e-9)
    total = b.total_ticks - a.total_ticks
    busy = 1 - (b.idle_ticks - a.idle_ticks) / total if total > 0 else 0.0
    steal = (b.steal_ticks - a.steal_ticks) / total if total > 0 else 0.0
    thread = None
    if a.ovs_threads and b.ovs_threads:
        before = dict(a.ovs_threads)
        thread = max(((ticks - before[tid]) / CLK_TCK / wall for tid, ticks in b.ovs_threads
                      if tid in before), default=None)
    return CpuUse(wall, min(1.0, max(0.0, busy)), thread, min(1.0, max(0.0, steal)))
