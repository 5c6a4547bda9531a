"""Integration tier: real Open vSwitch, Mininet and the os-ken controller, as root.

Skips with a reason when a prerequisite is missing; with ``NETSHADOW_REQUIRE_LAB=1`` (set by
``make test``, which installs everything first) a missing prerequisite is a failure instead, so
CI can never pass by skipping. Every lab uses its own name prefix and free ports, dumps flows
into the test's tmpdir on teardown, and is removed in a ``finally``; the controller log must hold
no traceback and no error line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emulation import cleanup
from emulation.controller_proc import ControllerProcess, free_port
from tests.tiers import apply_tier
from topologies import NetworkSpec, bundled, load_spec

TEST_PREFIXES = ("nti", "ntj", "ntk", "ntl", "ntm", "ntn")


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("ovs-vsctl", "ovs-ofctl", "mnexec", "ping", "ethtool"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run scripts/bootstrap.sh)"
    r = subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True)
    if r.returncode != 0:
        return "Open vSwitch is not running (run scripts/bootstrap.sh)"
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        return "mininet is not importable"
    return None


def pytest_collection_modifyitems(config, items):
    apply_tier(items, Path(__file__).parent, pytest.mark.integration, _missing(),
               "NETSHADOW_REQUIRE_LAB", "integration")


@dataclass
class RunningLab:
    spec: NetworkSpec
    spec_path: str
    lab: object
    ctl: ControllerProcess
    health: dict
    token: str
    workdir: Path
    expected_log_errors: list[str] = field(default_factory=list)


def dump_switches(lab, workdir: Path) -> None:
    for br in lab.switch_names():
        for what in ("dump-flows", "dump-meters"):
            out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", what, br], capture_output=True,
                                 text=True, timeout=20)
            (workdir / f"{br}-{what}.txt").write_text(out.stdout + out.stderr)


def assert_clean_log(path: Path, expected: tuple[str, ...] = ()) -> None:
    """No traceback and no error line, except lines holding one of ``expected`` (errors a test
    provoked on purpose)."""
    text = path.read_text() if path.exists() else ""
    bad = [ln for ln in text.splitlines() if ("Traceback" in ln or " ERROR " in ln)
           and not any(e in ln for e in expected)]
    assert not bad, f"controller log {path} has errors: {bad[:5]}"


SPECS = Path(__file__).parent / "specs"


@contextmanager
def running_lab(spec_name: str, prefix: str, workdir: Path, db: bool = False,
                controller_args: tuple[str, ...] = ()):
    """A controller process and a lab for a bundled spec name or a path; with ``db`` the
    controller keeps telemetry in ``workdir/netshadow.db``."""
    from emulation.lab import Lab

    spec_path = str(spec_name) if Path(spec_name).exists() else str(bundled(spec_name))
    spec = load_spec(spec_path)
    token = "integration-token"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "token").write_text(token)
    of_port, rest_port = free_port(), free_port()
    ctl = ControllerProcess(spec_path, of_port, rest_port, log_path=workdir / "controller.log",
                            extra_args=["--token-file", str(workdir / "token"), *controller_args],
                            db_path=workdir / "netshadow.db" if db else None)
    lab = None
    running = None
    try:
        ctl.start()
        lab = Lab(spec, prefix=prefix, controller_port=of_port)
        lab.start()
        health = ctl.wait_ready(timeout_s=60)
        running = RunningLab(spec, spec_path, lab, ctl, health, token, workdir)
        yield running
    finally:
        try:
            if lab is not None and lab.net is not None:
                dump_switches(lab, workdir)
        finally:
            if lab is not None:
                lab.stop()
            ctl.stop()
            if running is not None and running.ctl is not ctl:  # a test replaced the controller
                running.ctl.stop()
    assert lab.leftovers is not None and lab.leftovers.empty(), \
        f"Mininet's teardown left {lab.leftovers}"
    assert cleanup.find(prefix).empty()
    assert_clean_log(workdir / "controller.log", tuple(running.expected_log_errors) if running else ())


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    yield
    if _missing():
        return
    for prefix in TEST_PREFIXES:
        left = cleanup.find(prefix)
        assert left.empty(), f"prefix {prefix}: {left}"
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.strip()
    assert netns == "", f"network namespaces left: {netns}"
