"""Capture rewriting (no root): a real capture mapped onto a tenant application carries only lab
addresses, in the right direction, on the application's port; what does not fit is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulation.pcap import PcapError, check_lab_only, rewrite
from topologies import bundled, load_spec

PCAPS = Path(__file__).resolve().parents[2] / "traces/pcaps"
SPEC = load_spec(bundled("default"))


def need(name):
    p = PCAPS / name
    if not p.exists():
        pytest.skip(f"{p} is not on this machine")
    return p


def test_rewrite_maps_the_capture_onto_the_application(tmp_path):
    from scapy.layers.inet import IP, TCP
    from scapy.utils import rdpcap

    rw = rewrite(need("zeek_http_bro.org.pcap"), tmp_path, SPEC, "red", "web", "h1", "h2")
    assert rw.local_ip == "10.0.2.15" and rw.forward_packets + rw.reverse_packets == 751
    fwd, rev = rdpcap(str(rw.forward)), rdpcap(str(rw.reverse))
    assert {(p[IP].src, p[IP].dst, p[TCP].dport) for p in fwd} == {("10.0.0.1", "10.0.0.2", 80)}
    assert {(p[IP].src, p[IP].dst, p[TCP].sport) for p in rev} == {("10.0.0.2", "10.0.0.1", 80)}
    assert sum(len(p) for p in rev) > 450_000  # the download, sizes kept
    check_lab_only([rw.forward, rw.reverse], SPEC)


def test_other_protocols_are_counted_and_bad_parameters_named(tmp_path):
    rw = rewrite(need("zeek_wikipedia.pcap"), tmp_path, SPEC, "red", "video", "h1", "h2")  # UDP
    assert (rw.forward_packets, rw.reverse_packets) == (14, 14) and rw.skipped["TCP"] == 78
    with pytest.raises(PcapError, match="^src"):
        rewrite(need("zeek_wikipedia.pcap"), tmp_path, SPEC, "red", "video", "h2", "h1")
    with pytest.raises(PcapError, match="^app"):
        rewrite(need("zeek_wikipedia.pcap"), tmp_path, SPEC, "red", "nope", "h1", "h2")
    (tmp_path / "junk.pcap").write_bytes(b"not a capture")
    with pytest.raises(PcapError, match="^pcap"):
        rewrite(tmp_path / "junk.pcap", tmp_path, SPEC, "red", "web", "h1", "h2")


def test_check_refuses_foreign_addresses(tmp_path):
    with pytest.raises(PcapError, match="outside the lab"):
        check_lab_only([need("zeek_wikipedia.pcap")], SPEC)
