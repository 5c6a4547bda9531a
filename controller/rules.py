"""Switch-independent descriptions of the OpenFlow 1.3 state netshadow installs.

The pure core produces :class:`FlowRule` objects; only the os-ken shim turns them into wire
messages (:mod:`controller.ofmsg`), and the fake table of the unit tests executes them directly.

Pipeline on every switch:

* table 0 (:data:`TABLE_ACL`): admission. Packets from a host port are matched on the host's own
  MAC and IP (anti-spoofing), the destination and, for applications, protocol and port; allowed
  packets go to table 1 with a cookie naming tenant and application. Packets from trunk ports
  (other switches) were admitted at their edge and go straight to table 1. Everything else hits
  the priority-0 deny rule.
  When a plan allocates a rate to an application, its client-to-server admission rules send
  packets through a meter (one per application and ingress switch, id ``tenant << 8 | app``),
  and may set a DSCP class.
* table 1 (:data:`TABLE_FWD`): forwarding. One rule per (source IP, destination IP) pair and
  switch on the pair's path, for IPv4 and for ARP; nothing else is forwarded. A plan may route
  one application along a path of its own: rules at :data:`PRIO_APP_FWD` that also match
  protocol and port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TABLE_ACL = 0
TABLE_FWD = 1

PRIO_DENY = 0
PRIO_TRUNK = 100
PRIO_ARP = 900
PRIO_ICMP = 900
PRIO_APP = 1000
PRIO_FWD = 1000
PRIO_APP_FWD = 1100  # a plan's per-application path, above the pair's default path

ETH_IP = 0x0800
ETH_ARP = 0x0806
IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17}


@dataclass(frozen=True)
class FlowRule:
    """One flow entry. ``match`` is a sorted tuple of (OXM field name, value) pairs as os-ken's
    ``OFPMatch`` names them; ``actions`` is a tuple of ("output", port) / ("goto", table)."""

    dpid: int
    table: int
    priority: int
    match: tuple[tuple[str, Any], ...]
    actions: tuple[tuple[str, int], ...]
    cookie: int
    meter: int | None = None  # packets pass this meter first (OFPIT_METER)
    # install order for make-before-break: 0 for the last hop of a path, rising towards its
    # first hop, so a new path is complete before its first switch sends traffic into it
    stage: int = 0

    @staticmethod
    def make(dpid: int, table: int, priority: int, match: dict[str, Any],
             actions: list[tuple[str, int]], cookie: int, meter: int | None = None,
             stage: int = 0) -> FlowRule:
        return FlowRule(dpid, table, priority, tuple(sorted(match.items())), tuple(actions), cookie,
                        meter, stage)

    @property
    def key(self) -> tuple:
        """Identity of the entry on the switch: OpenFlow keys flows by table, priority and match."""
        return (self.dpid, self.table, self.priority, self.match)

    def to_json(self) -> dict[str, Any]:
        return {
            "dpid": self.dpid,
            "table": self.table,
            "priority": self.priority,
            "match": dict(self.match),
            "actions": [list(a) for a in self.actions],
            "cookie": f"{self.cookie:#018x}",
            **({"meter": self.meter} if self.meter is not None else {}),
        }


@dataclass(frozen=True)
class MeterRule:
    """An OpenFlow 1.3 meter with one drop band: ``rate_kbps`` (L2 kbit/s), ``burst_kbit``."""

    dpid: int
    meter_id: int
    rate_kbps: int
    burst_kbit: int

    def to_json(self) -> dict[str, Any]:
        return {"dpid": self.dpid, "meter_id": self.meter_id, "rate_kbps": self.rate_kbps,
                "burst_kbit": self.burst_kbit}
