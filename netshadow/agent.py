"""``netshadow agent``: CPU, memory and network I/O of one host, posted to the controller.

What is measured (every ``interval`` seconds):

* **network** - bytes received/sent on every interface but ``lo`` of the host's network namespace
  (``/proc/<pid>/net/dev``), as bit/s;
* **cpu** - cores in use: the host's cgroup (``cpuacct.usage``) when it has one (Mininet's
  ``CPULimitedHost``), else the summed user+system time of every process in the host's network
  namespace;
* **cpu_throttled** - with a cgroup: seconds per second the host was held back by its CPU quota
  (the growth of ``cpu.stat``'s ``throttled_time``). ``cpu`` can never exceed the quota, so
  ``cpu + cpu_throttled`` bounds what the host asked for from above: exact for a thread that is
  always runnable, more for one that would have slept through part of the time it was held back
  (a quota that bites is taken for a larger demand than it withheld, never a smaller one);
* **memory** - bytes: the cgroup's ``memory.usage_in_bytes``, else the summed resident set of
  those processes.

With ``--cgroup``, the agent also applies the compute the plan in force gives its host: the CPU
quota (``cpu_quotas``, a share of one CPU) to ``cpu.cfs_quota_us``, reported as ``cpu_quota``;
and the memory limit (``memory_limits``, MiB) to ``memory.limit_in_bytes`` of the host's memory
cgroup, when the host has one (the lab makes one per CPU-limited host), never below what the
host uses now (a limit under its use would make the kernel reclaim or kill), reported as
``memory_limit``. Processes of the host's namespace that are not in that memory cgroup yet are
moved into it first (Mininet starts some of them from outside the host's shell; what they
allocated before is charged to it only where the kernel still moves charges).

The host is the network namespace of ``--netns-pid`` (default: the agent's own). On a real host
the agent runs there and reaches the controller over the management network; Mininet hosts
have no management network, so the lab runs each host's agent beside it, in the root namespace,
pointed at the host's shell with ``--netns-pid``.

Delivery: every reading first goes to a local SQLite spool with a sequence number, then the
oldest unacknowledged readings are posted in order. The controller stores a batch atomically and
answers the last sequence number it holds; the agent then deletes those rows. If the controller
is unreachable the spool grows and is drained, in order, when it answers again; a restarted agent
resends what its spool still holds, and the controller ignores sequence numbers it already
has, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from emulation import hostcompute

LOG = logging.getLogger("netshadow.agent")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
MEMORY_SLACK = 1.1  # a memory limit is never set below this times what the host uses


class Spool:
    """Readings waiting for the controller's acknowledgement, in a SQLite file."""

    def __init__(self, path: str | Path):
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # AUTOINCREMENT: a sequence number is never reused, even after its row is deleted
        self.db.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                        " payload TEXT NOT NULL)")

    def append(self, reading: dict) -> int:
        cur = self.db.execute("INSERT INTO spool (payload) VALUES (?)", (json.dumps(reading),))
        return cur.lastrowid

    def pending(self, limit: int) -> list[dict]:
        rows = self.db.execute("SELECT seq, payload FROM spool ORDER BY seq LIMIT ?", (limit,))
        return [{"seq": seq, **json.loads(p)} for seq, p in rows]

    def ack(self, seq: int) -> None:
        self.db.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM spool").fetchone()[0]

    def close(self) -> None:
        self.db.close()


class HostReader:
    """Cumulative counters of one host (the network namespace of ``pid``)."""

    def __init__(self, pid: int | None = None, cgroup: str | None = None):
        self.pid = pid or os.getpid()
        self.netns = os.readlink(f"/proc/{self.pid}/ns/net")
        self.cgroup = cgroup

    def _namespace_pids(self) -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if os.readlink(d / "ns" / "net") == self.netns:
                        out.append(int(d.name))
                except OSError:
                    continue
        return out

    def net_bytes(self) -> tuple[int, int]:
        rx = tx = 0
        for line in Path(f"/proc/{self.pid}/net/dev").read_text().splitlines()[2:]:
            name, data = line.split(":", 1)
            if name.strip() == "lo":
                continue
            f = data.split()
            rx += int(f[0])
            tx += int(f[8])
        return rx, tx

    def cpu_seconds(self) -> float:
        if self.cgroup:
            p = Path("/sys/fs/cgroup/cpuacct") / self.cgroup / "cpuacct.usage"
            if p.exists():
                return int(p.read_text()) / 1e9
        total = 0
        for pid in self._namespace_pids():
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12])  # utime, stime (clock ticks)
        return total / CLK_TCK

    def throttled_seconds(self) -> float | None:
        """Cumulative seconds the cgroup's tasks were throttled (None without a cgroup)."""
        if not self.cgroup:
            return None
        try:
            return hostcompute.throttled_seconds(self.cgroup)
        except OSError:
            return None

    def memory_cgroup(self) -> Path | None:
        """The host's memory cgroup directory, if it has one."""
        if not self.cgroup:
            return None
        p = Path("/sys/fs/cgroup/memory") / self.cgroup
        return p if p.is_dir() else None

    def join_memory_cgroup(self) -> int:
        """Move the namespace's processes that are elsewhere into the memory cgroup; how many."""
        cg = self.memory_cgroup()
        if cg is None:
            return 0
        inside = {int(x) for x in (cg / "cgroup.procs").read_text().split()}
        moved = 0
        for pid in self._namespace_pids():
            if pid in inside:
                continue
            try:
                (cg / "cgroup.procs").write_text(str(pid))
                moved += 1
            except OSError:
                continue  # it ended meanwhile
        return moved

    def memory_bytes(self) -> int:
        if self.cgroup:
            p = Path("/sys/fs/cgroup/memory") / self.cgroup / "memory.usage_in_bytes"
            if p.exists():
                return int(p.read_text())
        total = 0
        for pid in self._namespace_pids():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
            except OSError:
                continue
        return total


class Agent:
    def __init__(self, controller: str, host: str, spool: Spool, reader: HostReader,
                 interval_s: float = 1.0, token: str | None = None, batch: int = 500):
        if interval_s <= 0:
            raise ValueError(f"interval: must be > 0 s (got {interval_s!r})")
        self.url = controller.rstrip("/") + "/api/v1/agents/samples"
        self.host = host
        self.spool = spool
        self.reader = reader
        self.interval_s = interval_s
        self.batch = batch
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self._prev: tuple[float, float, int, int, float | None] | None = None
        self._reachable = True
        self.stop_event = threading.Event()
        self.plan_url = controller.rstrip("/") + "/api/v1/plans/current"
        self.quota: float | None = None  # the CPU share last applied to the host's cgroup
        self.memory_limit: float | None = None  # MiB last applied to the host's memory cgroup

    def read(self) -> dict | None:
        """One reading as rates since the previous call (None on the first call)."""
        t = time.time()
        cpu = self.reader.cpu_seconds()
        throttled = self.reader.throttled_seconds()
        rx, tx = self.reader.net_bytes()
        prev, self._prev = self._prev, (t, cpu, rx, tx, throttled)
        if prev is None:
            return None
        dt = t - prev[0]
        out = {"t": t, "cpu": max(0.0, (cpu - prev[1]) / dt), "memory_bytes": self.reader.memory_bytes(),
               "rx_bps": max(0, rx - prev[2]) * 8 / dt, "tx_bps": max(0, tx - prev[3]) * 8 / dt}
        if throttled is not None and prev[4] is not None:
            out["cpu_throttled"] = max(0.0, (throttled - prev[4]) / dt)
        return out

    def send_pending(self) -> int:
        """Post spooled readings oldest first until the spool is empty or a post fails."""
        sent = 0
        while True:
            items = self.spool.pending(self.batch)
            if not items:
                return sent
            try:
                r = self.session.post(self.url, json={"host": self.host, "samples": items}, timeout=5)
            except requests.RequestException as e:
                if self._reachable:
                    LOG.warning("controller unreachable (%s); spooling", e.__class__.__name__)
                self._reachable = False
                return sent
            if r.status_code != 200:
                LOG.error("controller refused samples: %s %s", r.status_code, r.text[:200])
                self._reachable = False
                return sent
            if not self._reachable:
                LOG.info("controller reachable again; sending %d spooled readings", len(self.spool))
            self._reachable = True
            self.spool.ack(r.json()["acked"])
            sent += len(items)

    def apply_quota(self) -> float | None:
        """Apply the plan's compute for this host to its cgroups: the CPU quota
        (``cpu.cfs_quota_us``) and the memory limit (``memory.limit_in_bytes``, never below what
        the host uses now). Returns the CPU share in force. Without a cgroup, or for what the plan
        does not set for the host, nothing changes."""
        if not self.reader.cgroup or not self._reachable:
            return self.quota
        try:
            plan = self.session.get(self.plan_url, timeout=5).json().get("plan") or {}
        except (requests.RequestException, ValueError):
            return self.quota
        share = (plan.get("cpu_quotas") or {}).get(self.host)
        if share is not None and share != self.quota:
            hostcompute.set_quota(self.reader.cgroup, share)
            LOG.info("host %s: CPU quota %.2f of one CPU", self.host, share)
            self.quota = share
        mib = (plan.get("memory_limits") or {}).get(self.host)
        if mib is not None and mib != self.memory_limit:
            self.apply_memory_limit(float(mib))
        return self.quota

    def apply_memory_limit(self, mib: float) -> None:
        cg = self.reader.memory_cgroup()
        if cg is None:
            LOG.warning("host %s: the plan sets a memory limit but the host has no memory cgroup",
                        self.host)
            self.memory_limit = mib  # said once, not every reading
            return
        self.reader.join_memory_cgroup()
        used = int((cg / "memory.usage_in_bytes").read_text())
        limit = max(int(mib * MIB), int(used * MEMORY_SLACK))
        (cg / "memory.limit_in_bytes").write_text(str(limit))
        if limit > mib * MIB:
            LOG.warning("host %s: memory limit %.0f MiB is under its use %.0f MiB; set %.0f MiB",
                        self.host, mib, used / MIB, limit / MIB)
        else:
            LOG.info("host %s: memory limit %.0f MiB", self.host, mib)
        self.memory_limit = mib

    def run(self) -> None:
        while not self.stop_event.is_set():
            reading = self.read()
            if reading is not None:
                if self.quota is not None:
                    reading["cpu_quota"] = self.quota
                if self.memory_limit is not None and self.reader.memory_cgroup() is not None:
                    reading["memory_limit"] = self.memory_limit
                self.spool.append(reading)
            self.send_pending()
            try:
                self.apply_quota()
            except OSError as e:
                LOG.error("host %s: cannot apply the plan's compute: %s", self.host, e)
            self.stop_event.wait(self.interval_s)


@dataclass(frozen=True)
class AgentSettings:
    """One agent's settings, checked once: ``ValueError`` naming the flag and the value."""

    controller: str  # REST base URL
    host: str  # this host's name in the spec
    interval_s: float = 1.0
    spool: Path | None = None  # default /var/lib/netshadow/agent-HOST.db
    netns_pid: int | None = None
    cgroup: str | None = None
    token: str | None = None

    def __post_init__(self):
        if not self.controller.startswith(("http://", "https://")):
            raise ValueError(f"--controller: must be an http(s):// URL (got {self.controller[:80]!r})")
        if not self.host:
            raise ValueError("--host: must not be empty")
        if not self.interval_s > 0:
            raise ValueError(f"--interval: must be > 0 s (got {self.interval_s})")
        if self.netns_pid is not None and not Path(f"/proc/{self.netns_pid}").exists():
            raise ValueError(f"--netns-pid: no process {self.netns_pid}")

    @property
    def spool_path(self) -> Path:
        return self.spool or Path(f"/var/lib/netshadow/agent-{self.host}.db")


def main(s: AgentSettings) -> int:
    reader = HostReader(s.netns_pid, s.cgroup)
    spool_path = s.spool_path
    spool_path.parent.mkdir(parents=True, exist_ok=True)
    agent = Agent(s.controller, s.host, Spool(spool_path), reader, s.interval_s, s.token)

    def stop(signum, frame):
        agent.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("agent for host %s -> %s every %.1f s (spool %s)", s.host, agent.url, s.interval_s,
             spool_path)
    agent.run()
    agent.spool.close()
    return 0
