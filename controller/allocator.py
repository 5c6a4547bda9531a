"""The decision core (pure): forecasts in, a ``Plan`` out.

For every tenant application with a forecast:

1. **required** = the forecast at the chosen quantile (the risk knob is which quantile the caller
   passes) times ``1 + headroom``, and never less than what the application uses right now;
2. **hysteresis** - an allocation grows at once; it shrinks only when the requirement has stayed
   at least ``release_fraction`` below it for ``hold_s`` seconds, and changes smaller than
   ``min_change`` are ignored, so allocations do not flap; a ``ceiling`` (the planner's spend
   cap, :mod:`planner.reference`) then bounds it, hysteresis and current use included;
3. **the resource pool** - every application is charged, on each link of its clients' paths to
   its servers, the rate it gets; the links' spec capacities (times ``max_link_share``) bound the
   sum. A linear programme (``scipy.optimize.linprog``) maximises the priority-weighted
   allocation: weights grow by a factor of 1000 per priority step, so a higher-priority tenant is
   served before a lower one. Lower bounds keep every application at its current use while that is
   feasible;
4. **alternative paths** - an application that did not get its requirement because a link of its
   path is full, and whose clients and servers sit on one pair of switches, is moved to another
   path (at most one hop longer than the shortest) if that path's spare capacity carries the whole
   requirement; the programme is then solved again; likewise an application whose path
   crosses a link in ``avoid`` (the links the scans say are down, :mod:`planner.scans`) is moved
   to another path that avoids them, before the programme;
5. **reasons** - each allocation says which forecast it came from, which link limited it, and
   why it moved.

The caller keeps :class:`AllocatorState` between calls (the hysteresis clock).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from topologies import NetworkSpec

from .plan import Allocation, Plan
from .tenancy import pair_paths


@dataclass(frozen=True)
class AllocatorSettings:
    headroom: float = 0.1
    hold_s: float = 300.0
    release_fraction: float = 0.1
    min_change: float = 0.05
    max_link_share: float = 0.95
    min_rate_mbps: float = 0.1


@dataclass
class AllocatorState:
    below_since: dict[tuple[str, str], float] = field(default_factory=dict)


def app_links(spec: NetworkSpec, paths: dict) -> dict[tuple[str, str], set[frozenset]]:
    """Links (as frozensets of two switch names) each application's allowed pairs cross."""
    out: dict[tuple[str, str], set[frozenset]] = {}
    tenant_of = {h: t.id for t in spec.tenants for h in t.hosts}
    for src, dst, app in spec.allowed():
        key = (tenant_of[src], app)
        p = paths.get((src, dst), ())
        out.setdefault(key, set()).update(frozenset(e) for e in zip(p, p[1:]))
    return out


def hysteresis(key, want: float, cur: float | None, now: float, state: AllocatorState,
               settings: AllocatorSettings, fmt: str = ".2f") -> tuple[float, str]:
    """Step 2 for one allocation (any unit, ``fmt`` its format): what it gets instead of ``want``
    given ``cur`` in force, and a note for its reason ('' when it simply gets ``want``)."""
    if cur is None:
        return want, ""
    if abs(want - cur) <= settings.min_change * cur:
        state.below_since.pop(key, None)
        return cur, f"; keeps {cur:{fmt}} (change under {settings.min_change:.0%})"
    if want < cur:
        if want > cur * (1 - settings.release_fraction):
            state.below_since.pop(key, None)
            return cur, f"; keeps {cur:{fmt}} (drop under {settings.release_fraction:.0%})"
        since = state.below_since.setdefault(key, now)
        if now - since < settings.hold_s:
            return cur, f"; keeps {cur:{fmt}} until the drop has lasted {settings.hold_s:g} s"
        state.below_since.pop(key, None)
        return want, f"; releases {cur - want:{fmt}} after {now - since:.0f} s below"
    state.below_since.pop(key, None)
    return want, ""


# One function on purpose (~85 lines): the hysteresis, the optimisation and the path moves
# read and write the same per-application rates and reasons in one pass.
def allocate(spec: NetworkSpec, forecast_mbps: dict[tuple[str, str], float],
             usage_mbps: dict[tuple[str, str], float], current: Plan | None, now: float,
             state: AllocatorState, settings: AllocatorSettings = AllocatorSettings(),
             name: str = "plan", avoid: frozenset = frozenset(),
             ceiling: dict[tuple[str, str], float] | None = None) -> Plan:
    paths = pair_paths(spec)
    links = app_links(spec, paths)
    capacity = {frozenset((lk.a, lk.b)): lk.capacity_mbps * settings.max_link_share for lk in spec.links}
    priority = {t.id: t.priority for t in spec.tenants}
    keys = sorted(k for k in forecast_mbps if k in links)
    reasons: list[str] = []

    # 1 + 2: what each application should get, before capacity
    target: dict[tuple[str, str], float] = {}
    for k in keys:
        f = max(0.0, forecast_mbps[k])
        used = max(0.0, usage_mbps.get(k, 0.0))
        want = max(f * (1 + settings.headroom), used, settings.min_rate_mbps)
        cur = current.allocation(*k).rate_mbps if current and current.allocation(*k) else None
        want, note = hysteresis(k, want, cur, now, state, settings)
        if ceiling and k in ceiling and want > ceiling[k]:
            want, note = max(ceiling[k], settings.min_rate_mbps), f"{note}; held to the ceiling"
        target[k] = want
        reasons.append(f"{k[0]}/{k[1]}: forecast {f:.2f} Mbit/s, in use {used:.2f}{note}")

    # 3: the linear programme over link capacities; 4: move what a full link limits
    edges = sorted(capacity, key=sorted)
    w = np.array([1000.0 ** (priority[k[0]] - 1) for k in keys])
    hi = np.array([target[k] for k in keys])
    lo = np.array([min(usage_mbps.get(k, 0.0), target[k]) for k in keys])
    moved: dict[tuple[str, str], tuple[str, ...]] = {}
    usable = {e: 0.0 if e in avoid else c for e, c in capacity.items()}  # for paths to move to
    for k in keys:  # off the links the scans say are down, where another path has room
        bad = links[k] & avoid
        if not bad:
            continue
        names = ", ".join("-".join(sorted(e)) for e in sorted(bad, key=sorted))
        alt = _alternative(spec, k, links, usable, target, target[k])
        if alt is None:
            reasons.append(f"{k[0]}/{k[1]}: its path crosses {names}, which the scans say "
                           f"{'is' if len(bad) == 1 else 'are'} down; no other path carries "
                           f"{target[k]:.2f} Mbit/s")
            continue
        moved[k] = alt
        links[k] = {frozenset(e) for e in zip(alt, alt[1:])}
        reasons.append(f"{k[0]}/{k[1]}: moved to path {'-'.join(alt)} (the scans say {names} "
                       f"{'is' if len(bad) == 1 else 'are'} down)")

    def solve():
        a = np.array([[1.0 if e in links[k] else 0.0 for k in keys] for e in edges]).reshape(-1, len(keys))
        b = np.array([capacity[e] for e in edges])
        ab = dict(A_ub=a, b_ub=b) if len(edges) else {}  # one switch: no link to share
        res = linprog(-w, bounds=list(zip(lo, hi)), method="highs", **ab)
        if res.status != 0:  # current use alone does not fit: let the priorities decide everything
            res = linprog(-w, bounds=[(0, h) for h in hi], method="highs", **ab)
        return res.x, a, b, res.status

    granted = dict(target)
    if keys:
        x, a, b, _ = solve()
        for i in sorted(range(len(keys)), key=lambda j: -w[j]):
            k = keys[i]
            if x[i] >= target[k] - 1e-6 or k in moved:
                continue
            alt = _alternative(spec, k, links, usable, {kk: x[j] for j, kk in enumerate(keys)},
                               target[k])
            if alt is not None:
                moved[k] = alt
                links[k] = {frozenset(e) for e in zip(alt, alt[1:])}
                reasons.append(f"{k[0]}/{k[1]}: moved to path {'-'.join(alt)} (its path was full)")
                x, a, b, _ = solve()
        x, a, b, status = solve()
        if status != 0:
            reasons.append("current use exceeds capacity; allocating by priority from zero")
        for i, k in enumerate(keys):
            granted[k] = float(x[i])
            if x[i] < target[k] - 1e-6:
                full = [e for e in links[k] if a[edges.index(e)] @ x >= b[edges.index(e)] - 1e-6]
                reasons.append(f"{k[0]}/{k[1]}: {x[i]:.2f} of {target[k]:.2f} Mbit/s, limited by "
                               f"link{'s' if len(full) > 1 else ''} "
                               f"{', '.join('-'.join(sorted(e)) for e in full)}")
    def rate(k) -> float:  # to the kbit/s, and a ceiling stays one after rounding
        r = round(max(granted[k], settings.min_rate_mbps), 3)
        if ceiling and k in ceiling:
            r = max(min(r, math.floor(ceiling[k] * 1000) / 1000), settings.min_rate_mbps)
        return r
    allocs = tuple(Allocation(t, a_, rate((t, a_)), path=moved.get((t, a_))) for t, a_ in keys)
    return Plan(name, allocs, reasons=tuple(reasons))


def _simple_paths(adj: dict[str, set[str]], src: str, dst: str, max_hops: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []

    def walk(node, path):
        if node == dst:
            out.append(tuple(path))
            return
        if len(path) > max_hops:
            return
        for nxt in sorted(adj[node]):
            if nxt not in path:
                walk(nxt, path + [nxt])

    walk(src, [src])
    return out


def _alternative(spec: NetworkSpec, key, links, capacity, granted, need: float):
    """Another path for ``key`` whose spare capacity carries ``need``, or None."""
    tenant = spec.tenant(key[0])
    ends = {(spec.host(s).switch, spec.host(d).switch) for s, d, app in spec.allowed()
            if app == key[1] and s in tenant.hosts}
    if len(ends) != 1:
        return None
    src, dst = next(iter(ends))
    if src == dst:
        return None
    adj: dict[str, set[str]] = {s.name: set() for s in spec.switches}
    for lk in spec.links:
        adj[lk.a].add(lk.b)
        adj[lk.b].add(lk.a)
    from .routing import shortest_paths

    shortest = len(shortest_paths(adj, src, dst)[0]) - 1
    for path in sorted(_simple_paths(adj, src, dst, shortest + 1), key=lambda p: (len(p), p)):
        edges = {frozenset(e) for e in zip(path, path[1:])}
        if edges == links[key]:
            continue
        spare = min(capacity[e] - sum(g for k, g in granted.items() if k != key and e in links[k])
                    for e in edges)
        if spare >= need:
            return path
    return None
