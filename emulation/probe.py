"""Reachability probes run inside lab hosts: ``python -m emulation.probe serve|check``.

``serve`` listens on the given TCP ports (accepts and closes) and UDP ports (echoes each datagram)
until killed. ``check`` reads a JSON list of targets ``{"ip", "proto", "port"}`` (proto ``tcp``,
``udp`` or ``icmp``) on stdin, probes them concurrently and prints one JSON result per target with
``ok`` and ``rtt_ms``. A TCP probe succeeds when the three-way handshake completes; a UDP probe
when the echo comes back (tried ``--tries`` times); an ICMP probe when ``ping`` gets a reply.
Denied traffic is dropped silently by the switches, so a failure is a timeout, not a refusal.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def serve(tcp_ports: list[int], udp_ports: list[int]) -> None:
    sel = selectors.DefaultSelector()
    for port in tcp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", port))
        s.listen(64)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "tcp")
    for port in udp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, "udp")
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            try:
                if key.data == "tcp":
                    conn, _ = s.accept()
                    conn.close()
                else:
                    data, addr = s.recvfrom(2048)
                    s.sendto(data, addr)
            except (BlockingIOError, ConnectionError):
                pass


def probe(target: dict, timeout_s: float, tries: int) -> dict:
    ip, proto, port = target["ip"], target["proto"], target.get("port")
    t0 = time.monotonic()
    ok = False
    if proto == "tcp":
        for _ in range(tries):
            try:
                with socket.create_connection((ip, port), timeout=timeout_s):
                    ok = True
                break
            except TimeoutError:
                continue  # a lost SYN (or ARP still resolving) - try again
            except OSError:
                break
    elif proto == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout_s)
            for i in range(tries):
                t0 = time.monotonic()
                s.sendto(f"netshadow-probe {i}".encode(), (ip, port))
                try:
                    data, _ = s.recvfrom(2048)
                    ok = data.startswith(b"netshadow-probe")
                    break
                except (TimeoutError, ConnectionRefusedError):
                    continue
    elif proto == "icmp":
        r = subprocess.run(["ping", "-n", "-c", str(tries), "-i", "0.2", "-W", str(max(1, int(timeout_s))),
                            ip], capture_output=True, text=True)
        ok = r.returncode == 0
    else:
        raise ValueError(f"proto: must be tcp, udp or icmp (got {proto!r})")
    return {**target, "ok": ok, "rtt_ms": round((time.monotonic() - t0) * 1000, 3) if ok else None}


def rtt_series(ip: str, port: int, interval_s: float, seconds: float, timeout_s: float = 0.5) -> list:
    """UDP echo probes to ``ip:port`` every ``interval_s`` for ``seconds``: each probe's RTT in
    ms, or None when no echo came back within ``timeout_s``. Both ends are timed by the kernel
    (``SO_TIMESTAMPNS``); an echo from :mod:`emulation.udpgen`'s receiver says how long the probe
    waited there (behind the load it is counting), and that is taken out, so the RTT is the
    network's: switches, links and the datapath, not two busy Python processes."""
    from .udpgen import HOLD, RTT_PROBE, SO_TIMESTAMPNS, _arrival

    out: list = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.settimeout(timeout_s)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            t0 = time.monotonic()
            msg = RTT_PROBE + str(i).encode()
            sent = time.time()
            s.sendto(msg, (ip, port))
            rtt = None
            while time.monotonic() - t0 < timeout_s:
                try:
                    data, anc, _, _ = s.recvmsg(2048, 64)
                except (TimeoutError, ConnectionRefusedError):
                    break
                if not data.startswith(msg) or len(data) not in (len(msg), len(msg) + HOLD.size):
                    continue  # an earlier probe's late echo
                back = _arrival(anc, time.time())
                held = 0.0
                if len(data) == len(msg) + HOLD.size:
                    arrived, answered = HOLD.unpack_from(data, len(msg))
                    held = max(0.0, answered - arrived)
                rtt = round(max(0.0, back - sent - held) * 1000, 3)
                break
            out.append(rtt)
            i += 1
            time.sleep(max(0.0, interval_s - (time.monotonic() - t0)))
    return out


def check(targets: list[dict], timeout_s: float, tries: int, workers: int) -> list[dict]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: probe(t, timeout_s, tries), targets))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emulation.probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--tcp", default="", help="comma-separated TCP ports")
    s.add_argument("--udp", default="", help="comma-separated UDP ports")
    c = sub.add_parser("check")
    c.add_argument("--timeout", type=float, default=1.0, help="seconds per try")
    c.add_argument("--tries", type=int, default=2)
    c.add_argument("--workers", type=int, default=32)
    r = sub.add_parser("rtt", help="periodic UDP echo probes; prints the RTTs (ms, null = lost)")
    r.add_argument("--ip", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--interval", type=float, default=0.2)
    r.add_argument("--seconds", type=float, required=True)
    a = ap.parse_args(argv)
    if a.cmd == "rtt":
        print(json.dumps(rtt_series(a.ip, a.port, a.interval, a.seconds)))
        return 0
    if a.cmd == "serve":
        ports = lambda text: [int(p) for p in text.split(",") if p]  # noqa: E731
        serve(ports(a.tcp), ports(a.udp))
        return 0
    targets = json.load(sys.stdin)
    for r in check(targets, a.timeout, a.tries, a.workers):
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
