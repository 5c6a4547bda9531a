"""A bridge's OpenFlow meter counters, read with ``ovs-ofctl meter-stats``.

The shadow reads them before and after a run, so the traffic a plan's meter dropped is counted
exactly, apart from what the host itself lost (a descheduled datapath, a full socket buffer); the
lab replay reads them at every step boundary. OVS resets a meter's counters when the meter is
modified.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

from . import ovsns

_METER = re.compile(r"^meter:(\d+)\s.*?packet_in_count:(\d+)\s+byte_in_count:(\d+)", re.M)
_BAND = re.compile(r"^\s*\d+:\s*packet_count:(\d+)\s+byte_count:(\d+)", re.M)


@dataclass(frozen=True)
class MeterCounters:
    packets_in: int  # packets that reached the meter
    packets_dropped: int  # packets its bands dropped
    bytes_in: int = 0
    bytes_dropped: int = 0


def parse_meter_stats(text: str) -> dict[int, MeterCounters]:
    """Meter id -> counters from ``ovs-ofctl -O OpenFlow13 meter-stats`` output."""
    out: dict[int, MeterCounters] = {}
    heads = list(_METER.finditer(text))
    for i, m in enumerate(heads):
        body = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        bands = [(int(b.group(1)), int(b.group(2))) for b in _BAND.finditer(body)]
        out[int(m.group(1))] = MeterCounters(int(m.group(2)), sum(p for p, _ in bands),
                                             int(m.group(3)), sum(b for _, b in bands))
    return out


def read_meters(bridge: str) -> dict[int, MeterCounters]:
    """The bridge's meters now; ``MeterError`` with ovs-ofctl's message if it cannot be read."""
    r = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "meter-stats", bridge],
                       capture_output=True, text=True, timeout=10, env=ovsns.env_for(bridge))
    if r.returncode != 0:
        raise MeterError(f"meter-stats {bridge}: {r.stderr.strip()}")
    return parse_meter_stats(r.stdout)


class MeterError(RuntimeError):
    """A bridge's meters could not be read."""


def settled(read, timeout_s: float = 10.0, every_s: float = 1.0):
    """``read()`` once two reads ``every_s`` apart agree (longer than OVS's 0.5 s
    revalidation): OVS folds its datapath's statistics into its rules and meters lazily, so the
    last packets of a run show up a moment later. After ``timeout_s`` the last read is returned."""
    deadline = time.monotonic() + timeout_s
    last = read()
    while time.monotonic() < deadline:
        time.sleep(every_s)  # the interval between two reads that must agree, inside the deadline
        now = read()
        if now == last:
            return now
        last = now
    return last
