"""Shadow networks beside a production lab: the same reachability, meters that lose what they
should, an over-subscribed link named as the bottleneck, a plan that opens a denied port caught,
production untouched, and a killed shadow cleaned up by prefix."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from controller.plan import Allocation, Plan, parse_plan
from emulation import cleanup
from emulation.isolation import expected_cases, run_probes
from emulation.shadow import FlowDemand, Shadow, ShadowError
from models.forecast import Forecast, SeriesForecast
from topologies import bundled, load_spec

from .conftest import running_lab


def port_bytes(bridges: list[str]) -> int:
    """Bytes received plus sent on every port of ``bridges``."""
    total = 0
    for br in bridges:
        text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", br], capture_output=True,
                              text=True, check=True).stdout
        total += sum(int(x) for x in re.findall(r"bytes=(\d+)", text))
    return total


@pytest.fixture(scope="module")
def prod_and_shadow(tmp_path_factory):
    with running_lab("default", "nti", tmp_path_factory.mktemp("prod")) as prod:
        shadow = Shadow(prod.spec, prefix="ntm", workdir=tmp_path_factory.mktemp("shadow"))
        with shadow:
            yield prod, shadow
        assert cleanup.find("ntm").empty() and not shadow.token_path.exists()


def test_replica_reproduces_production_reachability(prod_and_shadow):
    prod, shadow = prod_and_shadow
    cases = expected_cases(prod.spec)
    production = {(r.case.src, r.case.dst, r.case.proto, r.case.port): r.observed
                  for r in run_probes(prod.lab, prod.spec, cases)}
    shadow.apply(None)
    report = shadow.run([], duration_s=1)
    replica = {(p.src, p.dst, p.proto, p.port): p.reachable for p in report.paths}
    assert replica == production
    assert report.violations == () and sum(replica.values()) == 25


def test_meter_below_offered_loses_the_difference_and_production_is_untouched(prod_and_shadow):
    prod, shadow = prod_and_shadow
    before = port_bytes(prod.lab.switch_names())
    plan = parse_plan({"name": "tight", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 20}]}, prod.spec)
    shadow.apply(plan)
    report = shadow.run([FlowDemand("red", "video", "h1", "h2", "udp", 5004, (30.0,)),
                         FlowDemand("blue", "dns", "h4", "h5", "udp", 53, (40.0,))], duration_s=8)
    red = next(f for f in report.flows if f.app == "video")
    assert red.offered_mbps == pytest.approx(30, rel=0.05)
    # the meter's own counters: it passed its rate and dropped the rest of what reached it (a
    # busy host may drop some before the meter, so the meter's share is at most the difference)
    assert red.meter_passed_mbps == pytest.approx(20, rel=0.05)
    assert 0 < red.meter_dropped <= (red.offered_mbps - red.meter_passed_mbps) / red.offered_mbps + 0.005
    # the receiver got at most what left the meter (less only what the host itself dropped)
    assert red.delivered_mbps <= red.meter_passed_mbps * 1.01
    assert red.loss >= red.meter_dropped - 0.005
    assert report.verdict == "fail" and any("red/video: its meter dropped" in r for r in report.reasons), \
        (report.disturbances, report.links, report.flows)
    blue = next(f for f in report.flows if f.app == "dns")
    assert blue.meter_dropped is None and blue.max_gap_s is not None  # no meter, but timed
    # the production network saw none of the shadow's ~70 MB: only its own hosts' housekeeping
    # (ARP, IPv6 neighbour and multicast listener messages of 42-110 bytes) moves its counters,
    # more of it the longer a busy machine takes (CI once measured 5096 bytes); a leak of the
    # shadow's traffic would move a thousand times the bound
    moved = port_bytes(prod.lab.switch_names()) - before
    assert moved < 64_000, moved


def test_oversubscribed_link_is_named_with_its_flows(prod_and_shadow):
    prod, shadow = prod_and_shadow
    shadow.apply(None)
    # h4 (s1) -> h5 (s4): both 2-hop paths include a 50 Mbit/s link
    report = shadow.run([FlowDemand("blue", "dns", "h4", "h5", "udp", 53, (70.0,))], duration_s=8,
                        probe=False)
    hot = [b for b in report.bottlenecks if b.startswith("link")]
    assert len(hot) == 1 and "blue/dns h4>h5" in hot[0], report.bottlenecks
    link = next(lk for lk in report.links if lk.mean_util > 0.9)
    assert set(link.link.split("-")) in ({"s1", "s3"}, {"s2", "s4"})
    # the flow loses what does not fit, and the link stays full: its short head-drop queue does
    # not exhaust the send buffer the datapath's ports share
    flow = report.flows[0]
    assert flow.loss >= (70 - 50) / 70 - 0.03, flow
    assert flow.delivered_mbps >= 0.9 * 50, flow
    assert any(b.startswith("flow blue/dns h4>h5 losing") for b in report.bottlenecks)


def test_flows_sharing_an_overloaded_link_each_get_a_share_and_nothing_is_lost_behind_it(prod_and_shadow):
    prod, shadow = prod_and_shadow
    # 60 Mbit/s from two ports of s1 pinned over s1-s3 (50 Mbit/s), then s3-s4 (100 Mbit/s)
    plan = parse_plan({"name": "shared-bottleneck", "allocations": [
        {"tenant": "red", "app": "video", "rate_mbps": 32, "path": ["s1", "s3", "s4"]},
        {"tenant": "blue", "app": "dns", "rate_mbps": 32, "path": ["s1", "s3", "s4"]}]}, prod.spec)
    shadow.apply(plan)
    try:
        report = shadow.run([FlowDemand("red", "video", "h1", "h2", "udp", 5004, (30.0,)),
                             FlowDemand("blue", "dns", "h4", "h5", "udp", 53, (30.0,))],
                            duration_s=8, probe=False)
    finally:
        shadow.apply(None)
    util = {lk.direction: lk.mean_util for lk in report.links}
    assert util["s1>s3"] >= 0.95, util
    # what the bottleneck let through crosses the next link whole: a full queue on s1-s3 once
    # made the datapath's sends to s3-s4 fail too
    assert util["s3>s4"] * 100 >= 0.95 * util["s1>s3"] * 50, util
    delivered = [f.delivered_mbps for f in report.flows]
    assert sum(delivered) >= 0.9 * 50, report.flows
    # neither flow takes the link: the queue drops the oldest packet, not whoever the datapath
    # happens to read last (a full FIFO made that a strict priority by port order)
    assert min(delivered) >= 0.35 * sum(delivered), report.flows
    assert report.verdict in ("fail", "untrusted"), report  # 25 of 30 Mbit/s each: too little


def test_plan_opening_a_denied_port_is_a_policy_violation(prod_and_shadow):
    prod, shadow = prod_and_shadow
    plan = parse_plan({"name": "open", "extra_policies": [
        {"tenant": "red", "from": ["h2"], "to": ["h1"], "apps": ["web"]}]}, prod.spec)
    shadow.apply(plan)
    report = shadow.run([], duration_s=1)
    assert report.violations == ("h2>h1 tcp/80: denied by policy but reachable",)
    assert report.verdict == "fail"


def test_plans_reach_the_shadow_through_its_api_and_a_dead_controller_is_restarted(prod_and_shadow):
    prod, shadow = prod_and_shadow
    url = shadow.controller_url

    def current():
        return requests.get(f"{url}/plans/current", timeout=10).json()["plan"]

    try:
        pid = shadow.ctl.proc.pid
        shadow.apply(parse_plan({"name": "video-10", "allocations": [
            {"tenant": "red", "app": "video", "rate_mbps": 10}]}, prod.spec))
        # applied by the enforcer's transaction, as production's plans are: same process
        assert shadow.ctl.proc.pid == pid and current()["name"] == "video-10"
        history = requests.get(f"{url}/plans/history", timeout=10).json()["history"]
        assert history[0]["plan"]["name"] == "video-10" and history[0]["action"] == "apply", history
        # a plan the controller refuses is an error naming it, and the plan in force stays
        bad = Plan("nobody", allocations=(Allocation("purple", "video", 5.0),))
        with pytest.raises(ShadowError, match="nobody"):
            shadow.apply(bad)
        assert current()["name"] == "video-10"
        # a controller that died is started again with the plan, on cleared switches
        shadow.ctl.proc.send_signal(signal.SIGKILL)
        shadow.ctl.proc.wait(timeout=10)
        shadow.apply(parse_plan({"name": "video-12", "allocations": [
            {"tenant": "red", "app": "video", "rate_mbps": 12}]}, prod.spec))
        assert shadow.ctl.proc.pid != pid and current()["name"] == "video-12"
        report = shadow.run([FlowDemand("red", "video", "h1", "h2", "udp", 5004, (15.0,))],
                            duration_s=3, probe=False)
        assert report.flows[0].meter_passed_mbps == pytest.approx(12, rel=0.05), report.flows
    finally:
        shadow.apply(None)
    assert shadow.token_path.stat().st_mode & 0o777 == 0o600  # the token is the shadow's alone


def forecast_file(path):
    times = tuple(f"2024-01-01T00:0{i}:00" for i in range(3))
    v = (20e6, 20e6, 20e6)
    sf = SeriesForecast("app/blue/dns/fwd/bps", times, v, ((0.1, v), (0.9, v)), "test")
    path.write_text(Forecast(times[0], 60.0, (sf,)).to_json())


def test_killed_shadow_is_cleaned_by_prefix_and_production_keeps_forwarding(tmp_path):
    with running_lab("default", "ntj", tmp_path / "prod") as prod:
        forecast_file(tmp_path / "f.json")
        proc = subprocess.Popen([sys.executable, "-m", "netshadow", "shadow", "run", "--spec",
                                 str(bundled("default")), "--forecast", str(tmp_path / "f.json"),
                                 "--duration", "60", "--prefix", "ntn"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(cleanup.find("ntn").bridges) < 5:
                time.sleep(0.5)
            time.sleep(3)  # traffic is flowing in the shadow now
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        left = cleanup.find("ntn")
        assert left.bridges and left.pids  # switches, host shells, its controller
        h1 = prod.lab.host("h1")
        assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {prod.spec.host('h2').ip}")
        r = subprocess.run([sys.executable, "-m", "netshadow", "shadow", "clean", "--prefix", "ntn"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert cleanup.find("ntn").empty()
        assert "1 received" in h1.cmd(f"ping -n -c1 -W2 {prod.spec.host('h2').ip}")
        assert len(cleanup.find("ntj").bridges) == len(prod.spec.switches)


def test_shadow_of_a_live_controller_uses_its_spec(prod_and_shadow):
    import requests

    prod, _ = prod_and_shadow
    live = requests.get(f"{prod.ctl.url}/spec", timeout=5).json()
    assert live == load_spec(bundled("default")).to_dict()
    assert json.dumps(live)  # serialisable as the shadow's spec file
