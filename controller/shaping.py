"""Fallback for switches without OpenFlow meters (pure): per-application limits as tc HTB classes.

At connect the controller asks every switch for its meter features. A switch that reports no
meters (``max_meter == 0`` or no drop band), or that the operator names in ``--no-meters``, gets
its admission rules without the meter instruction, and each of its meters becomes
:class:`ShapeRule` s instead: an HTB class with the meter's rate and burst on the switch port the
application's packets leave by (found from the switch's own forwarding rules), with u32 filters
matching those packets (source and destination address, protocol, destination port).

Differences from a meter, documented for operators: HTB shapes (queues, then drops what does not
fit) where a meter polices; and a meter caps an application's packets entering a switch as one
aggregate, while each egress port gets a class of the full rate, so clients of one application
whose paths leave the switch by different ports could together exceed it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .rules import ETH_IP, TABLE_ACL, TABLE_FWD, FlowRule, MeterRule


@dataclass(frozen=True)
class ShapeMatch:
    src_ip: str
    dst_ip: str
    ip_proto: int
    dst_port: int


@dataclass(frozen=True)
class ShapeRule:
    """An HTB class limiting one application's packets leaving ``port`` of switch ``dpid``."""

    dpid: int
    port: int
    meter_id: int  # the meter it stands in for; also the class minor number
    rate_kbps: int
    burst_kbit: int
    matches: tuple[ShapeMatch, ...]

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.dpid, self.port, self.meter_id)

    def to_json(self) -> dict:
        return {"dpid": self.dpid, "port": self.port, "meter_id": self.meter_id,
                "rate_kbps": self.rate_kbps, "burst_kbit": self.burst_kbit,
                "matches": [m.__dict__ for m in self.matches]}


def _egress_port(fwd: list[FlowRule], match: dict) -> int | None:
    """The output port of the highest-priority forwarding rule that matches ``match``."""
    best = None
    for r in fwd:
        m = dict(r.match)
        if m.get("eth_type") != ETH_IP or any(match.get(k) != v for k, v in m.items()):
            continue
        out = [p for kind, p in r.actions if kind == "output"]
        if out and (best is None or r.priority > best[0]):
            best = (r.priority, out[0])
    return best[1] if best else None


def realize(rules: dict[int, tuple[FlowRule, ...]], meters: dict[int, tuple[MeterRule, ...]],
            meterless: frozenset[int] | set[int]):
    """Rules and meters as switches in ``meterless`` can hold them: ``(rules, meters, shapes)``.

    Switches not in ``meterless`` are returned unchanged."""
    if not meterless:
        return rules, meters, ()
    out_rules = dict(rules)
    out_meters = dict(meters)
    shapes: dict[tuple[int, int, int], list] = {}
    for dpid in sorted(meterless):
        by_id = {m.meter_id: m for m in meters.get(dpid, ())}
        if not by_id:
            continue
        fwd = [r for r in rules.get(dpid, ()) if r.table == TABLE_FWD]
        new = []
        for r in rules.get(dpid, ()):
            if r.table != TABLE_ACL or r.meter is None:
                new.append(r)
                continue
            m = dict(r.match)
            port = _egress_port(fwd, m)
            dport = m.get("udp_dst", m.get("tcp_dst"))
            if port is not None and dport is not None:
                shapes.setdefault((dpid, port, r.meter), []).append(
                    ShapeMatch(m["ipv4_src"], m["ipv4_dst"], m["ip_proto"], dport))
            new.append(replace(r, meter=None))
        out_rules[dpid] = tuple(new)
        out_meters.pop(dpid, None)
    result = []
    for (dpid, port, mid), ms in sorted(shapes.items()):
        meter = next(m for m in meters[dpid] if m.meter_id == mid)
        result.append(ShapeRule(dpid, port, mid, meter.rate_kbps, meter.burst_kbit,
                                tuple(sorted(set(ms), key=lambda s: tuple(s.__dict__.values())))))
    return out_rules, out_meters, tuple(result)


def meter_support(max_meter: int, band_types: int) -> bool:
    """Whether a meter features reply allows netshadow's meters (at least one meter and the drop
    band; ``band_types`` is the OpenFlow bitmap, bit 1 = OFPMBT_DROP)."""
    return max_meter > 0 and bool(band_types & (1 << 1))
