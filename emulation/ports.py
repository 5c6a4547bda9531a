"""A bridge's OpenFlow port counters, read with ``ovs-ofctl dump-ports``.

A run reads them before and after its load: the bytes that arrived at the far end of a link
direction, over the run's duration, are the utilisation that link really carried - exact, and
the same method in a shadow and in production, where telemetry's one-second buckets would cut
the run's edges differently each time.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from . import ovsns

_PORT = re.compile(r"port\s+(\w+):\s*rx pkts=(\d+|\?), bytes=(\d+|\?).*?"
                   r"tx pkts=(\d+|\?), bytes=(\d+|\?)", re.S)


@dataclass(frozen=True)
class PortCounters:
    rx_bytes: int
    tx_bytes: int


class PortError(RuntimeError):
    """A bridge's port counters could not be read."""


def parse_dump_ports(text: str) -> dict[int, PortCounters]:
    """OpenFlow port number -> counters (``LOCAL`` left out; an unknown ``?`` counts as 0)."""
    num = lambda s: int(s) if s.isdigit() else 0  # noqa: E731
    return {int(m.group(1)): PortCounters(num(m.group(3)), num(m.group(5)))
            for m in _PORT.finditer(text) if m.group(1).isdigit()}


def read_ports(bridge: str) -> dict[int, PortCounters]:
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", bridge],
                       capture_output=True, text=True, timeout=10, env=ovsns.env_for(bridge))
    if r.returncode != 0:
        raise PortError(f"dump-ports {bridge}: {r.stderr.strip()}")
    return parse_dump_ports(r.stdout)
