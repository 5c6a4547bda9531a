"""A bridge's OpenFlow meter counters, read with ``ovs-ofctl meter-stats``.

The shadow reads them before and after a run, so the traffic a plan's meter dropped is counted
exactly, apart from what the host itself lost (a descheduled datapath, a full socket buffer).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_METER = re.compile(r"^meter:(\d+)\s.*?packet_in_count:(\d+)", re.M)
_BAND = re.compile(r"^\s*\d+:\s*packet_count:(\d+)", re.M)


@dataclass(frozen=True)
class MeterCounters:
    packets_in: int  # packets that reached the meter
    packets_dropped: int  # packets its bands dropped


def parse_meter_stats(text: str) -> dict[int, MeterCounters]:
    """Meter id -> counters from ``ovs-ofctl -O OpenFlow13 meter-stats`` output."""
    out: dict[int, MeterCounters] = {}
    heads = list(_METER.finditer(text))
    for i, m in enumerate(heads):
        body = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        dropped = sum(int(b.group(1)) for b in _BAND.finditer(body))
        out[int(m.group(1))] = MeterCounters(int(m.group(2)), dropped)
    return out


def read_meters(bridge: str) -> dict[int, MeterCounters]:
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", bridge],
                       capture_output=True, text=True, timeout=10, check=True)
    return parse_meter_stats(r.stdout)
