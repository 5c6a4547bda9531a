"""Allocation plans (pure): what the allocator wants installed, validated against the spec.

A ``Plan`` holds, per tenant application, an ``Allocation``: a guaranteed rate in Mbit/s enforced
by an OpenFlow meter at the ingress switches of the application's clients (L2 frames, as meters
count them) with a burst in kbit, and optionally a DSCP class. It may also carry policy additions
(``extra_policies``) - the shadow network evaluates those before anything like them reaches
production - and compute for hosts: CPU quotas (a share of one CPU, the cgroup's
``cpu.cfs_quota_us`` over its period) and memory limits (MiB, the cgroup's
``memory.limit_in_bytes``), which the hosts' agents apply. ``valid_from``/``valid_until`` bound
when it applies.
Every problem raises :class:`PlanError` naming the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from topologies import NetworkSpec, Policy, Tenant, jsonio
from topologies.shown import shown

MAX_METER_MBPS = 10_000.0
MIN_METER_MBPS = 0.001  # 1 kbit/s: OpenFlow meters count in kbit/s
MAX_NAME_LEN = 100
MAX_REASONS, MAX_REASON_LEN = 50, 500
MAX_EXTRA_POLICIES = 100
MAX_PLAN_BYTES = 256 * 1024
MIN_CPU_QUOTA, MAX_CPU_QUOTA = 0.01, 1.0  # share of one CPU (1000 us of a 100 ms period at least)
MIN_MEMORY_MIB, MAX_MEMORY_MIB = 16.0, 1024.0 * 1024  # a limit under 16 MiB kills any shell
MAX_EPOCH_S = 4102444800.0  # 2100-01-01: later times are typing mistakes
# the service objective of an allocation: a step violates it when the meters drop more than this
# fraction of what the application offered
VIOLATION_DROP = 0.01


def exceeds(demand: float, rate: float) -> bool:
    """Whether a step offering ``demand`` at ``rate`` in force (same unit) violates the service
    objective: the rate drops more than :data:`VIOLATION_DROP` of the demand."""
    return bool(demand * (1 - VIOLATION_DROP) > rate + 1e-9)


DEFAULT_BURST_S = 0.1  # a meter's burst when the plan names none: this long at its rate


class PlanError(ValueError):
    def __init__(self, fld: str, value: Any, reason: str):
        self.field = fld
        self.value = value
        self.reason = reason
        super().__init__(f"{shown(fld, 120)[1:-1]}: {reason} (got {shown(value)})")


@dataclass(frozen=True)
class Allocation:
    tenant: str
    app: str
    rate_mbps: float
    burst_kbit: float = 0.0  # 0: DEFAULT_BURST_S at the rate
    dscp: int | None = None
    path: tuple[str, ...] | None = None  # switches from the clients' switch to the servers'

    @property
    def burst(self) -> float:
        """The meter's burst in kbit."""
        return self.burst_kbit or self.rate_mbps * (1000.0 * DEFAULT_BURST_S)


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
    memory_limits: tuple[tuple[str, float], ...] = ()  # (host, MiB)
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

    def cpu_quota(self, host: str) -> float | None:
        """The host's CPU quota, a share of one CPU (None: the plan sets none)."""
        return dict(self.cpu_quotas).get(host)

    def memory_limit(self, host: str) -> float | None:
        """The host's memory limit, MiB (None: the plan sets none)."""
        return dict(self.memory_limits).get(host)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "allocations": [{k: (list(v) if k == "path" else v) for k, v in a.__dict__.items()
                             if v is not None} for a in self.allocations],
            "extra_policies": [{"tenant": p.tenant, "from": list(p.sources), "to": list(p.destinations),
                                "apps": list(p.apps)} for p in self.extra_policies],
            "cpu_quotas": {h: q for h, q in self.cpu_quotas},
            "memory_limits": {h: m for h, m in self.memory_limits},
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


def _num(fld, v, lo, hi, lo_open: bool = True):
    ok = (not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
          and (lo < v if lo_open else lo <= v) and v <= hi)
    if not ok:
        raise PlanError(fld, v, f"must be a number {'>' if lo_open else '>='} {lo:g} and <= {hi:g}")
    return float(v)


def _list(data: dict, key: str) -> list:
    v = data.get(key, [])
    if not isinstance(v, list):
        raise PlanError(key, v, "must be a list")
    return v


def _time(data: dict, key: str) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    return _num(key, v, 0, MAX_EPOCH_S, lo_open=False)


def _access_links(spec: NetworkSpec, allocs: list[Allocation]) -> None:
    """Guaranteed rates a host's access link must carry (as a client sending, and as a server
    receiving) may not add up to more than the link: such a plan cannot be honoured."""
    load: dict[tuple[str, str], list[Allocation]] = {}
    for al in allocs:
        t = spec.tenant(al.tenant)
        for p in t.policies:
            if al.app not in p.apps:
                continue
            for h in p.sources:
                load.setdefault((h, "sends"), [])
                if al not in load[(h, "sends")]:
                    load[(h, "sends")].append(al)
            for h in p.destinations:
                load.setdefault((h, "receives"), [])
                if al not in load[(h, "receives")]:
                    load[(h, "receives")].append(al)
    for (h, role), als in sorted(load.items()):
        total = sum(x.rate_mbps for x in als)
        cap = spec.host(h).link_mbps
        if total > cap * (1 + 1e-9):
            i = allocs.index(als[-1])
            raise PlanError(f"allocations[{i}].rate_mbps", als[-1].rate_mbps,
                            f"brings the guaranteed rates host {h} {role} to {total:g} Mbit/s "
                            f"({', '.join(f'{x.tenant}/{x.app}' for x in als)}), more than its "
                            f"{cap:g} Mbit/s access link")


def parse_plan(data: Any, spec: NetworkSpec) -> Plan:
    """Validate decoded JSON against ``spec``; raise :class:`PlanError` naming the field."""
    if not isinstance(data, dict):
        raise PlanError("plan", data, "must be a JSON object")
    unknown = set(data) - {"name", "allocations", "extra_policies", "cpu_quotas", "memory_limits",
                           "valid_from", "valid_until", "reasons"}
    if unknown:
        k = sorted(unknown)[0]
        raise PlanError(k, data[k], "unknown field")
    name = data.get("name", "plan")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LEN or not name.isprintable():
        raise PlanError("name", name, f"must be a printable string of 1-{MAX_NAME_LEN} characters")
    allocs = _allocations(data, spec)
    _access_links(spec, allocs)
    extras = _extra_policies(data, spec)
    quotas = _per_host(data, spec, "cpu_quotas", "share of one CPU", MIN_CPU_QUOTA, MAX_CPU_QUOTA)
    limits = _per_host(data, spec, "memory_limits", "MiB", MIN_MEMORY_MIB, MAX_MEMORY_MIB)
    vf, vu = _time(data, "valid_from"), _time(data, "valid_until")
    if vf is not None and vu is not None and vu <= vf:
        raise PlanError("valid_until", vu, f"must be after valid_from {vf}")
    reasons = _list(data, "reasons")
    if len(reasons) > MAX_REASONS:
        raise PlanError("reasons", len(reasons), f"at most {MAX_REASONS} entries")
    for i, r in enumerate(reasons):
        if not isinstance(r, str) or len(r) > MAX_REASON_LEN:
            raise PlanError(f"reasons[{i}]", r, f"must be a string of at most {MAX_REASON_LEN} characters")
    return Plan(name, tuple(allocs), tuple(extras), tuple(quotas), tuple(limits), vf, vu,
                tuple(reasons))


def _allocations(data: dict, spec: NetworkSpec) -> list[Allocation]:
    tenants = {t.id: t for t in spec.tenants}
    capacity = max([lk.capacity_mbps for lk in spec.links] + [h.link_mbps for h in spec.hosts])
    allocs: list[Allocation] = []
    for i, a in enumerate(_list(data, "allocations")):
        f = f"allocations[{i}]"
        if not isinstance(a, dict):
            raise PlanError(f, a, "must be an object")
        bad = set(a) - {"tenant", "app", "rate_mbps", "burst_kbit", "dscp", "path"}
        if bad:
            raise PlanError(f"{f}.{sorted(bad)[0]}", a[sorted(bad)[0]], "unknown field")
        t = tenants.get(a.get("tenant")) if isinstance(a.get("tenant"), str) else None
        if t is None:
            raise PlanError(f"{f}.tenant", a.get("tenant"), "is not a tenant of the spec")
        if not isinstance(a.get("app"), str) or a["app"] not in [x.name for x in t.applications]:
            raise PlanError(f"{f}.app", a.get("app"), f"is not an application of tenant {t.id}")
        rate = _num(f"{f}.rate_mbps", a.get("rate_mbps"), MIN_METER_MBPS, MAX_METER_MBPS, lo_open=False)
        hosts = {h for p in t.policies if a["app"] in p.apps for h in p.sources}
        limit = min([spec.host(h).link_mbps for h in hosts] or [capacity])
        if rate > limit:
            raise PlanError(f"{f}.rate_mbps", rate, f"exceeds the {limit:g} Mbit/s access link of "
                                                    "the application's clients")
        burst = 0.0  # 0: the default burst (a tenth of a second at the rate)
        if a.get("burst_kbit"):
            burst = _num(f"{f}.burst_kbit", a["burst_kbit"], 1, 1e7, lo_open=False)  # meters count kbit
        dscp = a.get("dscp")
        if dscp is not None and (isinstance(dscp, bool) or not isinstance(dscp, int) or not 0 <= dscp < 64):
            raise PlanError(f"{f}.dscp", dscp, "must be an integer 0-63")
        if any((x.tenant, x.app) == (t.id, a["app"]) for x in allocs):
            raise PlanError(f"{f}.app", a["app"], "is allocated twice")
        path = _path(f"{f}.path", a.get("path"), spec, t, a["app"]) if "path" in a else None
        allocs.append(Allocation(t.id, a["app"], rate, burst, dscp, path))
    return allocs


def _extra_policies(data: dict, spec: NetworkSpec) -> list[ExtraPolicy]:
    tenants = {t.id: t for t in spec.tenants}
    extras: list[ExtraPolicy] = []
    if len(_list(data, "extra_policies")) > MAX_EXTRA_POLICIES:
        raise PlanError("extra_policies", len(data["extra_policies"]), f"at most {MAX_EXTRA_POLICIES}")
    for i, p in enumerate(_list(data, "extra_policies")):
        f = f"extra_policies[{i}]"
        if not isinstance(p, dict):
            raise PlanError(f, p, "must be an object with tenant, from, to and apps")
        bad = set(p) - {"tenant", "from", "to", "apps"}
        if bad:
            raise PlanError(f"{f}.{sorted(bad)[0]}", p[sorted(bad)[0]],
                            "unknown field (a policy addition has tenant, from, to and apps; "
                            "an application's ports come from the spec)")
        t = tenants.get(p.get("tenant")) if isinstance(p.get("tenant"), str) else None
        if t is None:
            raise PlanError(f"{f}.tenant", p.get("tenant"), "is not a tenant of the spec")
        lists = []
        for key, allowed in (("from", t.hosts), ("to", t.hosts), ("apps", [x.name for x in t.applications])):
            v = p.get(key)
            if (not isinstance(v, list) or not v
                    or any(not isinstance(x, str) or x not in allowed for x in v)):
                raise PlanError(f"{f}.{key}", v, f"must be a non-empty list of {list(allowed)}")
            lists.append(tuple(v))
        extras.append(ExtraPolicy(t.id, *lists))
    return extras


def _per_host(data: dict, spec: NetworkSpec, key: str, unit: str, lo: float,
              hi: float) -> list[tuple[str, float]]:
    """``key`` as an object of host: number in [lo, hi] (``unit``), every host one of the spec's."""
    out = []
    v = data.get(key, {})
    if v is None:
        v = {}
    if not isinstance(v, dict):
        raise PlanError(key, v, f"must be an object of host: {unit}")
    for h, q in v.items():
        try:
            spec.host(h)
        except KeyError:
            raise PlanError(f"{key}.{h}", h, "is not a host of the spec") from None
        out.append((h, _num(f"{key}.{h}", q, lo, hi, lo_open=False)))
    return out


def read_plan_file(path: str) -> Any:
    """The decoded plan file: strict JSON of at most :data:`MAX_PLAN_BYTES`; a
    :class:`PlanError` naming the file otherwise."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PLAN_BYTES + 1)
    except OSError as e:
        raise PlanError(f"{path}: plan", path, f"cannot be read: {e.strerror}") from None
    try:
        return jsonio.loads(raw, "plan", MAX_PLAN_BYTES)
    except jsonio.JsonInputError as e:
        raise PlanError(f"{path}: plan", path, str(e).removeprefix("plan: ")) from None


def load_plan(path: str, spec: NetworkSpec) -> Plan:
    """Read and validate a plan file; every problem is a :class:`PlanError` naming the file."""
    data = read_plan_file(path)
    try:
        return parse_plan(data, spec)
    except PlanError as e:
        raise PlanError(f"{path}: {e.field}", e.value, e.reason) from None
