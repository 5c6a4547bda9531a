"""Tenant isolation check: what the spec says may talk, against what really gets through.

For every ordered pair of distinct hosts, the check probes ICMP and every (protocol, port) that
any tenant uses as an application, so cross-tenant and denied-port probes hit a listening socket
and fail only because the network drops them. Each host runs a probe server on all those ports;
each source host runs one concurrent probe client.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass

from topologies import NetworkSpec


@dataclass(frozen=True)
class ProbeCase:
    src: str
    dst: str
    proto: str  # tcp | udp | icmp
    port: int | None
    app: str  # the application name as the source's tenant calls it, else "proto/port"
    expected: bool


@dataclass(frozen=True)
class ProbeResult:
    case: ProbeCase
    observed: bool
    rtt_ms: float | None

    @property
    def conforms(self) -> bool:
        return self.case.expected == self.observed


def app_ports(spec: NetworkSpec) -> list[tuple[str, int]]:
    return sorted({(a.protocol, a.port) for t in spec.tenants for a in t.applications})


def expected_cases(spec: NetworkSpec) -> list[ProbeCase]:
    allowed = spec.allowed()
    owner = {h: t for t in spec.tenants for h in t.hosts}
    cases = []
    for s in spec.hosts:
        for d in spec.hosts:
            if s.name == d.name:
                continue
            ts, td = owner.get(s.name), owner.get(d.name)
            same = ts is not None and ts is td
            cases.append(ProbeCase(s.name, d.name, "icmp", None, "icmp",
                                   bool(same and ts.allow_icmp)))
            for proto, port in app_ports(spec):
                names = [a.name for t in (ts, td) if t for a in t.applications
                         if (a.protocol, a.port) == (proto, port)]
                label = names[0] if names else f"{proto}/{port}"
                ok = same and any((s.name, d.name, a.name) in allowed for a in ts.applications
                                  if (a.protocol, a.port) == (proto, port))
                cases.append(ProbeCase(s.name, d.name, proto, port, label, bool(ok)))
    return cases


def run_probes(lab, spec: NetworkSpec, cases: list[ProbeCase], timeout_s: float = 1.0,
               tries: int = 2) -> list[ProbeResult]:
    """Run ``cases`` in ``lab`` (an :class:`emulation.lab.Lab`), all sources in parallel."""
    ports = app_ports(spec)
    tcp = ",".join(str(p) for proto, p in ports if proto == "tcp")
    udp = ",".join(str(p) for proto, p in ports if proto == "udp")
    servers = []
    clients = []
    try:
        for h in spec.hosts:
            p = lab.host(h.name).popen([sys.executable, "-u", "-m", "emulation.probe", "serve",
                                        "--tcp", tcp, "--udp", udp],
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            servers.append(p)
        for p in servers:
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"probe server: failed to start: {line}")
        by_src: dict[str, list[ProbeCase]] = defaultdict(list)
        for c in cases:
            by_src[c.src].append(c)
        for src, cs in by_src.items():
            targets = [{"ip": spec.host(c.dst).ip, "proto": c.proto, "port": c.port} for c in cs]
            p = lab.host(src).popen([sys.executable, "-m", "emulation.probe", "check",
                                     "--timeout", str(timeout_s), "--tries", str(tries)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            # hand over the targets now, so that all sources probe at the same time
            p.stdin.write(json.dumps(targets))
            p.stdin.close()
            clients.append((p, cs))
        results: list[ProbeResult] = []
        for p, cs in clients:
            out = p.stdout.read()
            p.wait(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"probe client: exited {p.returncode}: {out.strip()[-500:]}")
            lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
            for c, r in zip(cs, lines, strict=True):
                results.append(ProbeResult(c, bool(r["ok"]), r["rtt_ms"]))
        return results
    finally:
        for p, _ in clients:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in servers:
            p.kill()
            p.wait()


def summarise(spec: NetworkSpec, results: list[ProbeResult]) -> list[dict]:
    """One row per intra-tenant host pair and one per ordered tenant pair across tenants."""
    owner = {h: t.id for t in spec.tenants for h in t.hosts}
    rows: dict[tuple, dict] = {}
    for r in results:
        c = r.case
        same = owner.get(c.src) == owner.get(c.dst)
        key = ("pair", c.src, c.dst) if same else ("cross", owner.get(c.src), owner.get(c.dst))
        row = rows.setdefault(key, {
            "from": c.src if same else f"tenant {owner.get(c.src)}",
            "to": c.dst if same else f"tenant {owner.get(c.dst)}",
            "tenant": owner.get(c.src) if same else "cross-tenant",
            "expected": set(), "observed": set(), "probes": 0, "mismatches": 0})
        row["probes"] += 1
        if c.expected:
            row["expected"].add(c.app)
        if r.observed:
            row["observed"].add(c.app)
        if not r.conforms:
            row["mismatches"] += 1
    return [
        {**row, "expected": sorted(row["expected"]), "observed": sorted(row["observed"])}
        for _, row in sorted(rows.items(), key=lambda kv: (kv[0][0] == "cross", kv[0][1:]))
    ]
