"""Packet captures replayed on the lab, rewritten to the lab's addresses first.

:func:`rewrite` maps a capture onto one tenant application between two lab hosts: the capture's
*local* address (by default the one in most packets) becomes the client host, every other
address the server host; of the TCP and UDP packets of the application's protocol, those from the
local address go client -> server with the application's port as destination port, the others
server -> client with it as source port. MACs, addresses and ports are rewritten and checksums
recomputed; packets of other protocols (ARP, IPv6, ICMP, the other transport) are left out and
counted. The result is two captures, one per direction, holding nothing but lab addresses -
:func:`check_lab_only` verifies that before anything is sent. Sizes, payloads, TCP flags and
timing are kept.

:func:`replay` sends both directions with ``tcpreplay`` from inside the two hosts' network
namespaces, at the capture's timing times ``speed``.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from topologies import NetworkSpec

from . import ovsns


class PcapError(ValueError):
    """The capture cannot be rewritten or replayed; the message names the parameter."""


@dataclass(frozen=True)
class Rewritten:
    forward: Path  # client -> server
    reverse: Path  # server -> client
    forward_packets: int
    reverse_packets: int
    skipped: dict[str, int]
    local_ip: str
    duration_s: float


def rewrite(pcap: str | Path, out_dir: str | Path, spec: NetworkSpec, tenant: str, app: str, src: str,
            dst: str, local_ip: str | None = None) -> Rewritten:
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapReader, wrpcap

    try:
        t = spec.tenant(tenant)
    except KeyError:
        raise PcapError(f"tenant: no tenant {tenant!r} in spec {spec.name}") from None
    a = next((x for x in t.applications if x.name == app), None)
    if a is None:
        raise PcapError(f"app: tenant {tenant} has no application {app!r}")
    for k, h in (("src", src), ("dst", dst)):
        if h not in t.hosts:
            raise PcapError(f"{k}: {h!r} is not a host of tenant {tenant}")
    if (src, dst, app) not in set(spec.allowed()):
        raise PcapError(f"src: the spec does not allow {src} -> {dst} on {app}")
    try:
        packets = list(PcapReader(str(pcap)))
    except (OSError, ValueError) as e:  # scapy raises Scapy_Exception (a subclass of Exception)
        raise PcapError(f"pcap: cannot read {pcap}: {e}") from None
    except Exception as e:  # noqa: BLE001 - scapy's own format errors
        raise PcapError(f"pcap: {pcap} is not a packet capture: {e}") from None
    if not packets:
        raise PcapError(f"pcap: {pcap} holds no packets")
    if local_ip is None:
        seen = Counter()
        for p in packets:
            if IP in p:
                seen.update((p[IP].src, p[IP].dst))
        if not seen:
            raise PcapError(f"pcap: {pcap} holds no IPv4 packets")
        local_ip = seen.most_common(1)[0][0]
    layer = TCP if a.protocol == "tcp" else UDP
    hs, hd = spec.host(src), spec.host(dst)
    fwd, rev, skipped = [], [], Counter()
    for p in packets:
        if IP not in p or layer not in p:
            skipped[p.lastlayer().name if IP not in p else
                    ("TCP" if TCP in p else "UDP" if UDP in p else f"IP proto {p[IP].proto}")] += 1
            continue
        ip, l4 = p[IP], p[layer]
        outgoing = ip.src == local_ip
        if not outgoing and ip.dst != local_ip:
            skipped["not to or from the local address"] += 1
            continue
        seg = l4.copy()
        del seg.chksum
        if outgoing:
            seg.dport = a.port
            new = Ether(src=hs.mac, dst=hd.mac) / IP(src=hs.ip, dst=hd.ip, ttl=64, id=ip.id,
                                                     flags=ip.flags) / seg
        else:
            seg.sport = a.port
            new = Ether(src=hd.mac, dst=hs.mac) / IP(src=hd.ip, dst=hs.ip, ttl=64, id=ip.id,
                                                     flags=ip.flags) / seg
        new.time = p.time
        (fwd if outgoing else rev).append(new)
    if not fwd and not rev:
        raise PcapError(f"pcap: no {a.protocol.upper()} packet to or from {local_ip} in {pcap} "
                        f"(left out: {dict(skipped)})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    f_path, r_path = out / "forward.pcap", out / "reverse.pcap"
    wrpcap(str(f_path), fwd)
    wrpcap(str(r_path), rev)
    check_lab_only([f_path, r_path], spec)
    return Rewritten(f_path, r_path, len(fwd), len(rev), dict(skipped), local_ip,
                     float(packets[-1].time - packets[0].time))


def check_lab_only(paths, spec: NetworkSpec) -> None:
    """Raise :class:`PcapError` unless every packet carries only the lab hosts' MACs and IPs."""
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapReader

    macs = {h.mac for h in spec.hosts}
    ips = {h.ip for h in spec.hosts}
    for path in paths:
        for i, p in enumerate(PcapReader(str(path))):
            if Ether not in p or IP not in p or {p[Ether].src, p[Ether].dst} - macs or \
                    {p[IP].src, p[IP].dst} - ips:
                raise PcapError(f"pcap: packet {i} of {path} has an address outside the lab; "
                                "refusing to replay it")


_SENT = re.compile(r"Actual: (\d+) packets \((\d+) bytes\)")


def replay(lab, rw: Rewritten, src: str, dst: str, speed: float = 1.0) -> dict:
    """Send both directions from inside the hosts; {direction: packets, bytes sent}."""
    if not speed > 0:
        raise PcapError(f"speed: must be > 0 (got {speed!r})")
    procs = []
    for host, path, n in ((src, rw.forward, rw.forward_packets), (dst, rw.reverse, rw.reverse_packets)):
        if n:
            procs.append((path.stem, lab.host(host).popen(
                ["tcpreplay", f"--intf1={lab.prefix}{host}-eth0", f"--multiplier={speed:g}", str(path)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    out = {}
    for name, p in procs:
        text, _ = p.communicate(timeout=rw.duration_s / speed + 60)
        m = _SENT.search(text or "")
        if p.returncode != 0 or m is None:
            raise PcapError(f"tcpreplay ({name}): exit {p.returncode}: {(text or '').strip()[-300:]}")
        out[name] = {"packets": int(m.group(1)), "bytes": int(m.group(2))}
    return out


def admitted(lab, spec: NetworkSpec, tenant: str, app: str, src: str, dst: str) -> tuple[int, int]:
    """Packets the application's admission rules counted: (client -> server at the client's
    switch, server -> client at the server's switch). They include the hosts' own answers: a
    host's TCP stack resets every replayed segment of a connection it never opened."""
    from controller.cookies import DIR_FORWARD, DIR_REVERSE, Cookie
    from controller.tenancy import app_number, tenant_number

    tn, an = tenant_number(spec, tenant), app_number(spec, tenant, app)
    out = []
    for host, peer, direction in ((src, dst, DIR_FORWARD), (dst, src, DIR_REVERSE)):
        cookie = Cookie(tn, an, direction).encode()
        bridge = lab.prefix + spec.host(host).switch
        text = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge,
                               f"cookie={cookie:#x}/-1"], capture_output=True, text=True,
                              check=True, env=ovsns.env_for(bridge)).stdout
        ip = spec.host(peer).ip
        out.append(sum(int(m.group(1)) for line in text.splitlines() if f"nw_dst={ip}," in line
                       for m in [re.search(r"n_packets=(\d+)", line)] if m))
    return out[0], out[1]

