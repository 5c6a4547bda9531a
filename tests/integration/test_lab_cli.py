"""`netshadow lab up` killed with SIGKILL leaves objects behind; `netshadow lab down` removes
exactly those, and nothing of another lab running beside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from emulation import cleanup
from topologies import bundled

from .conftest import free_port, running_lab


def test_lab_down_after_kill_9(tmp_path):
    with running_lab("default", "ntl", tmp_path / "other") as other:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netshadow", "lab", "up", "--spec", str(bundled("default")),
             "--prefix", "ntk", "--with-controller", "--of-port", str(free_port()),
             "--rest-port", str(free_port()), "--controller-log", str(tmp_path / "ctl.log"),
             "--db", str(tmp_path / "lab.db"), "--spool-dir", str(tmp_path / "spool")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 90
            seen = []
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                seen.append(line)
                if line.startswith("running") or proc.poll() is not None:
                    break
            assert any(ln.startswith("running") for ln in seen), "".join(seen)
            assert not cleanup.find("ntk").empty()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = cleanup.find("ntk")
        # bridges, host shells, the orphaned controller and agents (registered by pid) are still there
        assert left.bridges and left.pids
        cmdlines = [open(f"/proc/{p}/cmdline", "rb").read() for p in left.pids]
        assert any(b"controller" in c for c in cmdlines)
        assert sum(b"agent" in c for c in cmdlines) == len(other.spec.hosts)
        r = subprocess.run([sys.executable, "-m", "netshadow", "lab", "down", "--prefix", "ntk"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert cleanup.find("ntk").empty()
        assert not (cleanup.RUN_DIR / "ntk.token").exists()  # the token `lab up` generated
        # the other lab is untouched and still forwards
        assert len(cleanup.find("ntl").bridges) == len(other.spec.switches)
        h1 = other.lab.host("h1")
        assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {other.spec.host('h2').ip}")


def test_a_lab_refused_for_its_prefix_leaves_the_other_alone(tmp_path):
    from emulation.lab import Lab, LabError

    with running_lab("default", "ntl", tmp_path) as other:
        second = Lab(other.spec, prefix="ntl", controller_port=free_port())
        try:
            second.start()
        except LabError as e:
            assert "already exist" in str(e)
        else:
            raise AssertionError("a second lab with the same prefix must be refused")
        finally:
            second.stop()
        assert len(cleanup.find("ntl").bridges) == len(other.spec.switches)
        h1 = other.lab.host("h1")
        assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {other.spec.host('h2').ip}")
