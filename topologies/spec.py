"""The network spec: switches, links, hosts and tenants, parsed once into frozen objects.

A spec is a YAML file (see ``default.yaml``). :func:`load_spec` reads it and :func:`parse_spec`
validates the decoded mapping into a :class:`NetworkSpec`. Every problem raises
:class:`SpecError`, whose message names the file, the field (a path such as ``hosts[2].ip``)
and the offending value. Nothing is silently defaulted or ignored: unknown keys are errors.

Units: link capacities are in Mbit/s (``capacity_mbps``); a host's ``cpu`` is the fraction of one
machine's CPU time it may use (0 < cpu <= 1).

Naming: emulation objects are named ``<prefix><name>`` with a prefix of at most
:data:`MAX_PREFIX_LEN` characters, and Mininet names interfaces ``<node>-eth<port>``. Linux limits
interface names to 15 characters, so node names are limited to :data:`MAX_NAME_LEN` characters
and a switch to :data:`MAX_PORTS` ports (two port digits).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .shown import shown

IFNAME_MAX = 15
MAX_PREFIX_LEN = 3
MAX_PORTS = 99
MAX_NAME_LEN = IFNAME_MAX - MAX_PREFIX_LEN - len("-eth") - len(str(MAX_PORTS))
MAX_LINK_MBPS = 1000.0  # the largest bandwidth Mininet's HTB links accept
MAX_TENANTS = 0xFFFF
MAX_APPS = 0xFF
# (source, destination, application) triples the policies may allow: each becomes flow rules on
# every switch of its path in both directions, so this bounds the rule tables (and the time and
# memory compiling them takes) to what Open vSwitch's userspace datapath handles comfortably
MAX_ALLOWED = 20_000
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
TENANT_RE = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
PROTOCOLS = ("tcp", "udp")
ANY = "*"


class SpecError(ValueError):
    """A spec is invalid. ``source`` is the file, ``field`` the path of the bad field."""

    def __init__(self, source: str, field: str, value: Any, reason: str):
        self.source = source
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{source}: {field}: {reason} (got {shown(value)})")


@dataclass(frozen=True)
class Switch:
    name: str
    dpid: int


@dataclass(frozen=True)
class Link:
    """An undirected switch-to-switch link of ``capacity_mbps`` Mbit/s in each direction."""

    a: str
    b: str
    capacity_mbps: float

    def ends(self) -> tuple[str, str]:
        return (self.a, self.b)


@dataclass(frozen=True)
class Host:
    """A host attached to one switch by a link of ``link_mbps`` Mbit/s."""

    name: str
    switch: str
    ip: str
    prefixlen: int
    mac: str
    link_mbps: float
    cpu: float | None = None


@dataclass(frozen=True)
class Application:
    name: str
    protocol: str
    port: int


@dataclass(frozen=True)
class Policy:
    """Hosts in ``sources`` may open connections to ``apps`` on the hosts in ``destinations``."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    apps: tuple[str, ...]


@dataclass(frozen=True)
class Tenant:
    id: str
    hosts: tuple[str, ...]
    applications: tuple[Application, ...]
    policies: tuple[Policy, ...]
    allow_icmp: bool = True
    priority: int = 1

    def app(self, name: str) -> Application:
        for a in self.applications:
            if a.name == name:
                return a
        raise KeyError(name)


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    switches: tuple[Switch, ...]
    links: tuple[Link, ...]
    hosts: tuple[Host, ...]
    tenants: tuple[Tenant, ...]
    source: str = field(default="<spec>", compare=False)

    def host(self, name: str) -> Host:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def switch(self, name: str) -> Switch:
        for s in self.switches:
            if s.name == name:
                return s
        raise KeyError(name)

    def tenant(self, tenant_id: str) -> Tenant:
        for t in self.tenants:
            if t.id == tenant_id:
                return t
        raise KeyError(tenant_id)

    def tenant_of(self, host: str) -> Tenant:
        for t in self.tenants:
            if host in t.hosts:
                return t
        raise KeyError(host)

    def allowed(self) -> set[tuple[str, str, str]]:
        """Every (source host, destination host, application) the policies allow."""
        out: set[tuple[str, str, str]] = set()
        for t in self.tenants:
            for p in t.policies:
                for s in p.sources:
                    for d in p.destinations:
                        if s != d:
                            for a in p.apps:
                                out.add((s, d, a))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data, in the YAML layout (``parse_spec(spec.to_dict())`` round-trips)."""
        return {
            "name": self.name,
            "switches": [{"name": s.name, "dpid": s.dpid} for s in self.switches],
            "links": [{"a": lk.a, "b": lk.b, "capacity_mbps": lk.capacity_mbps} for lk in self.links],
            "hosts": [
                {
                    "name": h.name,
                    "switch": h.switch,
                    "ip": f"{h.ip}/{h.prefixlen}",
                    "mac": h.mac,
                    "link_mbps": h.link_mbps,
                    **({"cpu": h.cpu} if h.cpu is not None else {}),
                }
                for h in self.hosts
            ],
            "tenants": [
                {
                    "id": t.id,
                    "hosts": list(t.hosts),
                    "allow_icmp": t.allow_icmp,
                    "priority": t.priority,
                    "applications": [
                        {"name": a.name, "protocol": a.protocol, "port": a.port} for a in t.applications
                    ],
                    "policies": [
                        {"from": list(p.sources), "to": list(p.destinations), "apps": list(p.apps)}
                        for p in t.policies
                    ],
                }
                for t in self.tenants
            ],
        }


# --------------------------------------------------------------------------- parsing helpers


class _Ctx:
    """Carries the source name so every check can raise a complete :class:`SpecError`."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, fld: str, value: Any, reason: str) -> SpecError:
        return SpecError(self.source, fld, value, reason)

    def mapping(self, fld: str, value: Any, allowed: set[str], required: set[str]) -> Mapping:
        if not isinstance(value, Mapping):
            raise self.fail(fld or "<document>", value, "must be a mapping")
        for k in value:
            if k not in allowed:
                raise self.fail(f"{fld}.{k}" if fld else str(k), value[k],
                                f"unknown key; allowed keys are {sorted(allowed)}")
        for k in sorted(required):
            if k not in value:
                raise self.fail(f"{fld}.{k}" if fld else k, None, "is required")
        return value

    def seq(self, fld: str, value: Any, nonempty: bool = True) -> list:
        if not isinstance(value, list):
            raise self.fail(fld, value, "must be a list")
        if nonempty and not value:
            raise self.fail(fld, value, "must not be empty")
        return value

    def string(self, fld: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(fld, value, "must be a string")
        return value

    def integer(self, fld: str, value: Any, lo: int, hi: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(fld, value, "must be an integer")
        if not lo <= value <= hi:
            raise self.fail(fld, value, f"must be between {lo} and {hi}")
        return value

    def number(self, fld: str, value: Any, lo_exclusive: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(fld, value, "must be a number")
        if not lo_exclusive < value <= hi:
            raise self.fail(fld, value, f"must be > {lo_exclusive:g} and <= {hi:g}")
        return float(value)

    def boolean(self, fld: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(fld, value, "must be true or false")
        return value

    def node_name(self, fld: str, value: Any) -> str:
        name = self.string(fld, value)
        if not NAME_RE.match(name):
            raise self.fail(fld, name, "must start with a letter and hold only letters and digits")
        if len(name) > MAX_NAME_LEN:
            longest = "x" * MAX_PREFIX_LEN + name + f"-eth{MAX_PORTS}"
            raise self.fail(
                fld, name,
                f"is longer than {MAX_NAME_LEN} characters: the interface name {longest!r} would "
                f"exceed Linux's {IFNAME_MAX}-character limit",
            )
        return name


def _host_list(ctx: _Ctx, fld: str, value: Any, members: tuple[str, ...]) -> tuple[str, ...]:
    if value == ANY:
        return members
    items = ctx.seq(fld, value)
    out = []
    for i, h in enumerate(items):
        name = ctx.string(f"{fld}[{i}]", h)
        if name not in members:
            raise ctx.fail(f"{fld}[{i}]", name, "is not a host of this tenant")
        out.append(name)
    return tuple(out)


def parse_spec(data: Any, source: str = "<spec>") -> NetworkSpec:
    """Validate decoded YAML/JSON ``data`` into a :class:`NetworkSpec` or raise :class:`SpecError`
    (section by section, in the order of the document: the first bad field is the one named)."""
    ctx = _Ctx(source)
    top = ctx.mapping("", data, {"name", "description", "switches", "links", "hosts", "tenants"},
                      {"name", "switches", "hosts", "tenants"})
    name = ctx.string("name", top["name"])
    if "description" in top:
        ctx.string("description", top["description"])
    seen_nodes: dict[str, str] = {}  # node name -> the field that named it first
    switches = _switches(ctx, top["switches"], seen_nodes)
    ports = {s.name: 0 for s in switches}  # per switch, counted by links and hosts
    links = _links(ctx, top.get("links", []), ports)
    hosts = _hosts(ctx, top["hosts"], seen_nodes, ports)
    for sw, n in ports.items():
        if n > MAX_PORTS:
            raise ctx.fail("links", sw, f"switch has {n} ports; at most {MAX_PORTS} are supported")
    _check_connected(ctx, switches, links)
    tenants = _tenants(ctx, top["tenants"], {h.name for h in hosts})
    return NetworkSpec(name, tuple(switches), tuple(links), tuple(hosts), tuple(tenants), source)


def _switches(ctx: _Ctx, raw_list: Any, seen_nodes: dict[str, str]) -> list[Switch]:
    switches: list[Switch] = []
    seen_dpids: set[int] = set()
    for i, raw in enumerate(ctx.seq("switches", raw_list)):
        f = f"switches[{i}]"
        m = ctx.mapping(f, raw, {"name", "dpid"}, {"name"})
        sname = ctx.node_name(f"{f}.name", m["name"])
        if sname in seen_nodes:
            raise ctx.fail(f"{f}.name", sname, f"duplicates the name of {seen_nodes[sname]}")
        seen_nodes[sname] = f
        dpid = ctx.integer(f"{f}.dpid", m.get("dpid", i + 1), 1, 2**48 - 1)
        if dpid in seen_dpids:
            raise ctx.fail(f"{f}.dpid", dpid, "is used by another switch")
        seen_dpids.add(dpid)
        switches.append(Switch(sname, dpid))
    return switches


def _links(ctx: _Ctx, raw_list: Any, ports: dict[str, int]) -> list[Link]:
    links: list[Link] = []
    seen_pairs: set[frozenset] = set()
    for i, raw in enumerate(ctx.seq("links", raw_list, nonempty=False)):
        f = f"links[{i}]"
        m = ctx.mapping(f, raw, {"a", "b", "capacity_mbps"}, {"a", "b", "capacity_mbps"})
        a = ctx.string(f"{f}.a", m["a"])
        b = ctx.string(f"{f}.b", m["b"])
        for end, v in (("a", a), ("b", b)):
            if v not in ports:
                raise ctx.fail(f"{f}.{end}", v, "is not a switch of this spec")
        if a == b:
            raise ctx.fail(f"{f}.b", b, "a link must join two different switches")
        pair = frozenset((a, b))
        if pair in seen_pairs:
            raise ctx.fail(f, f"{a}-{b}", "duplicates another link between the same switches")
        seen_pairs.add(pair)
        cap = ctx.number(f"{f}.capacity_mbps", m["capacity_mbps"], 0, MAX_LINK_MBPS)
        ports[a] += 1
        ports[b] += 1
        links.append(Link(a, b, cap))
    return links


def _hosts(ctx: _Ctx, raw_list: Any, seen_nodes: dict[str, str], ports: dict[str, int]) -> list[Host]:
    hosts: list[Host] = []
    seen_ips: dict[str, str] = {}
    seen_macs: dict[str, str] = {}
    network: ipaddress.IPv4Network | None = None
    for i, raw in enumerate(ctx.seq("hosts", raw_list)):
        f = f"hosts[{i}]"
        m = ctx.mapping(f, raw, {"name", "switch", "ip", "mac", "link_mbps", "cpu"},
                        {"name", "switch", "ip"})
        hname = ctx.node_name(f"{f}.name", m["name"])
        if hname in seen_nodes:
            raise ctx.fail(f"{f}.name", hname, f"duplicates the name of {seen_nodes[hname]}")
        seen_nodes[hname] = f
        sw = ctx.string(f"{f}.switch", m["switch"])
        if sw not in ports:
            raise ctx.fail(f"{f}.switch", sw, "is not a switch of this spec")
        ports[sw] += 1
        iface = _host_address(ctx, f, m["ip"])
        ip = str(iface.ip)
        if network is None:
            network = iface.network
        elif iface.network != network:
            raise ctx.fail(f"{f}.ip", m["ip"], f"all hosts must share one subnet ({network})")
        if ip in seen_ips:
            raise ctx.fail(f"{f}.ip", ip, f"is also the address of {seen_ips[ip]}")
        seen_ips[ip] = hname
        default_mac = "02:00:" + ":".join(f"{b:02x}" for b in iface.ip.packed)  # locally administered
        mac = ctx.string(f"{f}.mac", m.get("mac", default_mac)).lower()
        if not MAC_RE.match(mac):
            raise ctx.fail(f"{f}.mac", mac, "is not a MAC address (xx:xx:xx:xx:xx:xx)")
        if int(mac[:2], 16) & 1:
            raise ctx.fail(f"{f}.mac", mac, "is a multicast address")
        if mac in seen_macs:
            raise ctx.fail(f"{f}.mac", mac, f"is also the address of {seen_macs[mac]}")
        seen_macs[mac] = hname
        link_mbps = ctx.number(f"{f}.link_mbps", m.get("link_mbps", 100), 0, MAX_LINK_MBPS)
        cpu = ctx.number(f"{f}.cpu", m["cpu"], 0, 1) if "cpu" in m else None
        hosts.append(Host(hname, sw, ip, iface.network.prefixlen, mac, link_mbps, cpu))
    return hosts


def _host_address(ctx: _Ctx, f: str, raw: Any) -> ipaddress.IPv4Interface:
    ip_text = ctx.string(f"{f}.ip", raw)
    try:
        iface = ipaddress.IPv4Interface(ip_text if "/" in ip_text else ip_text + "/24")
    except ValueError:
        raise ctx.fail(f"{f}.ip", ip_text, "is not an IPv4 address (a.b.c.d or a.b.c.d/len)") from None
    if iface.ip in (iface.network.network_address, iface.network.broadcast_address):
        raise ctx.fail(f"{f}.ip", ip_text, "is the network or broadcast address of its subnet")
    return iface


def _check_connected(ctx: _Ctx, switches: list[Switch], links: list[Link]) -> None:
    """The switch graph must be connected, or some host pairs could never talk."""
    if not switches:
        return
    adj: dict[str, set[str]] = {s.name: set() for s in switches}
    for lk in links:
        adj[lk.a].add(lk.b)
        adj[lk.b].add(lk.a)
    start = switches[0].name
    reached, todo = {start}, [start]
    while todo:
        for nxt in adj[todo.pop()]:
            if nxt not in reached:
                reached.add(nxt)
                todo.append(nxt)
    for s in switches:
        if s.name not in reached:
            raise ctx.fail("links", s.name, f"switch cannot be reached from {start}")


_NAME_RULE = "must be 1-16 characters: a lower-case letter, then lower-case letters, digits or '_'"


def _tenants(ctx: _Ctx, raw_list: Any, host_names: set[str]) -> list[Tenant]:
    tenants: list[Tenant] = []
    owner: dict[str, str] = {}  # host -> the tenant it belongs to
    for i, raw in enumerate(ctx.seq("tenants", raw_list)):
        f = f"tenants[{i}]"
        m = ctx.mapping(f, raw, {"id", "hosts", "applications", "policies", "allow_icmp", "priority"},
                        {"id", "hosts"})
        tid = ctx.string(f"{f}.id", m["id"])
        if not TENANT_RE.match(tid):
            raise ctx.fail(f"{f}.id", tid, _NAME_RULE)
        if any(t.id == tid for t in tenants):
            raise ctx.fail(f"{f}.id", tid, "is the id of another tenant")
        members: list[str] = []
        for j, h in enumerate(ctx.seq(f"{f}.hosts", m["hosts"])):
            hn = ctx.string(f"{f}.hosts[{j}]", h)
            if hn not in host_names:
                raise ctx.fail(f"{f}.hosts[{j}]", hn, "is not a host of this spec")
            if hn in owner:
                raise ctx.fail(f"{f}.hosts[{j}]", hn, f"already belongs to tenant {owner[hn]!r}")
            owner[hn] = tid
            members.append(hn)
        apps = _applications(ctx, f, m.get("applications", []))
        policies = _policies(ctx, f, m.get("policies", []), tuple(members), apps)
        allow_icmp = ctx.boolean(f"{f}.allow_icmp", m.get("allow_icmp", True))
        priority = ctx.integer(f"{f}.priority", m.get("priority", 1), 1, 100)
        tenants.append(Tenant(tid, tuple(members), tuple(apps), tuple(policies), allow_icmp, priority))
    if len(tenants) > MAX_TENANTS:
        raise ctx.fail("tenants", len(tenants), f"at most {MAX_TENANTS} tenants")
    allowed = sum(len(p.sources) * len(p.destinations) * len(p.apps) for t in tenants for p in t.policies)
    if allowed > MAX_ALLOWED:
        raise ctx.fail("tenants", allowed, f"the policies allow {allowed} (source, destination, "
                                           f"application) combinations; at most {MAX_ALLOWED}")
    return tenants


def _applications(ctx: _Ctx, f: str, raw_list: Any) -> list[Application]:
    apps: list[Application] = []
    for j, rawapp in enumerate(ctx.seq(f"{f}.applications", raw_list, False)):
        af = f"{f}.applications[{j}]"
        am = ctx.mapping(af, rawapp, {"name", "protocol", "port"}, {"name", "protocol", "port"})
        aname = ctx.string(f"{af}.name", am["name"])
        if not TENANT_RE.match(aname):
            raise ctx.fail(f"{af}.name", aname, _NAME_RULE)
        if any(a.name == aname for a in apps):
            raise ctx.fail(f"{af}.name", aname, "names another application of this tenant")
        proto = ctx.string(f"{af}.protocol", am["protocol"])
        if proto not in PROTOCOLS:
            raise ctx.fail(f"{af}.protocol", proto, f"must be one of {list(PROTOCOLS)}")
        port = ctx.integer(f"{af}.port", am["port"], 1, 65535)
        if any(a.protocol == proto and a.port == port for a in apps):
            raise ctx.fail(f"{af}.port", port, f"another application already uses {proto}/{port}")
        apps.append(Application(aname, proto, port))
    if len(apps) > MAX_APPS:
        raise ctx.fail(f"{f}.applications", len(apps), f"at most {MAX_APPS} applications")
    return apps


def _policies(ctx: _Ctx, f: str, raw_list: Any, members: tuple[str, ...],
              apps: list[Application]) -> list[Policy]:
    app_names = {a.name for a in apps}
    policies: list[Policy] = []
    for j, rawpol in enumerate(ctx.seq(f"{f}.policies", raw_list, False)):
        pf = f"{f}.policies[{j}]"
        pm = ctx.mapping(pf, rawpol, {"from", "to", "apps"}, {"from", "to", "apps"})
        srcs = _host_list(ctx, f"{pf}.from", pm["from"], members)
        dsts = _host_list(ctx, f"{pf}.to", pm["to"], members)
        if pm["apps"] == ANY:
            papps = tuple(a.name for a in apps)
        else:
            named = []
            for k, an in enumerate(ctx.seq(f"{pf}.apps", pm["apps"])):
                an = ctx.string(f"{pf}.apps[{k}]", an)
                if an not in app_names:
                    raise ctx.fail(f"{pf}.apps[{k}]", an, "is not an application of this tenant")
                named.append(an)
            papps = tuple(named)
        policies.append(Policy(srcs, dsts, papps))
    return policies


def load_spec(path: str | Path) -> NetworkSpec:
    """Read and validate the YAML spec at ``path``; raise :class:`SpecError` on any problem.
    The file is read within the bounds of :func:`topologies.yamlio.load_yaml` (size, aliases,
    depth, no duplicate keys)."""
    from .yamlio import MAX_BYTES, YamlInputError, load_yaml

    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise SpecError(str(p), "<file>", f"{size} bytes", f"larger than the limit of {MAX_BYTES} "
                                                              "bytes for a spec")
        with open(p, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise SpecError(str(p), "<file>", str(p), f"cannot be read: {e.strerror}") from None
    try:
        data = load_yaml(raw)
    except YamlInputError as e:
        raise SpecError(str(p), e.where, e.value, e.reason) from None
    return parse_spec(data, str(p))


def bundled(name: str) -> Path:
    """Path of a spec shipped in this package, e.g. ``bundled('default')``."""
    return Path(__file__).with_name(f"{name}.yaml")
