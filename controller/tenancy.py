"""Tenancy compiler: from a spec to the complete set of flow rules of every switch (pure).

Isolation is by construction: forwarding rules exist only for pairs of hosts in the same tenant,
and admission rules only for what the tenant's policies allow, so anything else meets the
priority-0 deny rule. ACLs are stateless: a policy ``client -> server, app`` admits the client's
packets to the application's port and the server's packets *from* that port back to the client.
ARP is forwarded along the pair's path to the one host that owns the target address, never
flooded, so no host learns about another tenant's addresses.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from topologies import NetworkSpec, wire

from .cookies import APP_ARP, APP_DENY, APP_ICMP, DIR_FORWARD, DIR_REVERSE, Cookie
from .routing import Router
from .rules import (
    ETH_ARP,
    ETH_IP,
    IPPROTO,
    PRIO_APP,
    PRIO_APP_FWD,
    PRIO_ARP,
    PRIO_DENY,
    PRIO_FWD,
    PRIO_ICMP,
    PRIO_TRUNK,
    TABLE_ACL,
    TABLE_FWD,
    FlowRule,
    MeterRule,
)


@dataclass(frozen=True)
class CompiledNetwork:
    """Everything the controller installs. ``rules[dpid]`` lists that switch's flows;
    ``paths[(src host, dst host)]`` is the switch path of each intra-tenant pair."""

    rules: dict[int, tuple[FlowRule, ...]]
    paths: dict[tuple[str, str], tuple[str, ...]]
    meters: dict[int, tuple[MeterRule, ...]] = field(default_factory=dict)
    # tc HTB classes standing in for meters on switches without meter support
    # (controller.shaping.ShapeRule; empty while every switch has meters)
    shapes: tuple = ()

    def rule_count(self) -> int:
        return sum(len(r) for r in self.rules.values())


def meter_id(tenant_no: int, app_no: int) -> int:
    return (tenant_no << 8) | app_no


def tenant_number(spec: NetworkSpec, tenant_id: str) -> int:
    """1-based tenant number used in cookies."""
    return [t.id for t in spec.tenants].index(tenant_id) + 1


def app_number(spec: NetworkSpec, tenant_id: str, app: str) -> int:
    """1-based application number inside its tenant, used in cookies."""
    return [a.name for a in spec.tenant(tenant_id).applications].index(app) + 1


def compile_network(spec: NetworkSpec, plan=None) -> CompiledNetwork:
    """All rules for ``spec``; with a :class:`controller.plan.Plan`, its policy additions, meters
    and DSCP marks too."""
    if plan is not None:
        spec = plan.effective_spec(spec)
    b = _Builder(spec, wire(spec), {s.name: s.dpid for s in spec.switches})
    b.base()
    paths = pair_paths(spec)
    for t in spec.tenants:
        b.members(t, paths)
        b.admission(t, plan)
    if plan is not None:
        for alloc in plan.allocations:
            if alloc.path:
                b.application_path(alloc)
    return CompiledNetwork(b.deduplicated(), paths,
                           {d: tuple(m.values()) for d, m in b.meters.items()})


def pair_paths(spec: NetworkSpec) -> dict[tuple[str, str], tuple[str, ...]]:
    """The switch path of each intra-tenant host pair (what :func:`compile_network` puts in
    ``paths``), without building a rule."""
    pairs = [(x, y) for t in spec.tenants for i, x in enumerate(t.hosts) for y in t.hosts[i + 1:]]
    return Router(spec).place_pairs(pairs)


def plan_meters(spec: NetworkSpec, plan) -> dict[int, tuple[MeterRule, ...]]:
    """The meters of ``plan`` (what :func:`compile_network` puts in ``meters``), without building
    a rule: a plan that changes only rates changes nothing else."""
    spec = plan.effective_spec(spec)
    dpid = {s.name: s.dpid for s in spec.switches}
    out: dict[int, dict[int, MeterRule]] = defaultdict(dict)
    for t in spec.tenants:
        for src, _dst, app in _admitted(spec, t):
            m = _meter(spec, t, app, dpid[spec.host(src).switch], plan)
            if m is not None:
                out[m.dpid][m.meter_id] = m
    return {d: tuple(m.values()) for d, m in out.items()}


def _admitted(spec: NetworkSpec, t) -> list[tuple[str, str, str]]:
    """(client, server, application) of every policy of tenant ``t``, sorted."""
    return sorted({x for x in spec.allowed() if x[0] in t.hosts})


def _meter(spec: NetworkSpec, t, app: str, dpid: int, plan) -> MeterRule | None:
    """The meter ``plan`` puts on switch ``dpid`` for tenant ``t``'s ``app`` (None: no allocation)."""
    alloc = plan.allocation(t.id, app) if plan is not None else None
    if alloc is None:
        return None
    mid = meter_id(tenant_number(spec, t.id), app_number(spec, t.id, app))
    return MeterRule(dpid, mid, int(round(alloc.rate_mbps * 1000)), int(round(alloc.burst)))


@dataclass
class _Builder:
    """The rules and meters of one compiled network, added section by section."""

    spec: NetworkSpec
    wiring: object
    dpid: dict[str, int]
    rules: dict[int, list[FlowRule]] = field(default_factory=lambda: defaultdict(list))
    meters: dict[int, dict[int, MeterRule]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, switch: str, table: int, priority: int, match: dict, actions: list, cookie: int,
            meter: int | None = None, stage: int = 0) -> None:
        d = self.dpid[switch]
        self.rules[d].append(FlowRule.make(d, table, priority, match, actions, cookie, meter,
                                           stage=stage))

    def base(self) -> None:
        """Table-miss deny in both tables, trunk admission in table 0."""
        deny = Cookie(app=APP_DENY).encode()
        for s in self.spec.switches:
            self.add(s.name, TABLE_ACL, PRIO_DENY, {}, [], deny)
            self.add(s.name, TABLE_FWD, PRIO_DENY, {}, [], deny)
            for port in self.wiring.trunk_ports(s.name):
                self.add(s.name, TABLE_ACL, PRIO_TRUNK, {"in_port": port}, [("goto", TABLE_FWD)],
                         Cookie().encode())

    def members(self, t, paths) -> None:
        """Between a tenant's members: ARP (and ICMP when the tenant allows it) admitted at the
        edge, IPv4 and ARP forwarded along each pair's path."""
        spec, wiring = self.spec, self.wiring
        tn = tenant_number(spec, t.id)
        for src in t.hosts:
            hs = spec.host(src)
            sw, port = wiring.host_port[src]
            edge = {"in_port": port, "eth_src": hs.mac}
            for dst in t.hosts:
                if dst == src:
                    continue
                hd = spec.host(dst)
                self.add(sw, TABLE_ACL, PRIO_ARP,
                         {**edge, "eth_type": ETH_ARP, "arp_spa": hs.ip, "arp_tpa": hd.ip},
                         [("goto", TABLE_FWD)], Cookie(tn, APP_ARP).encode())
                if t.allow_icmp:
                    self.add(sw, TABLE_ACL, PRIO_ICMP,
                             {**edge, "eth_type": ETH_IP, "ipv4_src": hs.ip, "ipv4_dst": hd.ip,
                              "ip_proto": IPPROTO["icmp"]},
                             [("goto", TABLE_FWD)], Cookie(tn, APP_ICMP).encode())
                path = paths[(src, dst)]
                for i, hop in enumerate(path):
                    out = (wiring.host_port[dst][1] if i == len(path) - 1
                           else wiring.neighbour_port(hop, path[i + 1]))
                    for eth, m in ((ETH_IP, {"ipv4_src": hs.ip, "ipv4_dst": hd.ip}),
                                   (ETH_ARP, {"arp_spa": hs.ip, "arp_tpa": hd.ip})):
                        self.add(hop, TABLE_FWD, PRIO_FWD, {"eth_type": eth, **m},
                                 [("output", out)], Cookie(tn).encode())

    def admission(self, t, plan) -> None:
        """Application admission from the policies, both directions; a plan's allocation adds
        its meter at the client's switch (and its DSCP mark)."""
        spec, wiring = self.spec, self.wiring
        tn = tenant_number(spec, t.id)
        for src, dst, app in _admitted(spec, t):
            a = t.app(app)
            an = app_number(spec, t.id, app)
            proto = IPPROTO[a.protocol]
            hs, hd = spec.host(src), spec.host(dst)
            sw_s, port_s = wiring.host_port[src]
            sw_d, port_d = wiring.host_port[dst]
            actions = [("goto", TABLE_FWD)]
            mid = None
            m = _meter(spec, t, app, self.dpid[sw_s], plan)
            if m is not None:
                mid = m.meter_id
                self.meters[m.dpid][mid] = m
                dscp = plan.allocation(t.id, app).dscp
                if dscp is not None:
                    actions.insert(0, ("set_dscp", dscp))
            self.add(sw_s, TABLE_ACL, PRIO_APP,
                     {"in_port": port_s, "eth_src": hs.mac, "eth_type": ETH_IP, "ipv4_src": hs.ip,
                      "ipv4_dst": hd.ip, "ip_proto": proto, f"{a.protocol}_dst": a.port},
                     actions, Cookie(tn, an, DIR_FORWARD).encode(), mid)
            self.add(sw_d, TABLE_ACL, PRIO_APP,
                     {"in_port": port_d, "eth_src": hd.mac, "eth_type": ETH_IP, "ipv4_src": hd.ip,
                      "ipv4_dst": hs.ip, "ip_proto": proto, f"{a.protocol}_src": a.port},
                     [("goto", TABLE_FWD)], Cookie(tn, an, DIR_REVERSE).encode())

    def application_path(self, alloc) -> None:
        """A plan's own path for one application, for the pairs whose switches it joins; staged
        so that the last hop goes in first (make before break)."""
        spec, wiring = self.spec, self.wiring
        t = spec.tenant(alloc.tenant)
        a = t.app(alloc.app)
        tn, an = tenant_number(spec, t.id), app_number(spec, t.id, a.name)
        proto = IPPROTO[a.protocol]
        for src, dst, app in sorted(spec.allowed()):
            if app != a.name or src not in t.hosts:
                continue
            hs, hd = spec.host(src), spec.host(dst)
            if (hs.switch, hd.switch) != (alloc.path[0], alloc.path[-1]):
                continue
            for path, s_host, d_host, port_field, direction in (
                    (alloc.path, hs, hd, f"{a.protocol}_dst", DIR_FORWARD),
                    (tuple(reversed(alloc.path)), hd, hs, f"{a.protocol}_src", DIR_REVERSE)):
                for i, hop in enumerate(path):
                    out = (wiring.host_port[d_host.name][1] if i == len(path) - 1
                           else wiring.neighbour_port(hop, path[i + 1]))
                    self.add(hop, TABLE_FWD, PRIO_APP_FWD,
                             {"eth_type": ETH_IP, "ipv4_src": s_host.ip, "ipv4_dst": d_host.ip,
                              "ip_proto": proto, port_field: a.port},
                             [("output", out)], Cookie(tn, an, direction).encode(),
                             stage=len(path) - 1 - i)

    def deduplicated(self) -> dict[int, tuple[FlowRule, ...]]:
        """One entry per key: a later duplicate (same table, priority, match) would overwrite
        on the switch, so a conflicting one is an error."""
        final: dict[int, tuple[FlowRule, ...]] = {}
        for d, lst in self.rules.items():
            seen: dict[tuple, FlowRule] = {}
            for r in lst:
                if r.key in seen and seen[r.key] != r:
                    raise ValueError(f"rules: conflicting entries for {r.key}")
                seen[r.key] = r
            final[d] = tuple(seen.values())
        return final
