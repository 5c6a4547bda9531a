"""iperf3 between lab hosts, with what was really sent counted at L2.

iperf3 reports UDP payload bytes and datagrams; OpenFlow counters count Ethernet frames. The L2
size of a datagram is payload + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) bytes.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass

UDP_L2_OVERHEAD = 8 + 20 + 14


class IperfError(RuntimeError):
    """An iperf3 server did not come up, or a run failed (its message is iperf3's own)."""


def wait_listening(host, port: int, udp: bool = False, timeout_s: float = 10.0) -> None:
    """Wait until a socket listens on ``port`` inside lab ``host``'s namespace (``ss``)."""
    flag = "-Hlun" if udp else "-Hltn"
    deadline = time.monotonic() + timeout_s
    while not host.cmd(f"ss {flag} 'sport = :{port}'").strip():
        if time.monotonic() >= deadline:
            raise IperfError(f"port: nothing listens on {port} in {host.name} after {timeout_s:g} s")
        time.sleep(0.05)


@dataclass(frozen=True)
class UdpRun:
    payload_bytes: int
    packets: int
    seconds: float
    started: float  # wall-clock seconds

    @property
    def l2_bytes(self) -> int:
        return self.payload_bytes + self.packets * UDP_L2_OVERHEAD

    @property
    def l2_bps(self) -> float:
        return self.l2_bytes * 8 / self.seconds


def _udp_sum(out: str, what: str) -> dict:
    """The ``end.sum`` of a UDP client's JSON report. iperf3 3.12 exits 0 after some failures
    (e.g. "control socket has closed unexpectedly") and reports them in the JSON's ``error``,
    with an empty ``end``: that is raised, naming iperf3's own message."""
    try:
        doc = json.loads(out)
    except json.JSONDecodeError:
        raise IperfError(f"{what}: no JSON report: {out[-400:]!r}") from None
    if "error" in doc or "sum" not in doc.get("end", {}):
        raise IperfError(f"{what}: {doc.get('error', 'the report has no end.sum')}")
    return doc["end"]["sum"]


class UdpStream:
    """Start with :meth:`start`, collect with :meth:`result` (blocks until the run ends)."""

    def __init__(self, lab, src: str, dst: str, port: int, mbps: float, seconds: float,
                 length: int = 1200):
        self.lab, self.src, self.dst, self.port = lab, src, dst, port
        self.mbps, self.seconds, self.length = mbps, seconds, length
        self.server = self.client = None
        self.started = 0.0

    def start(self) -> UdpStream:
        dst_ip = self.lab.spec.host(self.dst).ip
        self.server = self.lab.host(self.dst).popen(
            ["iperf3", "-s", "-1", "-p", str(self.port)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_listening(self.lab.host(self.dst), self.port)  # iperf3 -s listens on TCP for control
        self.started = time.time()
        self.client = self.lab.host(self.src).popen(
            ["iperf3", "-c", dst_ip, "-p", str(self.port), "-u", "-b", f"{self.mbps}M",
             "-l", str(self.length), "-t", str(self.seconds), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def result(self) -> UdpRun:
        try:
            out, err = self.client.communicate(timeout=self.seconds + 30)
            if self.client.returncode != 0:
                raise IperfError(f"iperf3 {self.src}->{self.dst}: exit {self.client.returncode}: "
                                 f"{(out + err)[-400:]}")
            end = _udp_sum(out, f"iperf3 {self.src}->{self.dst}")
            return UdpRun(int(end["bytes"]), int(end["packets"]), float(end["seconds"]), self.started)
        finally:
            for p in (self.client, self.server):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
