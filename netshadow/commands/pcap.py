"""`netshadow replay-pcap`: a packet capture replayed in the lab."""

from __future__ import annotations

from pathlib import Path

from ..errors import error
from .common import EXIT_INVALID, EXIT_OK, spec_arg


def cmd_replay_pcap(a) -> int:
    from emulation.pcap import PcapError

    from ..replaycmd import run_replay_pcap

    try:
        r = run_replay_pcap(a.spec, a.pcap, a.tenant, a.app, a.src, a.dst, a.speed, a.local_ip, a.prefix,
                            Path(a.workdir))
    except PcapError as e:
        error(f"netshadow replay-pcap: {e}")
        return EXIT_INVALID
    if a.json:
        import json

        Path(a.json).write_text(json.dumps(r, indent=1))
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("replay-pcap", help="replay a packet capture in the lab, rewritten onto one "
                                           "tenant application between two hosts")
    p.add_argument("--spec", type=spec_arg, required=True)
    p.add_argument("--pcap", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--src", required=True, help="client host (the capture's local address)")
    p.add_argument("--dst", required=True, help="server host (every other address)")
    p.add_argument("--local-ip", help="the capture's local address (default: the most frequent)")
    p.add_argument("--speed", type=float, default=1.0, help="timing multiplier (default 1)")
    p.add_argument("--prefix", default="nsp")
    p.add_argument("--workdir", default="out/replay-pcap")
    p.add_argument("--json", help="write the result here")
    p.set_defaults(func=cmd_replay_pcap)
