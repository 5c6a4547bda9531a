"""Find and remove emulation objects by name prefix - and only those.

Used in every ``finally`` path of the lab and shadows, and by ``netshadow lab down`` after a
crash or ``kill -9``. Never ``mn -c``: that removes every Mininet object on the machine,
including another network's. Processes are found by their exact Mininet shell tag
(``mininet:<prefix>...``) in /proc and ended by pid.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import ovsns

LOG = logging.getLogger("netshadow.cleanup")
RUN_DIR = Path(os.environ.get("NETSHADOW_RUN_DIR", "/run/netshadow"))
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _pid_file(prefix: str) -> Path:
    return RUN_DIR / f"{prefix}.pids"


def register_pid(prefix: str, pid: int) -> None:
    """Record a helper process (e.g. a lab's controller) so that cleanup can end it by pid."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(_pid_file(prefix), "a") as f:
        f.write(f"{pid}\n")


def _registered(prefix: str) -> list[int]:
    """Registered pids still running a netshadow command (a recycled pid is left alone)."""
    try:
        lines = _pid_file(prefix).read_text().split()
    except OSError:
        return []
    alive = []
    for text in lines:
        try:
            argv = Path(f"/proc/{int(text)}/cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if b"netshadow" in argv:
            alive.append(int(text))
    return alive


@dataclass
class Leftovers:
    bridges: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)  # paths under /sys/fs/cgroup
    # a lab's own Open vSwitch (emulation.ovsns): its namespace and run directory
    datapaths: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.bridges or self.interfaces or self.pids or self.cgroups or self.datapaths)


def _run(args: list[str], env: dict[str, str] | None = None) -> str:
    return subprocess.run(args, check=False, capture_output=True, text=True, timeout=30,
                          env=env).stdout


def find(prefix: str, registered: bool = True) -> Leftovers:
    """What exists on this machine that carries ``prefix`` (and, with ``registered``, the live
    helper processes recorded for it with :func:`register_pid`)."""
    out = Leftovers()
    out.bridges = [b for b in _run(["ovs-vsctl", "--timeout=10", "list-br"]).split()
                   if b.startswith(prefix)]
    for own in ovsns.running(prefix):  # bridges in a lab's own Open vSwitch
        out.bridges += [b for b in _run(["ovs-vsctl", "--timeout=10", "list-br"],
                                        env=ovsns.env_for(own)).split() if b.startswith(prefix)]
    for line in _run(["ip", "-o", "link", "show"]).splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@")[0]
            if name.startswith(prefix):
                out.interfaces.append(name)
    tag = f"mininet:{prefix}".encode()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(tag) for a in argv):
            out.pids.append(int(d.name))
    if registered:
        out.pids += [p for p in _registered(prefix) if p not in out.pids]
    for ctrl in ("cpu", "cpuacct", "cpuset", "memory"):  # CPULimitedHost's cgroups (v1)
        base = CGROUP_ROOT / ctrl
        if base.is_dir():
            out.cgroups += [str(d) for d in base.iterdir() if d.is_dir() and d.name.startswith(prefix)]
    out.datapaths = ovsns.leftovers(prefix)
    return out


def own_prefixes(datapaths: list[str]) -> list[str]:
    """The lab prefixes of :func:`emulation.ovsns.leftovers`' entries."""
    out = []
    for entry in datapaths:
        kind, name = entry.split(" ", 1)
        out.append(Path(name).name if kind == "rundir" else name.removesuffix("dp"))
    return out


def remove(prefix: str) -> Leftovers:
    """Remove everything carrying ``prefix``; returns what was found (and removed)."""
    found = find(prefix)
    for pid in found.pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for path in (_pid_file(prefix), RUN_DIR / f"{prefix}.token"):  # what `lab up` wrote
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    system = [b for b in found.bridges if ovsns.owner_of(b) is None]  # the others go with their daemon
    if system:
        args = ["ovs-vsctl", "--timeout=20"]
        for b in system:
            args += ["--", "--if-exists", "del-br", b]
        subprocess.run(args, check=False, capture_output=True, timeout=60)
    for name in found.interfaces:
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True, timeout=10)
    for own in set(own_prefixes(found.datapaths)):
        ovsns.remove(own)  # its daemons by their pid files, its namespace, its run directory
    for path in found.cgroups:  # empty once the host shells are gone
        try:
            os.rmdir(path)
        except OSError as e:
            LOG.warning("cgroup %s not removed: %s", path, e)
    if not found.empty():
        LOG.info("removed %d bridges, %d interfaces, %d processes, %d own Open vSwitch with "
                 "prefix %s", len(found.bridges), len(found.interfaces), len(found.pids),
                 len(set(own_prefixes(found.datapaths))), prefix)
    return found
