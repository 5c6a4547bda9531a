"""Plans on real OVS through the REST API: a meter limits a 50 Mbit/s stream to its rate, raising
it in place loses nothing, applying twice changes nothing, a dry run touches nothing, and a plan
that fails half-way is rolled back to the previous flows and meters."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests

from emulation.iperf import wait_listening
from emulation.meters import settled

from .conftest import running_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab("default", "nti", tmp_path_factory.mktemp("plans"), db=True) as running:
        yield running


def post(lab, plan, dry=False):
    r = requests.post(f"{lab.ctl.url}/plans" + ("?dry_run=1" if dry else ""), json=plan, timeout=30,
                      headers={"Authorization": f"Bearer {lab.token}"})
    return r.status_code, r.json()


def video(rate):
    return {"name": f"video-{rate:g}", "allocations": [{"tenant": "red", "app": "video",
                                                         "rate_mbps": rate}]}


def stream(lab, mbps, seconds, at_start=None):
    """h1 -> h2 on red's video port: (sent, received) from the scapy generator and receiver."""
    spec = lab.spec
    h1, h2 = spec.host("h1"), spec.host("h2")
    rx = lab.lab.host("h2").popen([sys.executable, "-u", "-m", "emulation.udpgen", "recv", "--port",
                                   "5004", "--seconds", str(seconds + 10)], stdout=subprocess.PIPE, text=True)
    rx.stdout.readline()
    tx = lab.lab.host("h1").popen(
        [sys.executable, "-m", "emulation.udpgen", "send", "--iface", f"{lab.lab.prefix}h1-eth0",
         "--src-mac", h1.mac, "--dst-mac", h2.mac, "--src-ip", h1.ip, "--dst-ip", h2.ip,
         "--dport", "5004", "--rate-mbps", str(mbps), "--seconds", str(seconds)],
        stdout=subprocess.PIPE, text=True)
    if at_start:
        time.sleep(seconds / 3)
        at_start()
    sent = json.loads(tx.communicate(timeout=seconds + 30)[0])
    got = json.loads(rx.communicate(timeout=30)[0])
    return sent, got


def dump(lab, what):
    return {br: subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", what, br, "--no-stats"]
                               if what == "dump-flows" else ["ovs-ofctl", "-O", "OpenFlow13", what, br],
                               capture_output=True, text=True, check=True).stdout
            for br in lab.lab.switch_names()}


def meters(lab):
    return {br: sorted(ln.strip() for ln in text.splitlines() if "meter=" in ln or "rate=" in ln)
            for br, text in dump(lab, "dump-meters").items()}


def test_meter_limits_a_50_mbit_stream(lab):
    code, res = post(lab, video(20))
    assert code == 200 and res["outcome"] == "applied", res
    assert len(res["diff"]["meters_added"]) == 1 and res["diff"]["flows_modified"] >= 2
    sent, got = stream(lab, 50, 6)
    assert sent["l2_bps"] == pytest.approx(50e6, rel=0.02)
    delivered = got["l2_bytes"] * 8 / sent["seconds"]
    assert delivered == pytest.approx(20e6, rel=0.05)


def test_same_plan_twice_changes_nothing_and_dry_run_touches_nothing(lab):
    post(lab, video(20))
    before = (dump(lab, "dump-flows"), meters(lab))
    code, res = post(lab, video(20))
    assert code == 200 and res["outcome"] == "unchanged" and res["diff"]["switches"] == 0
    code, res = post(lab, video(35), dry=True)
    assert code == 200 and res["outcome"] == "dry run"
    assert res["diff"]["meters_modified"][0]["rate_kbps"] == 35000
    assert (dump(lab, "dump-flows"), meters(lab)) == before
    assert requests.get(f"{lab.ctl.url}/plans/current", timeout=5).json()["plan"]["name"] == "video-20"


def test_raising_the_meter_in_place_loses_no_packet(lab):
    post(lab, video(20))
    first, last = lab.spec.host("h1").switch, lab.spec.host("h2").switch
    before = settled_counts(lab, first, last)
    results = []
    sent, got = stream(lab, 15, 9, at_start=lambda: results.append(post(lab, video(30))))
    code, res = results[0]
    assert code == 200 and res["outcome"] == "applied"
    assert res["diff"]["meters_modified"] and not res["diff"]["meters_deleted"]
    assert res["diff"]["flows_added"] == 0 and res["diff"]["flows_deleted"] == 0
    # not one packet lost inside the switches: every one admitted at h1's switch (counted before
    # the meter) left h2's switch - a meter deleted and re-added, or a flow re-installed, would
    # drop some or reset the counters. The receiver's own count is no measure of the switches: a
    # busy host drops packets in front of the userspace datapath.
    after = settled_counts(lab, first, last)
    admitted, delivered = after[0] - before[0], after[1] - before[1]
    assert admitted > 10_000 and delivered == admitted, (admitted, delivered)
    assert got["distinct"] >= 0.99 * sent["packets"]


def test_plan_failing_half_way_is_rolled_back(lab):
    post(lab, video(20))
    before_flows, before_meters = dump(lab, "dump-flows"), meters(lab)
    # a meter that the plan will add already exists on s4 (h2 is red's db client there), so the
    # switch refuses the meter add with an OpenFlow error after other switches took their changes
    plan = {"name": "clash", "allocations": [{"tenant": "red", "app": "video", "rate_mbps": 20},
                                             {"tenant": "red", "app": "db", "rate_mbps": 5}]}
    meter_id = (1 << 8) | 2  # tenant red = 1, app db = 2
    br = lab.lab.prefix + "s4"
    subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-meter", br,
                    f"meter={meter_id},kbps,band=type=drop,rate=1000"], check=True)
    lab.expected_log_errors.append("OpenFlow error type=12 code=1")  # OFPMMFC_METER_EXISTS
    code, res = post(lab, plan)
    assert code == 409 and res["outcome"].startswith("rolled back"), res
    assert "type=12 code=1" in res["reason"]
    assert res["restored"] == "video-20"
    assert dump(lab, "dump-flows") == before_flows
    assert meters(lab) == before_meters  # the clashing meter is gone too
    assert requests.get(f"{lab.ctl.url}/plans/current", timeout=5).json()["plan"]["name"] == "video-20"
    history = requests.get(f"{lab.ctl.url}/plans/history", timeout=5).json()["history"]
    assert history[0]["plan"]["name"] == "clash" and history[0]["outcome"].startswith("rolled back")
    assert {"apply", "dry_run"} <= {h["action"] for h in history}


def test_invalid_plans_get_4xx_naming_the_field(lab):
    before = meters(lab)
    for plan, field in ((video(500), "allocations[0].rate_mbps"),
                        ({"allocations": [{"tenant": "nobody", "app": "x", "rate_mbps": 1}]},
                         "allocations[0].tenant")):
        code, res = post(lab, plan)
        assert code == 400 and res["field"] == field
    r = requests.post(f"{lab.ctl.url}/plans", json=video(10), timeout=5)
    assert r.status_code == 401
    assert meters(lab) == before


def test_throughput_regression_after_an_apply_rolls_back_by_itself(lab):
    post(lab, video(40))
    results = []

    def cut():  # a plan that squeezes the running stream, watched for 4 s
        r = requests.post(f"{lab.ctl.url}/plans?watch_s=4", json=video(10), timeout=30,
                          headers={"Authorization": f"Bearer {lab.token}"})
        results.append((r.status_code, r.json()))

    sent, got = stream(lab, 30, 24, at_start=cut)  # the cut comes at 8 s; the check at ~15 s
    code, res = results[0]
    assert code == 200 and res["outcome"] == "applied" and res["watch_s"] == 4
    history = requests.get(f"{lab.ctl.url}/plans/history", timeout=5).json()["history"]
    rollback = history[0]
    assert rollback["action"] == "rollback" and "regression: red/video" in rollback["outcome"], rollback
    assert requests.get(f"{lab.ctl.url}/plans/current", timeout=5).json()["plan"]["name"] == "video-40"
    assert any("rate=40000" in ln for lines in meters(lab).values() for ln in lines)


def link_tx_bytes(lab, a: str, b: str) -> int:
    from topologies import wire

    port = wire(lab.spec).neighbour_port(a, b)
    text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", lab.lab.prefix + a, str(port)],
                          capture_output=True, text=True, check=True).stdout
    return int(text.split("tx pkts")[1].split("bytes=")[1].split(",")[0])


def data_packets(lab, switch: str, table: int) -> int:
    """h1 -> h2 IPv4 packets matched in ``table`` of ``switch`` (every rule, old path and new)."""
    h1, h2 = lab.spec.host("h1").ip, lab.spec.host("h2").ip
    text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", lab.lab.prefix + switch,
                           f"table={table},tcp,nw_src={h1},nw_dst={h2}"],
                          capture_output=True, text=True, check=True).stdout
    text += subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", lab.lab.prefix + switch,
                            f"table={table},ip,nw_src={h1},nw_dst={h2}"],
                           capture_output=True, text=True, check=True).stdout
    seen, total = set(), 0
    for line in text.splitlines():
        if "n_packets=" not in line:
            continue
        key = line.split("actions=")[0].split("priority=")[-1]
        if key in seen:
            continue
        seen.add(key)
        total += int(line.split("n_packets=")[1].split(",")[0])
    return total


def settled_counts(lab, first: str, last: str) -> tuple[int, int]:
    """h1 -> h2 packets admitted at ``first`` (table 0) and forwarded at ``last`` (table 1),
    once OVS has folded its datapath's statistics into the rules."""
    return settled(lambda: (data_packets(lab, first, 0), data_packets(lab, last, 1)))


def test_path_change_loses_no_packet_of_a_steady_tcp_stream(lab):
    from controller.routing import Router, shortest_paths
    from controller.tenancy import compile_network

    post(lab, video(20))
    current = compile_network(lab.spec).paths[("h1", "h2")]
    alt = next(p for p in shortest_paths(Router(lab.spec).adj, current[0], current[-1]) if p != current)
    srv = lab.lab.host("h2").popen(["iperf3", "-s", "-1", "-p", "80"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
    wait_listening(lab.lab.host("h2"), 80)
    before_alt = link_tx_bytes(lab, alt[0], alt[1])
    first, last = lab.spec.host("h1").switch, lab.spec.host("h2").switch
    admitted0, delivered0 = data_packets(lab, first, 0), data_packets(lab, last, 1)
    cl = lab.lab.host("h1").popen(["iperf3", "-c", lab.spec.host("h2").ip, "-p", "80", "-b", "20M",
                                   "-t", "10", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        code, res = post(lab, {"name": "moved", "allocations": [
            {"tenant": "red", "app": "video", "rate_mbps": 20},
            {"tenant": "red", "app": "web", "rate_mbps": 60, "path": list(alt)}]})
        assert code == 200 and res["outcome"] == "applied", res
        assert res["diff"]["phases"] >= len(alt)  # the new path went in hop by hop
        out = json.loads(cl.communicate(timeout=40)[0])
    finally:
        for p in (cl, srv):
            if p.poll() is None:
                p.kill()
                p.wait()
    sent = out["end"]["sum_sent"]
    # not one segment lost in the move: every data packet admitted at h1's switch left the last
    # switch towards h2 (TCP's own retransmit count is no measure here: segments that arrive out
    # of order for a moment are retransmitted by RACK although none was lost)
    counts = settled_counts(lab, first, last)
    admitted, delivered = counts[0] - admitted0, counts[1] - delivered0
    assert admitted > 10_000 and delivered == admitted, (admitted, delivered, sent["retransmits"])
    assert sent["bits_per_second"] == pytest.approx(20e6, rel=0.1)
    moved = link_tx_bytes(lab, alt[0], alt[1]) - before_alt
    assert moved > 10e6, moved  # about 7 s of 20 Mbit/s took the new path
