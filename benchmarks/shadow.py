"""Shadow build and teardown against a bare Mininet start of the same topology, and injection
accuracy. Run as root:

    .venv/bin/python benchmarks/shadow.py [--repeat 3]

Build: a bare Mininet (same Topo, userspace OVS, HTB links, no controller) built and started,
against a shadow (its controller process, the same Mininet network, every switch programmed),
alternately, in the same run; medians. Teardown: the shadow's stop (Mininet stop + prefix sweep +
controller). Injection: UDP flows from the scapy generator in an abilene shadow, delivered rate
against the target, for single flows of 10/25/50 Mbit/s and four 50 Mbit/s flows at once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from functools import partial

from emulation import cleanup
from emulation.lab import _quiet_htb_quantum
from emulation.shadow import FlowDemand, Shadow
from topologies import bundled, load_spec


def bare_mininet(spec, prefix: str) -> tuple[float, float]:
    from mininet.link import TCLink
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import OVSSwitch

    from topologies.mininet_topo import SpecTopo

    setLogLevel("warning")
    _quiet_htb_quantum()
    t0 = time.monotonic()
    net = Mininet(topo=SpecTopo(spec=spec, prefix=prefix), controller=None, link=TCLink,
                  switch=partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure"),
                  autoSetMacs=False, waitConnected=False)
    try:
        net.start()
        for h in net.hosts:
            for intf in h.intfList():
                h.cmd(f"ethtool -K {intf.name} tx off >/dev/null 2>&1")
        up = time.monotonic() - t0
    finally:
        t1 = time.monotonic()
        net.stop()
        cleanup.remove(prefix)
        down = time.monotonic() - t1
    return up, down


def shadow_build(spec, prefix: str, workdir: str) -> tuple[float, float]:
    sh = Shadow(spec, prefix=prefix, workdir=workdir)
    sh.start()
    t1 = time.monotonic()
    sh.stop()
    return sh.build_s, time.monotonic() - t1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--frame-bytes", type=int, default=1514, help="L2 size of the injected frames")
    ap.add_argument("--injection-only", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for name in () if a.injection_only else ("default", "abilene"):
            spec = load_spec(bundled(name))
            bare, shadow = [], []
            for i in range(a.repeat):
                bare.append(bare_mininet(spec, "nbm"))
                shadow.append(shadow_build(spec, "nbs", os.path.join(d, f"{name}{i}")))
            b_up = statistics.median(x[0] for x in bare)
            s_up = statistics.median(x[0] for x in shadow)
            s_down = statistics.median(x[1] for x in shadow)
            print(f"{name:8s} bare Mininet start {b_up:.2f} s | shadow build (controller + network + "
                  f"all switches programmed) {s_up:.2f} s = {s_up / b_up:.2f}x | shadow teardown "
                  f"{s_down:.2f} s (bare stop {statistics.median(x[1] for x in bare):.2f} s)")
        spec = load_spec(bundled("abilene"))
        pairs = [("hatla5", "hatla"), ("hchin", "hipls"), ("hdnvr", "hkscy"), ("hlosa", "hsnva")]
        with Shadow(spec, prefix="nbi", workdir=os.path.join(d, "inj"), frame_bytes=a.frame_bytes) as sh:
            for rates in ([10.0], [25.0], [50.0], [50.0, 50.0, 50.0, 50.0]):
                demands = [FlowDemand("backbone", "stream", s, t, "udp", 5002, (r,))
                           for (s, t), r in zip(pairs, rates)]
                rep = sh.run(demands, duration_s=8, probe=False)
                total = sum(f.delivered_mbps for f in rep.flows)
                worst = max(abs(f.delivered_mbps - r) / r for f, r in zip(rep.flows, rates))
                print(f"injection ({a.frame_bytes}-byte frames) {len(rates)} x {rates[0]:g} Mbit/s: offered "
                      f"{[round(f.offered_mbps, 2) for f in rep.flows]} delivered "
                      f"{[round(f.delivered_mbps, 2) for f in rep.flows]} (total {total:.1f} Mbit/s, "
                      f"worst deviation from target {worst:.1%})")


if __name__ == "__main__":
    main()
