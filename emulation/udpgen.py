"""UDP load from scapy-crafted packets, sent as pre-serialised bytes on one raw socket.

Run inside a lab host: ``python -m emulation.udpgen send|recv ...``.

``send`` crafts one Ethernet/IPv4/UDP frame with scapy (UDP checksum 0, which IPv4 allows, so a
sequence number can be written into the payload without recomputing anything), serialises it
once, and sends it on a reused ``AF_PACKET`` socket, pacing to the target L2 rate with a schedule
(no drift: packet k leaves at start + k * interval). It addresses the destination by MAC, so no
ARP is needed. It reports what it *actually* sent: packets, L2 bytes, seconds.

``recv`` counts what arrives on a UDP port: packets, bytes, the highest sequence number seen and
the number of distinct sequence numbers, so loss = sent - received is exact. It also reports the
longest silence in the arriving stream (``max_gap_s``), timed by the kernel's receive timestamps
(``SO_TIMESTAMPNS``), so a receiver that was itself descheduled does not count: a gap means the
sender or the datapath stalled, and a meter's bucket overflowed meanwhile. It answers scan
probes (datagrams starting ``netshadow-probe``) like :mod:`emulation.probe`'s echo server, so a
port under load stays probeable; an RTT probe's answer carries the probe's kernel arrival time and
the time it was answered, so the prober can take the time it queued behind the load out of its
round trip (as TWAMP does).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import sys
import time

HEADER = 14 + 20 + 8  # Ethernet + IPv4 + UDP
MAGIC = b"NSHD"
RTT_PROBE = b"netshadow-probe rtt "
HOLD = struct.Struct("!dd")  # an RTT probe's arrival and answer times at the echoing host
# Linux <asm-generic/socket.h>; the socket module does not name it. The control message carries
# a struct timespec (two native longs: seconds, nanoseconds).
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("@ll")


def craft(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, sport: int, dport: int,
          frame_bytes: int) -> bytearray:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    payload = MAGIC + bytes(max(0, frame_bytes - HEADER - len(MAGIC)))
    pkt = Ether(src=src_mac, dst=dst_mac) / IP(src=src_ip, dst=dst_ip, ttl=64) / \
        UDP(sport=sport, dport=dport, chksum=0) / payload
    return bytearray(bytes(pkt))


def slot_offsets(seed: int, n: int = 4096) -> list[float]:
    """Where in its slot (0-1 of the inter-packet time) each packet of a jittered stream leaves;
    the same for a seed, so a shadow and production send the same pattern."""
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def send(iface: str, frame: bytearray, rates_bps: list[float], step_s: float,
         wait_start: bool = False, jitter_seed: int | None = None) -> dict:
    """Send at ``rates_bps[i]`` during step ``i`` (each ``step_s`` seconds long). With
    ``wait_start``, print ``ready`` and start at the wall-clock time (epoch seconds) read from
    stdin, so several senders and a replay share their step boundaries."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    if wait_start:
        print("ready", flush=True)
        at = float(sys.stdin.readline())
        while time.time() < at:
            time.sleep(min(0.01, max(0.0, at - time.time())))
    bits = len(frame) * 8
    # with a seed, each packet leaves at a random moment inside its own slot: the rate is kept
    # exactly, but streams of one rate no longer arrive in lock-step at a shared queue
    slot = [] if jitter_seed is None else slot_offsets(jitter_seed)
    off = HEADER + len(MAGIC)
    n = 0
    sent_bytes = 0
    start = time.perf_counter()
    end = start + step_s * len(rates_bps)
    step_start, step_n, step = start, 0, -1
    try:
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            i = min(int((now - start) / step_s), len(rates_bps) - 1)
            if i != step:  # a new step: restart the schedule at its rate
                step, step_start, step_n = i, start + i * step_s, 0
            rate = rates_bps[step]
            if rate <= 0:
                time.sleep(min(0.01, end - now))
                continue
            due = step_start + (step_n + (slot[step_n % len(slot)] if slot else 0.0)) * bits / rate
            if due > now:
                time.sleep(min(due - now, 0.002))
                continue
            struct.pack_into("!Q", frame, off, n)
            try:
                sent_bytes += s.send(frame)
                n += 1
                step_n += 1
            except BlockingIOError:
                time.sleep(0.0005)
    finally:
        s.close()
    took = time.perf_counter() - start
    return {"packets": n, "l2_bytes": sent_bytes, "seconds": took,
            "l2_bps": sent_bytes * 8 / took if took > 0 else 0.0}


def _arrival(ancdata, fallback: float) -> float:
    """The kernel's receive time (epoch seconds) from a datagram's control messages."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return fallback


def recv(port: int, seconds: float, idle_s: float = 2.0, ready=None, done: list | None = None,
         done_idle_s: float = 0.5) -> dict:
    """Count what arrives for ``seconds``, or until nothing came for ``idle_s`` after the first
    datagram. ``ready`` is called once the port is bound (default: print ``ready``). Once
    ``done`` holds a time (the sender has finished; the command sets it on SIGUSR1) it ends when
    nothing came for ``done_idle_s``: only what is still in flight is waited for, and a long
    ``idle_s`` does not end a stalled stream early."""
    done = done if done is not None else []
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    (ready or (lambda: print("ready", flush=True)))()
    seqs = set()
    n = nbytes = 0
    first = last = None
    arrived = None  # kernel time of the previous data datagram
    max_gap = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data, anc, _, addr = s.recvmsg(65535, 64)
        except TimeoutError:
            if last is not None and time.monotonic() - last > idle_s:
                break
            if done and time.monotonic() - max(last or 0.0, done[0]) > done_idle_s:
                break
            continue
        at = _arrival(anc, time.time())
        if data.startswith(b"netshadow-probe"):
            # a probe to this port: answer it like the probe server; an RTT probe also gets when
            # it arrived (kernel) and when it is answered, so that the time it waited behind the
            # load in this socket is not counted as the network's
            s.sendto(data + HOLD.pack(at, time.time()) if data.startswith(RTT_PROBE) else data, addr)
            continue
        now = time.monotonic()
        if arrived is not None:
            max_gap = max(max_gap, at - arrived)
        arrived = at
        first = first or now
        last = now
        n += 1
        nbytes += len(data) + HEADER
        if data[:4] == MAGIC and len(data) >= 12:
            seqs.add(struct.unpack_from("!Q", data, 4)[0])
    s.close()
    return {"packets": n, "l2_bytes": nbytes, "distinct": len(seqs),
            "seconds": (last - first) if first and last else 0.0, "max_gap_s": round(max_gap, 6)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emulation.udpgen")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    for k in ("iface", "src-mac", "dst-mac", "src-ip", "dst-ip"):
        s.add_argument(f"--{k}", required=True)
    s.add_argument("--sport", type=int, default=40000)
    s.add_argument("--dport", type=int, required=True)
    s.add_argument("--rate-mbps", required=True,
                   help="L2 Mbit/s, or a comma-separated schedule with one rate per step")
    s.add_argument("--seconds", type=float, required=True, help="total duration")
    s.add_argument("--frame-bytes", type=int, default=1242, help="L2 frame size (max 1514)")
    s.add_argument("--jitter-seed", type=int, default=None,
                   help="send each packet at a random point of its slot (this seed), not on it")
    s.add_argument("--wait-start", action="store_true",
                   help="print 'ready', then start at the epoch time read from stdin")
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--seconds", type=float, required=True)
    r.add_argument("--idle-s", type=float, default=2.0,
                   help="stop after this long without data (once data arrived)")
    a = ap.parse_args(argv)
    if a.cmd == "send":
        frame = craft(a.src_mac, a.dst_mac, a.src_ip, a.dst_ip, a.sport, a.dport, a.frame_bytes)
        rates = [float(x) * 1e6 for x in a.rate_mbps.split(",")]
        out = send(a.iface, frame, rates, a.seconds / len(rates), a.wait_start, a.jitter_seed)
    else:
        import signal

        done: list[float] = []  # SIGUSR1: the sender has finished
        signal.signal(signal.SIGUSR1, lambda *_: done.append(time.monotonic()))
        out = recv(a.port, a.seconds, a.idle_s, done=done)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
