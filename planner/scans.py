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
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.plan import Plan
from controller.scans import ScanResult
from controller.tenancy import compile_network
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
    paths = compile_network(spec).paths
    failing, answering = set(), set()
    for r in results:
        if r.reachable:
            answering |= _route_links(spec, paths, plan, r)
        elif r.expected:
            failing |= _route_links(spec, paths, plan, r)
    return frozenset(failing - answering)
