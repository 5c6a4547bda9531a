"""A real capture rewritten onto a tenant application and replayed in the lab: every packet is
admitted by that application's rules (the switches count them), and the lab's namespaces are the
only place it is sent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from emulation import cleanup

PCAP = Path(__file__).resolve().parents[2] / "traces/pcaps/zeek_http_bro.org.pcap"


def test_capture_replayed_and_admitted(tmp_path):
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, "-m", "netshadow", "replay-pcap", "--spec", "default",
                        "--pcap", str(PCAP), "--tenant", "red", "--app", "web", "--src", "h1", "--dst", "h2",
                        "--speed", "4", "--prefix", "ntl", "--workdir", str(tmp_path / "w"),
                        "--json", str(out)], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    rw = res["rewritten"]
    assert rw["forward"] + rw["reverse"] == 751 and not rw["skipped"]
    assert res["sent"]["forward"]["packets"] == rw["forward"]
    assert res["sent"]["reverse"]["packets"] == rw["reverse"]
    # the switches admitted every packet of both directions on red/web's rules - and the hosts'
    # answers: a host's TCP stack resets every segment (but a reset) of a connection it never opened
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    def answered(name):
        return sum(1 for p in rdpcap(str(tmp_path / "w" / "rewritten" / name)) if not p[TCP].flags.R)
    assert res["admitted"] == {"forward": rw["forward"] + answered("reverse.pcap"),
                               "reverse": rw["reverse"] + answered("forward.pcap")}
    assert cleanup.find("ntl").empty()


def test_bad_parameters_are_named_before_any_lab_starts(tmp_path):
    r = subprocess.run([sys.executable, "-m", "netshadow", "replay-pcap", "--spec", "default",
                        "--pcap", str(PCAP), "--tenant", "red", "--app", "web", "--src", "h4", "--dst", "h2",
                        "--prefix", "ntl", "--workdir", str(tmp_path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and "src: 'h4' is not a host of tenant red" in r.stderr
    assert cleanup.find("ntl").empty()
