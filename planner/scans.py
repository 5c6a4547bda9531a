"""What scan history says about the network (pure): drift against the spec, and the links to
route around.

* **drift** - per host pair and port, the latest scan result against what the spec's policies
  say: an expected path that no longer answers is a *topology drift* (a link, a switch or a rule
  is gone), a denied one that answers a *policy drift*; each with the time since when the scans
  have said so (the oldest result of the newest unbroken run of that finding).
* **suspect links** - the links that the failing expected paths cross and no answering path
  does. A probe and its answer cross the pair's route both ways: the application's path where the
  plan in force sets one (:attr:`controller.plan.Allocation.path`), else the controller's route
  for the pair. The planner moves applications off these links where another path has room
  (:func:`controller.allocator.allocate`'s ``avoid``).
* **RTT covariate** - per application, the mean RTT of its allowed paths per forecast step: the
  covariate the profiler may use (:mod:`models.covariate`) where a rising RTT has led demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controller.plan import Plan
from controller.scans import ScanResult
from controller.tenancy import pair_paths
from models.series import SeriesKey, SeriesSet
from topologies import NetworkSpec

Link = frozenset  # of two switch names


@dataclass(frozen=True)
class Drift:
    result: ScanResult  # the latest
    since: float  # epoch seconds: since when the scans have found this

    def text(self) -> str:
        r = self.result
        what = f"{r.src} -> {r.dst} {r.proto}{'' if r.port is None else f'/{r.port}'}"
        if r.expected:
            return f"{what}: the spec allows it and it has not answered since {self.since:.0f} " \
                   "(topology drift)"
        return f"{what}: the spec denies it and it has answered since {self.since:.0f} (policy drift)"

    def to_dict(self) -> dict:
        return {**self.result.to_dict(), "since": self.since, "text": self.text()}


def latest(history: list[ScanResult]) -> list[ScanResult]:
    """The newest result per (origin, case) of ``history`` (any order)."""
    out: dict = {}
    for r in sorted(history, key=lambda x: -x.t):
        out.setdefault((r.origin, r.case), r)
    return list(out.values())


def drift(history: list[ScanResult]) -> list[Drift]:
    """Every (origin, case) whose latest result does not conform to the spec."""
    runs: dict = {}
    for r in sorted(history, key=lambda x: -x.t):  # newest first
        key = (r.origin, r.case)
        if key not in runs:
            runs[key] = [r, r.t, True]  # latest, since, still in the newest run
        elif runs[key][2] and r.reachable == runs[key][0].reachable:
            runs[key][1] = r.t
        else:
            runs[key][2] = False
    return sorted((Drift(r, since) for r, since, _ in runs.values() if not r.conforms),
                  key=lambda d: (d.result.src, d.result.dst, d.result.proto, d.result.port or 0))


def _route_links(spec: NetworkSpec, paths: dict, plan: Plan | None, r: ScanResult) -> set:
    routes = [paths.get((r.src, r.dst), ()), paths.get((r.dst, r.src), ())]
    if plan is not None and r.proto != "icmp":
        tenant = next((t for t in spec.tenants if r.src in t.hosts), None)
        app = next((a for a in tenant.applications if (a.protocol, a.port) == (r.proto, r.port)),
                    None) if tenant is not None and r.dst in tenant.hosts else None
        a = plan.allocation(tenant.id, app.name) if app is not None else None
        if a is not None and a.path and (a.path[0], a.path[-1]) == \
                (spec.host(r.src).switch, spec.host(r.dst).switch):
            routes = [a.path]  # and back along it
    return {Link(e) for route in routes for e in zip(route, route[1:])}


def suspect_links(spec: NetworkSpec, results: list[ScanResult], plan: Plan | None) -> frozenset:
    """Links the failing expected cases of ``results`` cross and no answering case does."""
    paths = pair_paths(spec)
    failing, answering = set(), set()
    for r in results:
        if r.reachable:
            answering |= _route_links(spec, paths, plan, r)
        elif r.expected:
            failing |= _route_links(spec, paths, plan, r)
    return frozenset(failing - answering)


def rtt_covariate(spec: NetworkSpec, keys: list[SeriesKey], history: list[ScanResult],
                  start: float, rows: int, step_s: float, hold_steps: int,
                  until: float | None = None) -> SeriesSet | None:
    """Per bandwidth series in ``keys``, the mean RTT (ms) of the application's allowed host pairs
    that answered, on the ``rows`` steps of ``step_s`` seconds from ``start`` (epoch seconds): a
    result counts in the step it ran in, one that ran after the last step but by ``until`` (the
    forecast's time: this cycle's scan, after the last complete step) in the last, as the newest
    RTT known there. A pair's
    RTT is its probe of the application's port or, where the scans do not probe that port (a UDP
    application), its ICMP probe across the same hosts. A step without a scan holds the last
    measured value for up to ``hold_steps`` steps (what was known then); the other steps and the
    compute series are NaN. None when no step has a value."""
    if rows < 2 or not math.isfinite(step_s) or step_s <= 0:
        return None
    allowed = spec.allowed()
    wanted: dict[tuple, list[int]] = {}  # (src, dst, proto, port) -> columns
    fallback: dict[tuple, list[int]] = {}  # (src, dst) -> columns without a probed port
    probed = {(r.src, r.dst, r.proto, r.port) for r in history if r.rtt_ms is not None}
    for j, k in enumerate(keys):
        if k.metric != "bandwidth":
            continue
        tenant = next((t for t in spec.tenants if t.id == k.tenant), None)
        app = next((a for a in tenant.applications if a.name == k.app), None) if tenant else None
        if app is None:
            continue
        for s, d, a in allowed:
            if a == k.app and s in tenant.hosts:
                case = (s, d, app.protocol, app.port)
                (wanted if case in probed else fallback).setdefault(
                    case if case in probed else (s, d), []).append(j)
    total = np.zeros((rows, len(keys)))
    count = np.zeros((rows, len(keys)))
    for r in history:
        if not r.reachable or r.rtt_ms is None:
            continue
        i = int(math.floor((r.t - start) / step_s))
        i = rows - 1 if i >= rows and until is not None and r.t <= until else i
        if not 0 <= i < rows:
            continue
        cols = wanted.get(r.case) or (fallback.get((r.src, r.dst)) if r.proto == "icmp" else None)
        for j in cols or ():
            total[i, j] += r.rtt_ms
            count[i, j] += 1
    if not count.any():
        return None
    mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    held = pd.DataFrame(mean).ffill(limit=max(0, int(hold_steps))).to_numpy()
    return SeriesSet(pd.Timestamp(start, unit="s", tz="UTC"), step_s, tuple(k.name for k in keys), held)
