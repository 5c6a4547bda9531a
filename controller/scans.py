"""Scan history (pure): what a scan found per host pair and port, as the store keeps it.

A scan (:mod:`emulation.scan`) probes every ordered host pair on ICMP and application ports; each
result says whether the target answered and the round-trip time of the answers. Shadows scan
before every load run, and ``netshadow run --scan-prefix`` scans production at a low rate; both
post their results (``POST /api/v1/scans``) so reachability and RTT per path are kept over time:
a pair that stops answering is a topology or policy drift, and the planner routes around the
links such pairs cross (:mod:`planner.scans`).

:func:`parse_scans` validates a posted batch against the spec; every problem is a
:class:`ScanError` naming the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from topologies import NetworkSpec
from topologies.shown import shown

ORIGINS = ("shadow", "production")
PROTOS = ("icmp", "tcp", "udp")
MAX_RESULTS = 20_000  # per post: every pair of a 100-host spec on ICMP and a port
MAX_RTT_MS = 600_000.0


class ScanError(ValueError):
    def __init__(self, fld: str, value: Any, reason: str):
        self.field, self.value, self.reason = fld, value, reason
        super().__init__(f"{fld}: {reason} (got {shown(value)})")


@dataclass(frozen=True)
class ScanResult:
    t: float  # epoch seconds the scan ran
    origin: str  # shadow | production
    src: str
    dst: str
    proto: str  # icmp | tcp | udp
    port: int | None  # None for ICMP
    expected: bool  # what the spec's policies say
    reachable: bool
    rtt_ms: float | None  # median of the answered probes

    @property
    def case(self) -> tuple[str, str, str, int | None]:
        return (self.src, self.dst, self.proto, self.port)

    @property
    def conforms(self) -> bool:
        return self.expected == self.reachable

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScanResult:
        """From :meth:`to_dict`'s JSON (as ``GET /api/v1/scans`` serves it)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def parse_scans(body: Any, spec: NetworkSpec, now: float) -> list[ScanResult]:
    """``{"origin", "t", "results": [{"src", "dst", "proto", "port", "expected", "reachable",
    "rtt_ms"}, ...]}``; ``t`` no later than ``now`` plus five minutes."""
    if not isinstance(body, dict) or set(body) - {"origin", "t", "results"}:
        raise ScanError("body", body if not isinstance(body, dict) else sorted(body),
                        "must be an object with keys origin, t and results")
    origin = body.get("origin")
    if origin not in ORIGINS:
        raise ScanError("origin", origin, f"must be one of {', '.join(ORIGINS)}")
    t = body.get("t")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
            or not 0 <= t <= now + 300:
        raise ScanError("t", t, "must be epoch seconds, not in the future")
    results = body.get("results")
    if not isinstance(results, list) or not 1 <= len(results) <= MAX_RESULTS:
        raise ScanError("results", type(results).__name__ if not isinstance(results, list)
                        else len(results), f"must be a list of 1-{MAX_RESULTS} results")
    hosts = {h.name for h in spec.hosts}
    out = []
    for i, r in enumerate(results):
        f = f"results[{i}]"
        if not isinstance(r, dict):
            raise ScanError(f, r, "must be an object")
        unknown = set(r) - {"src", "dst", "proto", "port", "expected", "reachable", "rtt_ms"}
        if unknown:
            k = sorted(map(str, unknown))[0]
            raise ScanError(f"{f}.{k[:40]}", r[k], "unknown field")
        for k in ("src", "dst"):
            if r.get(k) not in hosts:
                raise ScanError(f"{f}.{k}", r.get(k), "is not a host of the spec")
        proto = r.get("proto")
        if proto not in PROTOS:
            raise ScanError(f"{f}.proto", proto, f"must be one of {', '.join(PROTOS)}")
        port = r.get("port")
        if proto == "icmp":
            if port is not None:
                raise ScanError(f"{f}.port", port, "must be null for icmp")
        elif isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ScanError(f"{f}.port", port, "must be an integer 1-65535")
        for k in ("expected", "reachable"):
            if not isinstance(r.get(k), bool):
                raise ScanError(f"{f}.{k}", r.get(k), "must be true or false")
        rtt = r.get("rtt_ms")
        if rtt is not None and (isinstance(rtt, bool) or not isinstance(rtt, (int, float))
                                or not math.isfinite(rtt) or not 0 <= rtt <= MAX_RTT_MS):
            raise ScanError(f"{f}.rtt_ms", rtt, f"must be null or a number 0-{MAX_RTT_MS:g}")
        out.append(ScanResult(float(t), origin, r["src"], r["dst"], proto, port, r["expected"],
                              r["reachable"], None if rtt is None else float(rtt)))
    return out
