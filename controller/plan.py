"""Allocation plans (pure): what the allocator wants installed, validated against the spec.

A ``Plan`` holds, per tenant application, an ``Allocation``: a guaranteed rate in Mbit/s enforced
by an OpenFlow meter at the ingress switches of the application's clients (L2 frames, as meters
count them) with a burst in kbit, and optionally a DSCP class. It may also carry policy additions
(``extra_policies``) - the shadow network evaluates those before anything like them reaches
production - and CPU quotas for hosts. ``valid_from``/``valid_until`` bound when it applies.
Every problem raises :class:`PlanError` naming the field and the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from topologies import NetworkSpec, Policy, Tenant

MAX_METER_MBPS = 10_000.0


class PlanError(ValueError):
    def __init__(self, fld: str, value: Any, reason: str):
        self.field = fld
        self.value = value
        super().__init__(f"{fld}: {reason} (got {value!r})")


@dataclass(frozen=True)
class Allocation:
    tenant: str
    app: str
    rate_mbps: float
    burst_kbit: float = 0.0  # 0: one tenth of a second at the rate
    dscp: int | None = None
    path: tuple[str, ...] | None = None  # switches from the clients' switch to the servers'

    @property
    def burst(self) -> float:
        return self.burst_kbit or self.rate_mbps * 100.0


@dataclass(frozen=True)
class ExtraPolicy:
    tenant: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    apps: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    name: str
    allocations: tuple[Allocation, ...] = ()
    extra_policies: tuple[ExtraPolicy, ...] = ()
    cpu_quotas: tuple[tuple[str, float], ...] = ()  # (host, share of one CPU)
    valid_from: float | None = None
    valid_until: float | None = None
    reasons: tuple[str, ...] = field(default=(), compare=False)

    def cost_mbps(self) -> float:
        """Total reserved bandwidth (the sum of guaranteed rates)."""
        return sum(a.rate_mbps for a in self.allocations)

    def allocation(self, tenant: str, app: str) -> Allocation | None:
        for a in self.allocations:
            if (a.tenant, a.app) == (tenant, app):
                return a
        return None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "allocations": [{k: (list(v) if k == "path" else v) for k, v in a.__dict__.items()
                             if v is not None} for a in self.allocations],
            "extra_policies": [{"tenant": p.tenant, "from": list(p.sources), "to": list(p.destinations),
                                "apps": list(p.apps)} for p in self.extra_policies],
            "cpu_quotas": {h: q for h, q in self.cpu_quotas},
            "valid_from": self.valid_from, "valid_until": self.valid_until,
            "reasons": list(self.reasons),
        }

    def effective_spec(self, spec: NetworkSpec) -> NetworkSpec:
        """The spec with this plan's policy additions merged into its tenants."""
        if not self.extra_policies:
            return spec
        tenants = []
        for t in spec.tenants:
            extra = tuple(Policy(p.sources, p.destinations, p.apps) for p in self.extra_policies
                          if p.tenant == t.id)
            tenants.append(Tenant(t.id, t.hosts, t.applications, t.policies + extra, t.allow_icmp,
                                  t.priority))
        return NetworkSpec(spec.name, spec.switches, spec.links, spec.hosts, tuple(tenants), spec.source)


def _path(fld: str, value: Any, spec: NetworkSpec, tenant: Tenant, app: str) -> tuple[str, ...]:
    """A list of adjacent switches joining the switch of some client of ``app`` to a server's."""
    names = {s.name for s in spec.switches}
    if not isinstance(value, list) or not value or any(not isinstance(x, str) for x in value):
        raise PlanError(fld, value, "must be a non-empty list of switch names")
    for x in value:
        if x not in names:
            raise PlanError(fld, value, f"names {x!r}, which is not a switch of the spec")
    if len(set(value)) != len(value):
        raise PlanError(fld, value, "is not a path: it visits a switch twice")
    links = {frozenset((lk.a, lk.b)) for lk in spec.links}
    for u, v in zip(value, value[1:]):
        if frozenset((u, v)) not in links:
            raise PlanError(fld, value, f"is not a path: no link between {u} and {v}")
    ends = {(spec.host(s).switch, spec.host(d).switch) for s, d, a in spec.allowed()
            if a == app and s in tenant.hosts}
    if (value[0], value[-1]) not in ends:
        raise PlanError(fld, value, f"does not join a client's switch to a server's for {app} "
                                    f"(possible ends: {sorted(ends)})")
    return tuple(value)


def _num(fld, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v <= hi:
        raise PlanError(fld, v, f"must be a number > {lo:g} and <= {hi:g}")
    return float(v)


def parse_plan(data: Any, spec: NetworkSpec) -> Plan:
    """Validate decoded JSON against ``spec``; raise :class:`PlanError` naming the field."""
    if not isinstance(data, dict):
        raise PlanError("plan", data, "must be a JSON object")
    unknown = set(data) - {"name", "allocations", "extra_policies", "cpu_quotas", "valid_from",
                           "valid_until", "reasons"}
    if unknown:
        k = sorted(unknown)[0]
        raise PlanError(k, data[k], "unknown field")
    name = data.get("name", "plan")
    if not isinstance(name, str) or not name:
        raise PlanError("name", name, "must be a non-empty string")
    tenants = {t.id: t for t in spec.tenants}
    capacity = max([lk.capacity_mbps for lk in spec.links] + [h.link_mbps for h in spec.hosts])
    allocs: list[Allocation] = []
    for i, a in enumerate(data.get("allocations", [])):
        f = f"allocations[{i}]"
        if not isinstance(a, dict):
            raise PlanError(f, a, "must be an object")
        bad = set(a) - {"tenant", "app", "rate_mbps", "burst_kbit", "dscp", "path"}
        if bad:
            raise PlanError(f"{f}.{sorted(bad)[0]}", a[sorted(bad)[0]], "unknown field")
        t = tenants.get(a.get("tenant"))
        if t is None:
            raise PlanError(f"{f}.tenant", a.get("tenant"), "is not a tenant of the spec")
        if a.get("app") not in [x.name for x in t.applications]:
            raise PlanError(f"{f}.app", a.get("app"), f"is not an application of tenant {t.id}")
        rate = _num(f"{f}.rate_mbps", a.get("rate_mbps"), 0, MAX_METER_MBPS)
        hosts = {h for p in t.policies if a["app"] in p.apps for h in p.sources}
        limit = min([spec.host(h).link_mbps for h in hosts] or [capacity])
        if rate > limit:
            raise PlanError(f"{f}.rate_mbps", rate, f"exceeds the {limit:g} Mbit/s access link of "
                                                    "the application's clients")
        burst = 0.0  # 0: the default burst (a tenth of a second at the rate)
        if a.get("burst_kbit"):
            burst = _num(f"{f}.burst_kbit", a["burst_kbit"], 0, 1e7)
        dscp = a.get("dscp")
        if dscp is not None and (isinstance(dscp, bool) or not isinstance(dscp, int) or not 0 <= dscp < 64):
            raise PlanError(f"{f}.dscp", dscp, "must be an integer 0-63")
        if any((x.tenant, x.app) == (t.id, a["app"]) for x in allocs):
            raise PlanError(f"{f}.app", a["app"], "is allocated twice")
        path = _path(f"{f}.path", a.get("path"), spec, t, a["app"]) if "path" in a else None
        allocs.append(Allocation(t.id, a["app"], rate, burst, dscp, path))
    extras: list[ExtraPolicy] = []
    for i, p in enumerate(data.get("extra_policies", [])):
        f = f"extra_policies[{i}]"
        t = tenants.get(p.get("tenant")) if isinstance(p, dict) else None
        if t is None:
            raise PlanError(f"{f}.tenant", p.get("tenant") if isinstance(p, dict) else p,
                            "is not a tenant of the spec")
        lists = []
        for key, allowed in (("from", t.hosts), ("to", t.hosts), ("apps", [x.name for x in t.applications])):
            v = p.get(key)
            if not isinstance(v, list) or not v or any(x not in allowed for x in v):
                raise PlanError(f"{f}.{key}", v, f"must be a non-empty list of {list(allowed)}")
            lists.append(tuple(v))
        extras.append(ExtraPolicy(t.id, *lists))
    quotas = []
    for h, q in (data.get("cpu_quotas") or {}).items():
        try:
            spec.host(h)
        except KeyError:
            raise PlanError(f"cpu_quotas.{h}", h, "is not a host of the spec") from None
        quotas.append((h, _num(f"cpu_quotas.{h}", q, 0, 1)))
    vf, vu = data.get("valid_from"), data.get("valid_until")
    if vf is not None and vu is not None and vu <= vf:
        raise PlanError("valid_until", vu, f"must be after valid_from {vf}")
    return Plan(name, tuple(allocs), tuple(extras), tuple(quotas), vf, vu,
                tuple(str(r) for r in data.get("reasons", [])))


def load_plan(path: str, spec: NetworkSpec) -> Plan:
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise PlanError("plan", path, f"cannot be read: {e.strerror}") from None
    except ValueError as e:
        raise PlanError("plan", path, f"is not valid JSON: {e}") from None
    return parse_plan(data, spec)
