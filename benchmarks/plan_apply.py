"""Apply latency of a plan of 200 meters and 400 metered flows through the controller, against
ovs-ofctl installing the same meters and flows on a bridge of its own, in the same run (root).

    .venv/bin/python benchmarks/plan_apply.py [--repeat 3]

The spec is generated: 20 tenants, each with two clients on s1, one server on s2 and 10 UDP
applications; a plan allocating every application gives one meter per application on s1 and
meters both clients' admission rules: 200 meters, 400 flow modifications. The controller's time is
the POST /api/v1/plans round trip: diff, send, barrier on every switch, meter read-back. ovs-ofctl
has no batch command for meters, so it runs add-meter 200 times and add-flows once from a file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import requests
import yaml

from controller.plan import parse_plan
from controller.tenancy import compile_network
from emulation.controller_proc import ControllerProcess, free_port
from emulation.lab import Lab
from topologies import parse_spec

# OXM names as os-ken spells them -> ovs-ofctl's names
OFCTL_NAMES = {"eth_src": "dl_src", "eth_type": "dl_type", "ipv4_src": "nw_src", "ipv4_dst": "nw_dst",
               "ip_proto": "nw_proto"}


def make_spec() -> dict:
    hosts, tenants, n = [], [], 1
    for t in range(20):
        names = [f"t{t:02d}c1", f"t{t:02d}c2", f"t{t:02d}sv"]
        for name, sw in zip(names, ("s1", "s1", "s2")):
            hosts.append({"name": name, "switch": sw, "ip": f"10.3.{n // 250}.{n % 250 + 1}/16"})
            n += 1
        tenants.append({"id": f"t{t:02d}", "hosts": names,
                        "applications": [{"name": f"a{i}", "protocol": "udp", "port": 6000 + i}
                                         for i in range(10)],
                        "policies": [{"from": names[:2], "to": names[2:], "apps": "*"}]})
    return {"name": "bench", "switches": [{"name": "s1"}, {"name": "s2"}],
            "links": [{"a": "s1", "b": "s2", "capacity_mbps": 1000}], "hosts": hosts, "tenants": tenants}


def plan_dict(rate: float) -> dict:
    return {"name": f"all-{rate:g}", "allocations": [
        {"tenant": f"t{t:02d}", "app": f"a{i}", "rate_mbps": rate} for t in range(20) for i in range(10)]}


def ofctl_install(spec, plan, workdir: Path) -> tuple[float, float]:
    """Seconds for 200 add-meter calls and one add-flows of the metered flows, on a new bridge."""
    compiled = compile_network(spec, plan)
    br = "nbpofctl"
    subprocess.run(["ovs-vsctl", "--", "--may-exist", "add-br", br, "--", "set", "bridge", br,
                    "datapath_type=netdev", "protocols=OpenFlow13", "fail_mode=secure"], check=True)
    try:
        meters = compiled.meters[1]
        flows = [r for r in compiled.rules[1] if r.meter is not None]
        lines = []
        for r in flows:
            m = ",".join(f"{OFCTL_NAMES.get(k, k)}={v}" for k, v in r.match)
            lines.append(f"table=0,priority={r.priority},cookie={r.cookie:#x},{m},"
                         f"actions=meter:{r.meter},goto_table:1")
        (workdir / "flows.txt").write_text("\n".join(lines) + "\n")
        t0 = time.monotonic()
        for m in meters:
            subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-meter", br,
                            f"meter={m.meter_id},kbps,burst,band=type=drop,rate={m.rate_kbps},"
                            f"burst_size={m.burst_kbit}"], check=True)
        t1 = time.monotonic()
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", br, str(workdir / "flows.txt")],
                       check=True)
        t2 = time.monotonic()
        assert len(meters) == 200 and len(flows) == 400, (len(meters), len(flows))
        return t1 - t0, t2 - t1
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", br], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    data = make_spec()
    spec = parse_spec(data, "bench")
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "bench.yaml").write_text(yaml.safe_dump(data))
        (d / "token").write_text("bench")
        of, rest = free_port(), free_port()
        with ControllerProcess(d / "bench.yaml", of, rest, log_path=d / "ctl.log",
                               extra_args=["--token-file", str(d / "token")]) as ctl:
            with Lab(spec, prefix="nbp", controller_port=of) as _lab:
                ctl.wait_ready(timeout_s=120)
                ours = []
                for i in range(a.repeat):
                    body = plan_dict(10.0 + i)  # a new rate each time: 200 meters modified
                    if i == 0:
                        body = plan_dict(10.0)
                    t0 = time.monotonic()
                    r = requests.post(f"{ctl.url}/plans", json=body, timeout=60,
                                      headers={"Authorization": "Bearer bench"})
                    took = time.monotonic() - t0
                    res = r.json()
                    diff = res["diff"]
                    print(f"controller apply #{i + 1}: {took * 1000:.0f} ms, outcome {res['outcome']}, "
                          f"meters +{len(diff['meters_added'])} ~{len(diff['meters_modified'])}, "
                          f"flows +{diff['flows_added']} ~{diff['flows_modified']}")
                    ours.append(took)
        plan = parse_plan(plan_dict(10.0), spec)
        m_s, f_s = ofctl_install(spec, plan, d)
        print(f"ovs-ofctl: 200 x add-meter {m_s * 1000:.0f} ms + add-flows of 400 flows "
              f"{f_s * 1000:.0f} ms = {(m_s + f_s) * 1000:.0f} ms")
        print(f"controller median {statistics.median(ours) * 1000:.0f} ms (confirmed: barriers and "
              f"meter read-back) vs ovs-ofctl {(m_s + f_s) * 1000:.0f} ms (unconfirmed)")
        print(json.dumps({"controller_ms": [round(x * 1000) for x in ours],
                          "ofctl_ms": round((m_s + f_s) * 1000)}))


if __name__ == "__main__":
    main()
