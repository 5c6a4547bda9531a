"""Scan probes: crafted and dissected with scapy in the measuring process, sent and captured as
bytes inside a lab host (``python -m emulation.scan --iface IF``).

The probing packets of a network scanner, repurposed: for every target, ``count`` TCP SYN probes
(to TCP application ports), UDP datagrams (to UDP application ports, answered by the echo server
of :mod:`emulation.probe` or a load receiver) and ICMP echo requests, as Ethernet frames
addressed to the destination's MAC (no ARP needed). A target is reachable when any probe is
answered - SYN/ACK, RST or an ICMP error about the probe all prove the path is open - and each
answer gives a round-trip time.

:func:`craft` builds the probes (scapy, once, in the caller); the host side only sends those
bytes one millisecond apart on a raw socket, noting when each left, and captures every IPv4
frame addressed to its host until ``timeout`` seconds after the last, timed by the kernel
(``SO_TIMESTAMPNS``); :func:`match` dissects the captures with scapy and pairs each answer with
its probe (scapy's ``answers``). A dozen hosts scanning at once then start in milliseconds: a
process per host importing scapy cost the CPU seconds, and a what-if waited for them.

Host side protocol (``--wait-start`` is how a load run uses it): one JSON line ``{"frames":
[hex, ...], "ip": "10.0.0.1", "expect": answers the policy allows}`` on stdin, ``ready``
printed once the socket is open, the probes go when a second line arrives; without
``--wait-start`` they go at once. It prints one JSON object: ``{"sent": [epoch seconds per
frame], "replies": [[hex, epoch seconds], ...]}``.
"""

from __future__ import annotations

import json
import random
import socket
import sys
import time
from dataclasses import dataclass

from .udpgen import SO_TIMESTAMPNS, _arrival

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
CAPTURE_LIMIT = 20_000  # frames kept per scan: bounded whatever else reaches the host
QUIET_MIN_S = 0.1  # with every allowed answer in, at least this long without another


@dataclass(frozen=True)
class Probes:
    """One host's probes: the frames to send and, per frame, the target it is for."""

    frames: tuple[bytes, ...]
    owner: tuple[int, ...]  # index into the targets
    keys: tuple[tuple, ...] = ()  # per frame what an answer to it carries (see _key)


def _key(ip, reply: bool) -> tuple | None:
    """What pairs a probe and its answer: (target IP, protocol, target port or ICMP id, own
    port or ICMP sequence). An answer's is read from its own headers, or from the probe an ICMP
    error quotes."""
    from scapy.layers.inet import ICMP, TCP, UDP, IPerror, TCPerror, UDPerror

    if reply and ICMP in ip and ip[ICMP].type in (3, 11) and IPerror in ip:  # quotes the probe
        q = ip[IPerror]
        if TCPerror in q:
            return (q.dst, "tcp", q[TCPerror].dport, q[TCPerror].sport)
        if UDPerror in q:
            return (q.dst, "udp", q[UDPerror].dport, q[UDPerror].sport)
        return None
    far = ip.src if reply else ip.dst
    for proto, layer in (("tcp", TCP), ("udp", UDP)):
        if layer in ip:
            l4 = ip[layer]
            return (far, proto, l4.sport, l4.dport) if reply else (far, proto, l4.dport, l4.sport)
    if ICMP in ip:
        return (far, "icmp", ip[ICMP].id, ip[ICMP].seq)
    return None


def craft(src_mac: str, src_ip: str, targets: list[dict], count: int = 3, seed: int = 7) -> Probes:
    """``count`` probes per target (``{"mac", "ip", "proto", "port"}``), serialised."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.l2 import Ether

    rnd = random.Random(seed)
    frames, owner, keys = [], [], []
    for i, t in enumerate(targets):
        for k in range(count):
            base = Ether(src=src_mac, dst=t["mac"]) / IP(src=src_ip, dst=t["ip"])
            if t["proto"] == "tcp":
                p = base / TCP(sport=rnd.randint(20000, 60000), dport=t["port"], flags="S",
                               seq=rnd.randint(0, 2**31))
            elif t["proto"] == "udp":
                p = base / UDP(sport=rnd.randint(20000, 60000), dport=t["port"]) / \
                    f"netshadow-probe {i}.{k}".encode()
            else:
                p = base / ICMP(id=(i + 1) & 0xFFFF, seq=k)
            frames.append(bytes(p))
            owner.append(i)
            keys.append(_key(p[IP], reply=False))
    return Probes(tuple(frames), tuple(owner), tuple(keys))


def match(probes: Probes, n_targets: int, sent: list[float],
          replies: list[tuple[bytes, float]]) -> list[list[float]]:
    """Per target the round-trip times in ms of its answered probes (sorted): each capture is
    dissected with scapy, paired with the probe its headers name, and counted when scapy agrees
    that it answers that probe (a SYN/ACK acknowledges its sequence number, an echo reply
    carries its id)."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    index: dict[tuple, list[int]] = {}
    for n, k in enumerate(probes.keys):
        index.setdefault(k, []).append(n)
    rtts: list[list[float]] = [[] for _ in range(n_targets)]
    taken: set[int] = set()
    for raw, at in replies:
        reply = Ether(raw)
        if IP not in reply:
            continue
        for n in index.get(_key(reply[IP], reply=True), ()):
            if n not in taken and n < len(sent) and reply.answers(Ether(probes.frames[n])):
                taken.add(n)
                rtts[probes.owner[n]].append((at - sent[n]) * 1000)
                break
    return [sorted(r) for r in rtts]


def _may_answer(frame: bytes, own_ip: bytes) -> bool:
    """IPv4 to this host that can answer a probe: not another host's probe to this one (a bare
    SYN, an echo request, a datagram to an application port below 20000)."""
    if len(frame) < 38 or frame[12:14] != b"\x08\x00" or frame[30:34] != own_ip:
        return False
    proto, l4 = frame[23], 14 + (frame[14] & 0x0F) * 4
    if proto == 6:  # TCP: SYN/ACK or RST, not a SYN
        return len(frame) > l4 + 13 and frame[l4 + 13] & 0x3F != 0x02
    if proto == 1:  # ICMP: anything but an echo request
        return len(frame) > l4 and frame[l4] != 8
    if proto == 17:  # UDP: to one of the probes' own ports
        return len(frame) >= l4 + 4 and 20000 <= int.from_bytes(frame[l4 + 2:l4 + 4], "big") <= 60000
    return False


def answered_all(n_replies: int, expect: int, last_sent: float, last_reply: float,
                 now: float) -> bool:
    """Every allowed answer is in (``n_replies >= expect``) and, since the last one, nothing for
    twice as long as that one came after the last probe (at least :data:`QUIET_MIN_S`); epoch
    seconds."""
    if n_replies < expect:
        return False
    return now - last_reply >= max(QUIET_MIN_S, 2 * max(0.0, last_reply - last_sent))


def probe(iface: str, frames: list[bytes], own_ip: str, timeout_s: float, inter_s: float = 0.001,
          ready=None, expect: int | None = None) -> dict:
    """Send ``frames`` on ``iface`` ``inter_s`` apart and capture the IPv4 frames to ``own_ip``
    that may answer them, until ``timeout_s`` after the last one left. ``ready`` (if given) is
    called once the socket is open, and the probes go when it returns.

    With ``expect`` (the answers the policy allows: one per probe to a reachable target) the
    capture ends sooner, once that many arrived and then nothing for twice as long as the
    slowest of them took (at least :data:`QUIET_MIN_S`): a denied path that a plan opened by
    mistake answers as fast as the allowed ones, so a silence that long after the last answer
    is proof enough; on a busy host the answers come late and the wait grows with them."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setblocking(False)
    want = socket.inet_aton(own_ip)
    if ready:
        ready()
    sent: list[float] = []
    replies: list[tuple[bytes, float]] = []

    def drain() -> None:
        while len(replies) < CAPTURE_LIMIT:
            try:
                data, anc, _, addr = s.recvmsg(65535, 64)
            except BlockingIOError:
                return
            if addr[2] != PACKET_OUTGOING and _may_answer(data, want):
                replies.append((data, _arrival(anc, time.time())))

    try:
        drain()
        replies.clear()  # what arrived while waiting answers nothing
        for f in frames:
            sent.append(time.time())  # before: an answer can be stamped before send() returns
            s.send(f)
            drain()
            time.sleep(inter_s)
        last_sent = time.time()
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and len(replies) < CAPTURE_LIMIT:
            drain()
            if expect is not None and replies and \
                    answered_all(len(replies), expect, last_sent, replies[-1][1], time.time()):
                break
            time.sleep(0.005)
    finally:
        s.close()
    return {"sent": sent, "replies": [(d.hex(), t) for d, t in replies]}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m emulation.scan")
    ap.add_argument("--iface", required=True)
    ap.add_argument("--timeout", type=float, default=1.0,
                    help="seconds to wait for answers after the last probe (a denied one never gets one)")
    ap.add_argument("--wait-start", action="store_true",
                    help="print 'ready' once the socket is open, probe on the next stdin line")
    a = ap.parse_args(argv)
    job = json.loads(sys.stdin.readline())
    frames = [bytes.fromhex(x) for x in job["frames"]]

    def ready() -> None:
        if a.wait_start:
            print("ready", flush=True)
            sys.stdin.readline()

    print(json.dumps(probe(a.iface, frames, job["ip"], a.timeout, ready=ready,
                           expect=job.get("expect"))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
