"""Scan probes crafted with scapy and their answers matched, without a network."""

from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether

from emulation.scan import QUIET_MIN_S, _may_answer, answered_all, craft, match

SRC_MAC, SRC_IP = "02:00:00:00:00:01", "10.0.0.1"
TARGETS = [{"mac": "02:00:00:00:00:02", "ip": "10.0.0.2", "proto": "tcp", "port": 80},
           {"mac": "02:00:00:00:00:02", "ip": "10.0.0.2", "proto": "udp", "port": 53},
           {"mac": "02:00:00:00:00:03", "ip": "10.0.0.3", "proto": "icmp", "port": None},
           {"mac": "02:00:00:00:00:03", "ip": "10.0.0.3", "proto": "tcp", "port": 22}]


def _answer(frame: bytes, kind: str) -> bytes:
    p = Ether(frame)
    ip = p[IP]
    back = Ether(src=p.dst, dst=p.src) / IP(src=ip.dst, dst=ip.src)
    if kind == "synack":
        return bytes(back / TCP(sport=ip[TCP].dport, dport=ip[TCP].sport, flags="SA",
                                ack=ip[TCP].seq + 1))
    if kind == "echo":
        return bytes(back / UDP(sport=ip[UDP].dport, dport=ip[UDP].sport) / bytes(ip[UDP].payload))
    if kind == "pong":
        return bytes(back / ICMP(type=0, id=ip[ICMP].id, seq=ip[ICMP].seq))
    # the kernel's "port unreachable" quoting the probe: the path is open
    return bytes(back / ICMP(type=3, code=3) / IPerror(bytes(ip))[IPerror] /
                 UDPerror(bytes(ip[UDP]))[UDPerror])


def test_three_probes_per_target_from_the_host_to_its_target():
    probes = craft(SRC_MAC, SRC_IP, TARGETS)
    assert len(probes.frames) == 12 and probes.owner == (0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3)
    first = Ether(probes.frames[0])
    assert first.src == SRC_MAC and first.dst == "02:00:00:00:00:02" and first[TCP].flags == "S"
    assert craft(SRC_MAC, SRC_IP, TARGETS).frames == probes.frames  # seeded: the same probes


def test_answers_are_matched_to_their_probes_with_round_trip_times():
    probes = craft(SRC_MAC, SRC_IP, TARGETS)
    sent = [100.0 + n * 0.001 for n in range(len(probes.frames))]
    f = probes.frames
    replies = [(_answer(f[0], "synack"), 100.0105),  # 10.5 ms after probe 0
               (_answer(f[4], "echo"), 100.006),
               (_answer(f[5], "unreach"), 100.007),
               (_answer(f[6], "pong"), 100.0065),
               (_answer(f[0], "synack"), 100.02),  # a duplicate answers nothing new
               (bytes(Ether(src="02:00:00:00:00:09", dst=SRC_MAC) / IP(src="10.0.0.9", dst=SRC_IP)
                      / UDP(sport=53, dport=1)), 100.01)]  # nobody's answer
    rtts = match(probes, len(TARGETS), sent, replies)
    assert [round(x, 3) for x in rtts[0]] == [10.5]
    assert [round(x, 3) for x in rtts[1]] == [2.0, 2.0]
    assert [round(x, 3) for x in rtts[2]] == [0.5]
    assert rtts[3] == []  # never answered: not reachable


def test_the_host_keeps_only_what_can_answer_its_probes():
    own = bytes([10, 0, 0, 1])
    probes = craft("02:00:00:00:00:02", "10.0.0.2", [dict(TARGETS[0], ip=SRC_IP),
                                                    dict(TARGETS[1], ip=SRC_IP),
                                                    dict(TARGETS[2], ip=SRC_IP)])
    # another host's SYN, datagram and echo request to this one are not answers
    assert not any(_may_answer(f, own) for f in probes.frames)
    mine = craft(SRC_MAC, SRC_IP, TARGETS).frames
    for f, kind in ((mine[0], "synack"), (mine[4], "echo"), (mine[5], "unreach"), (mine[6], "pong")):
        assert _may_answer(_answer(f, kind), own), kind
    assert not _may_answer(_answer(mine[0], "synack"), bytes([10, 0, 0, 9]))  # to someone else


def test_the_capture_ends_once_every_allowed_answer_is_in_and_a_silence_proves_no_other():
    # 30 answers allowed; the last came 40 ms after the last probe left (t = 10.0)
    assert not answered_all(29, 30, 10.0, 10.04, 12.0)  # one still missing: wait (to the timeout)
    assert not answered_all(30, 30, 10.0, 10.04, 10.04 + QUIET_MIN_S - 0.01)
    assert answered_all(30, 30, 10.0, 10.04, 10.04 + QUIET_MIN_S + 0.001)
    # a busy host answered 0.4 s late: the silence asked for grows with it
    assert not answered_all(30, 30, 10.0, 10.4, 10.4 + 0.5)
    assert answered_all(30, 30, 10.0, 10.4, 10.4 + 0.8)
