"""Demand traces for replay (pure): the wide CSV, the mapping onto a spec, time compression, and
the synthetic demo trace.

A **mapping** (YAML or JSON) says which trace column drives which tenant application between
which two lab hosts, and how trace units become lab Mbit/s::

    scale: 0.5                  # lab Mbit/s per trace unit (backbone Mbit/s rarely fit a lab)
    flows:
      - {column: "ATLAng->IPLSng", tenant: backbone, app: od1, src: hatla, dst: hipls}

Every flow's application must be UDP (replay measures demand as offered load, which TCP would
adapt to what it is given) and allowed from ``src`` to ``dst`` by the spec; each tenant
application appears once, because a plan allocates per tenant application.

A column may drive a host's **compute** instead: the CPU the host asks for, in cores (a share of
one CPU) per trace unit::

    compute:
      - {column: cpu_pct, host: h1, scale: 0.01}   # a utilisation in % of one CPU

The host must have a CPU share in the spec (a CPU-limited host, whose cgroup a plan's quota
reaches), each host appears once, and a demand above :data:`controller.plan.MAX_CPU_QUOTA` (the
most quota a plan sets) is refused. ``flows`` may then be empty. **Compression**
``STEP=SECONDS`` replays STEP of trace time in SECONDS of wall time (``300=1``: a 5-minute step
per second; ``1h=2`` also works). Every problem raises :class:`ReplayError` naming the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from controller.plan import MAX_CPU_QUOTA, MAX_METER_MBPS
from topologies import NetworkSpec
from topologies.shown import shown


class ReplayError(ValueError):
    """Invalid replay input; the message names the field and the value."""


@dataclass(frozen=True)
class MappedFlow:
    column: str
    tenant: str
    app: str
    src: str
    dst: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.tenant, self.app)


@dataclass(frozen=True)
class MappedCompute:
    column: str
    tenant: str  # the host's
    host: str
    scale: float  # cores per trace unit

    @property
    def key(self) -> tuple[str, str]:
        """(tenant, host): how the planner's compute series name a host."""
        return (self.tenant, self.host)


@dataclass(frozen=True)
class ReplayMap:
    scale: float  # lab Mbit/s per trace unit
    flows: tuple[MappedFlow, ...]
    compute: tuple[MappedCompute, ...] = ()

    def columns(self) -> list[str]:
        return [f.column for f in self.flows] + [c.column for c in self.compute]


MAX_DEMAND_MBPS = MAX_METER_MBPS  # the largest rate a plan can guarantee


def parse_mapping(data: dict, spec: NetworkSpec, columns: list[str] | None = None) -> ReplayMap:
    if not isinstance(data, dict):
        raise ReplayError(f"mapping: must be a mapping with 'scale' and 'flows' (got {type(data).__name__})")
    unknown = sorted(str(k) for k in set(data) - {"scale", "flows", "compute"})
    if unknown:
        raise ReplayError(f"{shown(unknown[0])[1:-1]}: unknown field of the mapping "
                          "(it has scale, flows and compute)")
    scale = _scale("scale", data.get("scale", 1.0))
    compute = _compute(data.get("compute", []), spec, columns)
    flows = data.get("flows", [] if compute else None)
    if not isinstance(flows, list) or not (flows or compute):
        raise ReplayError(f"flows: must be a non-empty list, or an empty one beside compute "
                          f"(got {shown(flows)})")
    allowed = set(spec.allowed())
    out, seen = [], {}
    for i, f in enumerate(flows):
        where = f"flows[{i}]"
        if not isinstance(f, dict):
            raise ReplayError(f"{where}: must be a mapping (got {shown(f)})")
        for k in ("column", "tenant", "app", "src", "dst"):
            if not isinstance(f.get(k), str) or not f[k]:
                raise ReplayError(f"{where}.{k}: required, a non-empty string (got {shown(f.get(k))})")
        unknown = sorted(str(k) for k in set(f) - {"column", "tenant", "app", "src", "dst"})
        if unknown:
            raise ReplayError(f"{where}.{shown(unknown[0])[1:-1]}: unknown field")
        if columns is not None and f["column"] not in columns:
            raise ReplayError(f"{where}.column: not a column of the trace (got {shown(f['column'])})")
        try:
            tenant = spec.tenant(f["tenant"])
        except KeyError:
            raise ReplayError(f"{where}.tenant: no such tenant in spec {spec.name} "
                              f"(got {f['tenant']!r})") from None
        app = next((a for a in tenant.applications if a.name == f["app"]), None)
        if app is None:
            raise ReplayError(f"{where}.app: tenant {tenant.id} has no application {f['app']!r}")
        if app.protocol != "udp":
            raise ReplayError(f"{where}.app: replay drives UDP applications; {tenant.id}/{app.name} "
                              f"is {app.protocol}")
        for k in ("src", "dst"):
            if f[k] not in tenant.hosts:
                raise ReplayError(f"{where}.{k}: {f[k]!r} is not a host of tenant {tenant.id}")
        if (f["src"], f["dst"], app.name) not in allowed:
            raise ReplayError(f"{where}: the spec does not allow {f['src']} -> {f['dst']} on "
                              f"{app.name}")
        key = (tenant.id, app.name)
        if key in seen:
            raise ReplayError(f"{where}.app: {tenant.id}/{app.name} is already driven by "
                              f"flows[{seen[key]}]; one flow per tenant application")
        seen[key] = i
        out.append(MappedFlow(f["column"], tenant.id, app.name, f["src"], f["dst"]))
    return ReplayMap(float(scale), tuple(out), compute)


def _scale(fld: str, v) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not v > 0:
        raise ReplayError(f"{fld}: must be a finite number > 0 (got {shown(v)})")
    return float(v)


def _compute(items, spec: NetworkSpec, columns: list[str] | None) -> tuple[MappedCompute, ...]:
    if not isinstance(items, list):
        raise ReplayError(f"compute: must be a list (got {shown(items)})")
    out, seen = [], {}
    for i, c in enumerate(items):
        where = f"compute[{i}]"
        if not isinstance(c, dict):
            raise ReplayError(f"{where}: must be a mapping (got {shown(c)})")
        unknown = sorted(str(k) for k in set(c) - {"column", "host", "scale"})
        if unknown:
            raise ReplayError(f"{where}.{shown(unknown[0])[1:-1]}: unknown field (it has column, "
                              "host and scale)")
        for k in ("column", "host"):
            if not isinstance(c.get(k), str) or not c[k]:
                raise ReplayError(f"{where}.{k}: required, a non-empty string (got {shown(c.get(k))})")
        if columns is not None and c["column"] not in columns:
            raise ReplayError(f"{where}.column: not a column of the trace (got {shown(c['column'])})")
        scale = _scale(f"{where}.scale", c.get("scale", 1.0))
        try:
            host = spec.host(c["host"])
            tenant = spec.tenant_of(host.name).id
        except KeyError:
            raise ReplayError(f"{where}.host: no host {shown(c['host'])} in a tenant of spec "
                              f"{spec.name}") from None
        if host.cpu is None:
            raise ReplayError(f"{where}.host: {host.name} has no cpu share in spec {spec.name}; only "
                              "a CPU-limited host has a cgroup a plan's quota reaches")
        if host.name in seen:
            raise ReplayError(f"{where}.host: {host.name} is already driven by compute[{seen[host.name]}]")
        seen[host.name] = i
        out.append(MappedCompute(c["column"], tenant, host.name, float(scale)))
    return tuple(out)


def load_mapping(path: str | Path, spec: NetworkSpec, columns: list[str] | None = None) -> ReplayMap:
    """Read a mapping file (``.json``: strict JSON; otherwise YAML, bounded as specs are)."""
    from topologies import jsonio
    from topologies.yamlio import MAX_BYTES, YamlInputError, load_yaml

    p = Path(path)
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ReplayError(f"map: {p} is {p.stat().st_size} bytes, more than the limit of {MAX_BYTES}")
        raw = p.read_bytes()
    except OSError as e:
        raise ReplayError(f"map: cannot read {p}: {e.strerror}") from None
    try:
        data = jsonio.loads(raw, "map") if p.suffix == ".json" else load_yaml(raw)
    except (jsonio.JsonInputError, YamlInputError) as e:
        raise ReplayError(f"map: {p}: {str(e).removeprefix('map: ')}") from None
    try:
        return parse_mapping(data, spec, columns)
    except ReplayError as e:
        raise ReplayError(f"map: {p}: {e}") from None


def parse_compress(text: str) -> tuple[float, float]:
    """``STEP=SECONDS`` -> (trace seconds, wall seconds)."""
    parts = str(text).split("=")
    if len(parts) != 2:
        raise ReplayError(f"compress: expected STEP=SECONDS, e.g. 300=1 (got {text!r})")
    vals = []
    for p in parts:
        p = p.strip()
        try:
            v = float(p)
        except ValueError:
            try:
                v = pd.Timedelta(p).total_seconds()
            except ValueError:
                raise ReplayError(f"compress: {p!r} is neither seconds nor a duration like 5min") from None
        if not (v > 0 and math.isfinite(v)):
            raise ReplayError(f"compress: durations must be finite and > 0 (got {shown(text)})")
        vals.append(v)
    if vals[1] < 0.2:
        raise ReplayError(f"compress: a step must last at least 0.2 s of wall time to be measured "
                          f"(got {text!r})")
    return vals[0], vals[1]


def demand(values: np.ndarray, mapping: ReplayMap, names: tuple[str, ...],
           times: pd.DatetimeIndex | None = None) -> np.ndarray:
    """(T, flows) lab Mbit/s from trace ``values`` (T, series) with column ``names``; gaps (NaN)
    are carried forward (a replay needs a rate at every step). A demand above
    :data:`MAX_DEMAND_MBPS` once scaled (no plan could guarantee it) is a :class:`ReplayError`
    naming the column and the time."""
    idx = [names.index(f.column) for f in mapping.flows]
    with np.errstate(over="ignore"):
        d = pd.DataFrame(values[:, idx]).ffill().fillna(0.0).to_numpy() * mapping.scale
    bad = ~(d <= MAX_DEMAND_MBPS)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        when = str(times[r]) if times is not None else f"row {r}"
        raise ReplayError(f"{mapping.flows[c].column}: demand {float(d[r, c]):g} Mbit/s at {when} "
                          f"(scale {mapping.scale:g} per trace unit) is more than {MAX_DEMAND_MBPS:g} "
                          "Mbit/s, the most a plan can guarantee; lower scale")
    return np.maximum(d, 0.0)


def compute_demand(values: np.ndarray, mapping: ReplayMap, names: tuple[str, ...],
                   times: pd.DatetimeIndex | None = None) -> np.ndarray:
    """(T, hosts) cores from trace ``values`` for ``mapping.compute`` (gaps carried forward); a
    demand above :data:`controller.plan.MAX_CPU_QUOTA` is a :class:`ReplayError` naming the column
    and the time."""
    cols = []
    for c in mapping.compute:
        v = pd.Series(values[:, names.index(c.column)]).ffill().fillna(0.0).to_numpy() * c.scale
        bad = np.flatnonzero(~(v <= MAX_CPU_QUOTA))
        if len(bad):
            r = int(bad[0])
            when = str(times[r]) if times is not None else f"row {r}"
            raise ReplayError(f"{c.column}: CPU demand {float(v[r]):g} cores at {when} (scale "
                              f"{c.scale:g} per trace unit) is more than {MAX_CPU_QUOTA:g}, the most "
                              "quota a plan sets; lower scale")
        cols.append(np.maximum(v, 0.0))
    return np.stack(cols, axis=1) if cols else np.zeros((len(values), 0))


def synthetic_trace(days: int = 8, step_s: int = 1800, peaks_mbps: tuple[float, ...] = (30.0, 12.0, 8.0),
                    seed: int = 7, start: str = "2026-01-05T00:00") -> pd.DataFrame:
    """The demo trace: per series a daily cycle (night trough, a morning hump and an evening peak
    at ``peaks_mbps``, weekends 20 % lower, each series half an hour after the previous one) with
    4 % multiplicative noise. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = days * 86400 // step_s
    t = pd.date_range(start, periods=n, freq=pd.Timedelta(seconds=step_s), tz="UTC")
    hour = (t.hour + t.minute / 60).to_numpy()
    weekend = np.where(t.day_of_week.to_numpy() >= 5, 0.8, 1.0)

    def cycle(h):  # 0.25 at night, a morning hump and an evening peak of 1
        h = np.mod(h, 24.0)
        return (0.25 + 0.45 * np.exp(-((h - 11) / 3.0) ** 2) + 0.75 * np.exp(-((h - 20) / 2.2) ** 2))

    top = cycle(np.arange(0, 24, 0.01)).max()
    cols = {}
    for j, peak in enumerate(peaks_mbps):
        v = peak * cycle(hour - 0.5 * j) / top * weekend * np.exp(rng.normal(0.0, 0.04, n))
        cols[f"series{j + 1}"] = np.round(v, 3)
    return pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M"), **cols})
