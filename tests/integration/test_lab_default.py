"""default.yaml on real OVS + Mininet + os-ken: isolation, the live REST API, controller restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import requests

from emulation.controller_proc import ControllerProcess
from emulation.isolation import expected_cases, run_probes

from .conftest import assert_clean_log, running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab("default", "nti", tmp_path_factory.mktemp("default")) as running:
        yield running


def test_isolation_matches_policy(lab):
    cases = expected_cases(lab.spec)
    results = run_probes(lab.lab, lab.spec, cases)
    wrong = [(r.case, r.observed) for r in results if not r.conforms]
    assert wrong == []
    by_proto = {p: [r for r in results if r.case.proto == p] for p in ("tcp", "udp", "icmp")}
    # the matrix exercises allowed and denied cases of every kind
    for proto, rs in by_proto.items():
        assert any(r.observed for r in rs) and any(not r.observed for r in rs), proto
    # ping works exactly inside a tenant
    owner = {h: t.id for t in lab.spec.tenants for h in t.hosts}
    for r in by_proto["icmp"]:
        assert r.observed == (owner[r.case.src] == owner[r.case.dst])


def _switch_flow_count(br: str) -> tuple[int, set[str]]:
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br], capture_output=True,
                         text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if "cookie=" in ln]
    return len(lines), {ln.split("cookie=")[1].split(",")[0] for ln in lines}


def test_switches_hold_exactly_the_rules_the_api_reports(lab):
    api = requests.get(f"{lab.ctl.url}/flows", timeout=5).json()
    per_switch = {}
    for f in api["flows"]:
        per_switch[f["switch"]] = per_switch.get(f["switch"], 0) + 1
    for s in lab.spec.switches:
        n, cookies = _switch_flow_count(lab.lab.prefix + s.name)
        assert n == per_switch[s.name], s.name
        assert all(c.startswith("0x6e") for c in cookies)


def test_every_shaped_link_has_a_head_drop_queue_the_shared_send_buffer_pays_for(lab):
    from emulation import dpsock
    from emulation.lab import link_queue_packets

    packets = lab.lab.link_queue_packets
    assert packets == link_queue_packets(dpsock.send_buffer_bytes())

    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True,
                                      check=True).stdout)
    names = [x["ifname"] for x in links
             if x["ifname"].startswith(lab.lab.prefix + "s") and "-eth" in x["ifname"]]
    assert len(names) == 2 * len(lab.spec.links) + len(lab.spec.hosts), names
    for name in names:
        qdiscs = json.loads(subprocess.run(["tc", "-j", "qdisc", "show", "dev", name],
                                           capture_output=True, text=True, check=True).stdout)
        leaf = [q for q in qdiscs if q.get("parent") == "5:1"]
        assert [(q["kind"], q["options"]["limit"]) for q in leaf] == \
            [("pfifo_head_drop", packets)], (name, qdiscs)


def test_rest_api_live(lab):
    url = lab.ctl.url
    h = requests.get(f"{url}/health", timeout=5).json()
    assert h["status"] == "ok" and all(s["state"] == "ready" for s in h["switches"].values())
    assert len(requests.get(f"{url}/topology", timeout=5).json()["hosts"]) == 8
    assert len(requests.get(f"{url}/tenants", timeout=5).json()["tenants"]) == 3
    assert "/api/v1/flows" in requests.get(f"{url}/openapi.json", timeout=5).json()["paths"]
    r = requests.get(f"{url}/flows?switch=nope", timeout=5)
    assert r.status_code == 404 and r.json()["field"] == "switch"
    r = requests.get(f"{url}/flows?bogus=1", timeout=5)
    assert r.status_code == 400 and r.json()["field"] == "bogus"
    r = requests.post(f"{url}/switches/s1/resync", timeout=5)
    assert r.status_code == 401
    r = requests.post(f"{url}/switches/s1/resync", timeout=5,
                      headers={"Authorization": f"Bearer {lab.token}"})
    assert r.status_code == 200
    lab.ctl.wait_ready(timeout_s=20)
    assert requests.get(f"{url}/health", timeout=5).json()["switches"]["s1"]["programmed"] == 2


def test_controller_killed_and_restarted_reprograms_switches(lab):
    """kill -9 the controller: fail-secure switches keep their flows; a new controller process
    takes over on the same port and re-programs every switch from the spec."""
    old = lab.ctl
    os.kill(old.proc.pid, signal.SIGKILL)
    old.proc.wait(timeout=10)
    h1, h2 = lab.lab.host("h1"), lab.lab.host("h2")
    assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {lab.spec.host('h2').ip}")
    new = ControllerProcess(lab.spec_path, old.of_port, old.rest_port,
                            log_path=lab.workdir / "controller-restarted.log",
                            extra_args=old.extra_args, db_path=old.db_path)
    lab.ctl = new.start()
    health = new.wait_ready(timeout_s=60)
    assert all(s["programmed"] == 1 for s in health["switches"].values()), health
    assert "1 received" in h2.cmd(f"ping -n -c1 -W2 {lab.spec.host('h1').ip}")
    assert "1 received" not in h1.cmd(f"ping -n -c1 -W1 {lab.spec.host('h4').ip}")
    assert_clean_log(lab.workdir / "controller-restarted.log")
