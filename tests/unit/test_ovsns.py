"""Which Open vSwitch a bridge or interface belongs to: a lab's own (a run directory under
``/run/netshadow/ovs``) or the system's."""

from __future__ import annotations

import pytest

from emulation import cleanup, ovsns


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(cleanup, "RUN_DIR", tmp_path)
    (tmp_path / "ovs" / "nbs").mkdir(parents=True)
    (tmp_path / "ovs" / "nbs" / "db.sock").touch()
    (tmp_path / "ovs" / "nbw").mkdir()  # started, database not up (or gone)
    return tmp_path


def test_names_of_a_labs_own_ovs_are_sent_there_and_others_to_the_system(run_dir):
    assert ovsns.owner_of("nbss1") == "nbs" and ovsns.owner_of("nbss1-eth2") == "nbs"
    assert ovsns.owner_of("nbps1") is None and ovsns.owner_of("") is None
    assert ovsns.env_for("nbss1")["OVS_RUNDIR"] == str(run_dir / "ovs" / "nbs")
    assert ovsns.env_for("nbps1") is None
    assert ovsns.in_netns("nbs", ["ss", "-0"]) == [
        "ip", "netns", "exec", "nbsdp", "env", f"OVS_RUNDIR={run_dir / 'ovs' / 'nbs'}", "ss", "-0"]
    assert ovsns.in_netns("nbp", ["ss", "-0"]) == ["ss", "-0"]
    assert ovsns.vswitchd_pid_file("nbss2") == run_dir / "ovs" / "nbs" / "ovs-vswitchd.pid"
    assert ovsns.vswitchd_pid_file("nbps2") is None


def test_only_a_database_that_exists_is_asked_for_bridges(run_dir):
    assert ovsns.running("nb") == ["nbs"]
    assert ovsns.running("nbw") == []


def test_no_run_directory_means_the_systems(tmp_path, monkeypatch):
    monkeypatch.setattr(cleanup, "RUN_DIR", tmp_path / "absent")
    assert ovsns.owner_of("nbss1") is None and ovsns.running("nb") == []


def test_leftover_entries_name_their_lab_prefix():
    assert cleanup.own_prefixes(["netns nbsdp", "rundir /run/netshadow/ovs/nbs"]) == ["nbs", "nbs"]
