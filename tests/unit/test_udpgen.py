"""The UDP receiver's counts and its stall measure, on loopback."""

from __future__ import annotations

import socket
import struct
import threading
import time

from emulation import udpgen


def _receive_in_thread(port: int):
    bound = threading.Event()
    out: dict = {}
    t = threading.Thread(target=lambda: out.update(udpgen.recv(port, 20, idle_s=0.5,
                                                               ready=bound.set)), daemon=True)
    t.start()
    assert bound.wait(10), "receiver never bound its port"
    return t, out


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _datagram(seq: int) -> bytes:
    return udpgen.MAGIC + struct.pack("!Q", seq) + bytes(100)


def test_receiver_counts_distinct_datagrams_and_times_the_longest_silence():
    port = _free_udp_port()
    t, out = _receive_in_thread(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for k in range(30):
            tx.sendto(_datagram(k), ("127.0.0.1", port))
        # a fixed pause is right here: it is the silence under test, not a wait for something
        time.sleep(0.4)
        for k in range(30, 60):
            tx.sendto(_datagram(k), ("127.0.0.1", port))
        tx.sendto(_datagram(59), ("127.0.0.1", port))  # a duplicate is not a new datagram
    t.join(30)
    assert not t.is_alive()
    assert out["packets"] == 61 and out["distinct"] == 60
    # kernel receive times: at least the pause, and not the receiver's own scheduling
    assert 0.39 <= out["max_gap_s"] < 5.0


def test_the_silence_is_bounded_by_how_long_the_sender_took():
    port = _free_udp_port()
    t, out = _receive_in_thread(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        t0 = time.time()
        for k in range(200):
            tx.sendto(_datagram(k), ("127.0.0.1", port))
        took = time.time() - t0
    t.join(30)
    assert out["distinct"] == 200
    # loopback delivers within sendto, so no gap between arrivals is longer than the sending
    assert 0 < out["max_gap_s"] <= took + 0.001


def test_meter_stats_are_parsed_per_meter_with_their_bands_summed():
    from emulation.meters import MeterCounters, parse_meter_stats

    text = """OFPST_METER reply (OF1.3) (xid=0x2):
meter:258 flow_count:1 packet_in_count:9000 byte_in_count:13626000 duration:8.102s bands:
0: packet_count:3010 byte_count:4557140
meter:513 flow_count:2 packet_in_count:12 byte_in_count:900 duration:1.0s bands:
0: packet_count:1 byte_count:75
1: packet_count:2 byte_count:150
"""
    assert parse_meter_stats(text) == {258: MeterCounters(9000, 3010, 13626000, 4557140),
                                       513: MeterCounters(12, 3, 900, 225)}
    assert parse_meter_stats("OFPST_METER reply (OF1.3) (xid=0x2):\n") == {}


def test_told_the_sender_is_done_it_waits_only_for_what_is_in_flight():
    """With a long idle limit (a stalled stream must not end the count), the receiver still
    ends soon after it is told the sender finished, with every datagram and each probe answered
    with when it arrived and when it was answered."""
    port = _free_udp_port()
    bound, done, out = threading.Event(), [], {}
    t = threading.Thread(target=lambda: out.update(udpgen.recv(port, 600, idle_s=600, ready=bound.set,
                                                               done=done)), daemon=True)
    t.start()
    assert bound.wait(10), "receiver never bound its port"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.settimeout(10)
        for k in range(50):
            tx.sendto(_datagram(k), ("127.0.0.1", port))
        probe = udpgen.RTT_PROBE + b"7"
        tx.sendto(probe, ("127.0.0.1", port))
        echo = tx.recv(2048)
    assert echo.startswith(probe) and len(echo) == len(probe) + udpgen.HOLD.size
    arrived, answered = udpgen.HOLD.unpack_from(echo, len(probe))
    assert 0 <= answered - arrived < 5
    done.append(time.monotonic())
    t.join(60)  # far less than its 600 s limits: it ended because it was told
    assert not t.is_alive() and out["distinct"] == 50 and out["packets"] == 50


def test_a_jittered_stream_keeps_its_slots_and_the_same_seed_the_same_pattern():
    a = udpgen.slot_offsets(5004)
    assert a == udpgen.slot_offsets(5004) and a != udpgen.slot_offsets(53)
    assert all(0 <= x < 1 for x in a) and 0.45 < sum(a) / len(a) < 0.55


def test_a_jittered_sender_sends_its_schedule_exactly():
    """Each packet leaves somewhere inside its own slot, so the count over a run is the
    schedule's (a late sender catches up); on loopback, as root."""
    frame = udpgen.craft("02:00:00:00:00:01", "02:00:00:00:00:02", "127.0.0.1", "127.0.0.1",
                         40000, 9, 1000)
    out = udpgen.send("lo", frame, [2e6, 4e6], 0.5, jitter_seed=7)
    expected = (2e6 + 4e6) * 0.5 / (len(frame) * 8)
    assert abs(out["packets"] - expected) <= 2, out
