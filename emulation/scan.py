"""Scan probes, run inside a lab host: ``python -m emulation.scan --iface IF < targets.json``.

The probing packets of a network scanner, repurposed: for every target, ``--count`` TCP SYN
probes (to TCP application ports), UDP datagrams (to UDP application ports, answered by the
echo server of :mod:`emulation.probe`) and ICMP echo requests, crafted with scapy as Ethernet
frames addressed to the destination's MAC (no ARP needed) and sent with ``srp``. A target is
reachable when any probe is answered - SYN/ACK or RST both prove the path is open - and each
answer gives a round-trip time. Prints one JSON object per target.

With ``--wait-start`` the targets come as one JSON line, scapy is imported and every probe
crafted, ``ready`` is printed, and the probes go when a second line arrives: a load run starts
its scanners before the load, so a dozen processes importing scapy do not compete with the load
for the CPU while it is measured.
"""

from __future__ import annotations

import json
import random
import sys


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m emulation.scan")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--src-mac", required=True)
    ap.add_argument("--src-ip", required=True)
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="seconds to wait for answers after the last probe (a denied one never gets one)")
    ap.add_argument("--wait-start", action="store_true",
                    help="targets on one line; print 'ready' once crafted, probe on the next line")
    a = ap.parse_args(argv)
    targets = json.loads(sys.stdin.readline()) if a.wait_start else json.load(sys.stdin)

    from scapy.config import conf
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.sendrecv import srp

    conf.verb = 0
    packets, owner = [], []
    rnd = random.Random(7)
    for i, t in enumerate(targets):
        for k in range(a.count):
            base = Ether(src=a.src_mac, dst=t["mac"]) / IP(src=a.src_ip, dst=t["ip"])
            if t["proto"] == "tcp":
                p = base / TCP(sport=rnd.randint(20000, 60000), dport=t["port"], flags="S",
                               seq=rnd.randint(0, 2**31))
            elif t["proto"] == "udp":
                p = base / UDP(sport=rnd.randint(20000, 60000), dport=t["port"]) / \
                    f"netshadow-probe {i}.{k}".encode()
            else:
                p = base / ICMP(id=(i + 1) & 0xFFFF, seq=k)
            packets.append(p)
            owner.append(i)
    # capture only what can be an answer: the host may be receiving a flood of load traffic
    # (to application ports) that a Python sniffer could not keep up with
    flt = "icmp or tcp or (udp and dst portrange 20000-60000)"
    if a.wait_start:
        for p in packets:
            bytes(p)  # build every layer now, not under the load
        print("ready", flush=True)
        sys.stdin.readline()
    answered, _ = srp(packets, iface=a.iface, timeout=a.timeout, retry=0, inter=0.001, filter=flt)
    rtts: dict[int, list[float]] = {i: [] for i in range(len(targets))}
    index = {id(p): n for n, p in enumerate(packets)}
    for sent, reply in answered:
        n = index.get(id(sent))
        if n is None:  # scapy may copy packets; fall back to matching by fields
            n = next((j for j, p in enumerate(packets) if bytes(p) == bytes(sent)), None)
        if n is not None:
            rtts[owner[n]].append((reply.time - sent.sent_time) * 1000)
    for i, t in enumerate(targets):
        print(json.dumps({**t, "reachable": bool(rtts[i]), "rtt_ms": sorted(rtts[i])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
