"""A small fake OpenFlow 1.3 network for unit tests of the pure core.

It executes the :class:`controller.rules.FlowRule` objects the core emits - highest-priority match
per table, ``goto`` and ``output`` - across the spec's wiring, and answers "where does this
packet end up, and which cookies did it hit?". Real OVS confirms the same behaviour in the
integration tests; this table lets the unit tests discover it quickly and without root.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.rules import FlowRule
from topologies import NetworkSpec, wire


@dataclass
class Trace:
    delivered_to: str | None = None
    dropped_at: str | None = None
    cookies: list[int] = field(default_factory=list)
    hops: list[str] = field(default_factory=list)


class FakeOFNetwork:
    def __init__(self, spec: NetworkSpec, rules: dict[int, tuple[FlowRule, ...]] | None = None):
        self.spec = spec
        self.wiring = wire(spec)
        self.by_dpid = {s.name: s.dpid for s in spec.switches}
        self.tables: dict[int, dict[tuple, FlowRule]] = {s.dpid: {} for s in spec.switches}
        for rs in (rules or {}).values():
            for r in rs:
                self.add(r)

    # --------------------------------------------------------------- flow table
    def add(self, rule: FlowRule) -> None:
        """OFPFC_ADD semantics: an entry with the same table, priority and match is replaced."""
        self.tables[rule.dpid][rule.key] = rule

    def clear(self, dpid: int) -> None:
        self.tables[dpid].clear()

    def lookup(self, dpid: int, table: int, pkt: dict) -> FlowRule | None:
        best = None
        for r in self.tables[dpid].values():
            if r.table != table:
                continue
            if all(pkt.get(k) == v for k, v in r.match):
                if best is None or r.priority > best.priority:
                    best = r
        return best

    # --------------------------------------------------------------- packets
    def send(self, src_host: str, pkt: dict, max_hops: int = 32) -> Trace:
        """Inject ``pkt`` (OXM field -> value, without in_port) from ``src_host``'s interface."""
        trace = Trace()
        switch, in_port = self.wiring.host_port[src_host]
        port_owner = {v: k for k, v in self.wiring.host_port.items()}
        for _ in range(max_hops):
            trace.hops.append(switch)
            dpid = self.by_dpid[switch]
            table = 0
            out_port = None
            while True:
                rule = self.lookup(dpid, table, {**pkt, "in_port": in_port})
                if rule is None:
                    trace.dropped_at = switch
                    return trace
                trace.cookies.append(rule.cookie)
                nxt = [t for kind, t in rule.actions if kind == "goto"]
                outs = [p for kind, p in rule.actions if kind == "output"]
                if outs:
                    out_port = outs[0]
                    break
                if not nxt:
                    trace.dropped_at = switch
                    return trace
                table = nxt[0]
            if (switch, out_port) in port_owner:
                trace.delivered_to = port_owner[(switch, out_port)]
                return trace
            for (sa, pa), (sb, pb) in self.wiring.link_ports:
                if (sa, pa) == (switch, out_port):
                    switch, in_port = sb, pb
                    break
                if (sb, pb) == (switch, out_port):
                    switch, in_port = sa, pa
                    break
            else:
                raise AssertionError(f"output to unwired port {switch}:{out_port}")
        raise AssertionError(f"forwarding loop: {trace.hops}")


def ip_packet(spec: NetworkSpec, src: str, dst: str, proto: str, sport: int | None = None,
              dport: int | None = None) -> dict:
    """The OXM view of an IPv4 packet from host ``src`` to host ``dst``."""
    hs, hd = spec.host(src), spec.host(dst)
    pkt = {"eth_src": hs.mac, "eth_dst": hd.mac, "eth_type": 0x0800,
           "ipv4_src": hs.ip, "ipv4_dst": hd.ip, "ip_proto": {"icmp": 1, "tcp": 6, "udp": 17}[proto]}
    if proto in ("tcp", "udp"):
        pkt[f"{proto}_src"] = sport
        pkt[f"{proto}_dst"] = dport
    return pkt


def arp_request(spec: NetworkSpec, src: str, target_ip: str) -> dict:
    hs = spec.host(src)
    return {"eth_src": hs.mac, "eth_dst": "ff:ff:ff:ff:ff:ff", "eth_type": 0x0806,
            "arp_spa": hs.ip, "arp_tpa": target_ip}


class FakeSwitches:
    """The switch side of the OpenFlow channel, for the enforcement machine's unit tests.

    It keeps each switch's flows and meters, executes the core's messages in order and queues
    what a switch answers, in order: an error for a message it rejects (``reject(dpid, message)``
    returns the error text, or None), a barrier reply, a meter configuration reply. A switch in
    ``gone`` is not connected (sending returns no xid); one in ``silent`` never answers;
    ``meter_lies[dpid]`` is a meter table it reports instead of its own.
    """

    def __init__(self, compiled=None):
        self.flows: dict[int, dict[tuple, FlowRule]] = {}
        self.meters: dict[int, dict[int, int]] = {}
        if compiled is not None:
            for dpid, rules in compiled.rules.items():
                self.flows[dpid] = {r.key: r for r in rules}
            for dpid, ms in compiled.meters.items():
                self.meters[dpid] = {m.meter_id: m.rate_kbps for m in ms}
        self.replies: list[tuple] = []  # ("error", dpid, text) | ("barrier", xid) | ("meters", dpid, rates)
        self.reject = lambda dpid, message: None
        self.gone: set[int] = set()
        self.silent: set[int] = set()
        self.meter_lies: dict[int, dict[int, int]] = {}
        self.sent: list[tuple[int, object]] = []
        self._xid = 0

    def send(self, dpid: int, m) -> int | None:
        from controller import core

        if dpid in self.gone:
            return None
        self._xid += 1
        self.sent.append((dpid, m))
        if dpid in self.silent:
            return self._xid
        why = self.reject(dpid, m)
        if why is not None:
            self.replies.append(("error", dpid, why))
            return self._xid
        flows, meters = self.flows.setdefault(dpid, {}), self.meters.setdefault(dpid, {})
        if isinstance(m, (core.AddFlow, core.ModifyFlow)):
            flows[m.rule.key] = m.rule
        elif isinstance(m, core.DeleteFlow):
            flows.pop(m.rule.key, None)
        elif isinstance(m, (core.AddMeter, core.ModifyMeter)):
            meters[m.meter.meter_id] = m.meter.rate_kbps
        elif isinstance(m, core.DeleteMeter):
            meters.pop(m.meter_id, None)
        elif isinstance(m, core.Barrier):
            self.replies.append(("barrier", self._xid))
        elif isinstance(m, core.ReadMeters):
            self.replies.append(("meters", dpid, dict(self.meter_lies.get(dpid, meters))))
        return self._xid

    def state(self) -> tuple[dict, dict]:
        """Flows (rule keys per switch) and meters (id -> rate per switch), empty switches left out."""
        return ({d: set(f) for d, f in self.flows.items() if f},
                {d: dict(m) for d, m in self.meters.items() if m})


def installed(compiled) -> tuple[dict, dict]:
    """What :meth:`FakeSwitches.state` shows once ``compiled`` is installed."""
    return ({d: {r.key for r in rs} for d, rs in compiled.rules.items() if rs},
            {d: {m.meter_id: m.rate_kbps for m in ms} for d, ms in compiled.meters.items() if ms})
