"""A lab in an Open vSwitch of its own (:mod:`emulation.ovsns`): its switches are programmed and
forward like any lab's, the system's Open vSwitch never sees them, its daemon polls only the
lab's ports, and nothing of it outlives a stop or a crash."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from emulation import cleanup, ovsns
from emulation.controller_proc import ControllerProcess, free_port
from emulation.lab import Lab, LabError
from emulation.ovsns import OvsNamespace
from emulation.ports import read_ports
from topologies import bundled, load_spec

from .conftest import assert_clean_log


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _pids(prefix: str) -> list[int]:
    d = ovsns.rundir(prefix)
    return [int((d / f"{n}.pid").read_text().split()[0]) for n in ovsns.DAEMONS]


def _dp_ports(ctl: str | None = None) -> list[str]:
    """The ports of the userspace datapath of the daemon at control socket ``ctl`` (None: the
    system's)."""
    argv = ["ovs-appctl"] + (["-t", ctl] if ctl else []) + ["dpctl/show"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    return re.findall(r"port \d+: (\S+)", out)


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_a_lab_in_its_own_open_vswitch_forwards_alone_and_leaves_nothing(tmp_path):
    spec_path = bundled("default")
    spec = load_spec(spec_path)
    of_port, rest_port = free_port(), free_port()
    lab = Lab(spec, prefix="ntk", controller_port=of_port, controller_starting=True, own_ovs=True)
    ctl = None
    try:
        address = lab.start_ovs()
        assert address.startswith("169.254.250.")
        ctl = ControllerProcess(spec_path, of_port, rest_port, log_path=tmp_path / "controller.log",
                                extra_args=["--of-host", address]).start()
        lab.start()
        ctl.wait_ready(timeout_s=60)
        pids = _pids("ntk")
        h1 = lab.host("h1")
        assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {spec.host('h2').ip}")
        # its bridges are in its own database, not the system's
        system = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
        assert not [b for b in system if b.startswith("ntk")]
        assert sorted(cleanup.find("ntk").bridges) == sorted(lab.switch_names())
        # its daemon polls the lab's ports and nothing else; the system's none of the lab's
        own = _dp_ports(str(ovsns.rundir("ntk") / "ovs-vswitchd.ctl"))
        assert {p for p in own if p.startswith("ntk")} and all(
            p.startswith("ntk") or p == "ovs-netdev" for p in own), own
        assert not [p for p in _dp_ports() if p.startswith("ntk")]
        # counters are read from the daemon that holds the bridge
        assert read_ports("ntks1") and all(c.rx_bytes >= 0 for c in read_ports("ntks1").values())
    finally:
        lab.stop()
        if ctl is not None:
            ctl.stop()
    assert lab.leftovers is not None and lab.leftovers.empty(), lab.leftovers
    assert cleanup.find("ntk").empty()
    assert "ntkdp" not in _netns() and not ovsns.rundir("ntk").exists()
    assert not any(_alive(p) for p in pids)
    assert_clean_log(tmp_path / "controller.log")


def test_a_crashed_labs_own_open_vswitch_is_found_refused_and_removed_by_prefix():
    OvsNamespace("ntl").start()  # and never stopped, as by a crash
    try:
        pids = _pids("ntl")
        left = cleanup.find("ntl")
        assert "netns ntldp" in left.datapaths and "ntlc0" in left.interfaces, left
        with pytest.raises(LabError, match="netns ntldp"):
            Lab(load_spec(bundled("default")), prefix="ntl", own_ovs=True).start()
        assert all(_alive(p) for p in pids)  # a refused lab touches nothing
    finally:
        cleanup.remove("ntl")
    assert cleanup.find("ntl").empty() and "ntldp" not in _netns()
    assert not any(_alive(p) for p in pids)
