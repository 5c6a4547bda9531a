"""Host agents for lab hosts: one ``netshadow agent`` per host, ended by pid.

Mininet hosts have no management network, so each agent runs in the root namespace, pointed at
its host's shell with ``--netns-pid`` (see :mod:`netshadow.agent`). Their pids are registered
under the lab's prefix, so ``netshadow lab down`` ends them after a crash.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from . import cleanup


def start_agent(lab, host: str, controller_url: str, spool_dir: Path, interval_s: float = 1.0,
                token_file: str | None = None, log_dir: Path | None = None) -> subprocess.Popen:
    spool_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "netshadow", "agent", "--controller", controller_url,
           "--host", host, "--interval", str(interval_s), "--spool", str(spool_dir / f"{host}.db"),
           "--netns-pid", str(lab.host(host).pid)]
    if token_file:
        cmd += ["--token-file", token_file]
    if lab.spec.host(host).cpu is not None:  # a CPULimitedHost: its cgroup carries the quota
        cmd += ["--cgroup", lab.prefix + host]
    log = open(log_dir / f"agent-{host}.log", "ab") if log_dir else subprocess.DEVNULL
    try:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    cleanup.register_pid(lab.prefix, p.pid)
    return p


def start_agents(lab, controller_url: str, spool_dir: Path, **kw) -> dict[str, subprocess.Popen]:
    return {h.name: start_agent(lab, h.name, controller_url, spool_dir, **kw)
            for h in lab.spec.hosts}


def stop_agents(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
