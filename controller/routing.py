"""Path selection over the spec's switch graph.

Each pair of hosts that may talk gets one symmetric path (the reverse direction uses the same
switches), so TCP sees one round-trip path and statistics on a link cover both directions of a
pair. Among the paths with the fewest hops, the router picks the one whose busiest link would be
least loaded relative to its capacity, counting the pairs already placed (load in "pairs per
Mbit/s"). Ties fall to the lexicographically smallest path, so the result is deterministic.
At most :data:`MAX_CANDIDATES` equal-hop paths (the lexicographically first) are considered per
pair, so a richly meshed spec costs time linear in its pairs, not exponential in its size.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from topologies import NetworkSpec

MAX_CANDIDATES = 16  # equal-hop paths considered per pair; a grid has exponentially many


def hops(adj: dict[str, set[str]], src: str) -> dict[str, int]:
    """Hop count from ``src`` to every switch it reaches (breadth-first)."""
    dist = {src: 0}
    q = deque([src])
    while q:
        u = q.popleft()
        for v in adj[u]:
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
    return dist


def shortest_paths(adj: dict[str, set[str]], src: str, dst: str, limit: int = MAX_CANDIDATES,
                   dist_from: dict[str, int] | None = None,
                   dist_to: dict[str, int] | None = None) -> list[tuple[str, ...]]:
    """The lexicographically first ``limit`` paths with the fewest hops from ``src`` to ``dst``
    (switch names), sorted: the first ``limit`` of all of them, without enumerating all (a grid
    of 16 x 16 switches has 155 million between opposite corners). ``dist_from`` / ``dist_to``
    are :func:`hops` from ``src`` and from ``dst``, when the caller has them."""
    if src == dst:
        return [(src,)]
    d_src = dist_from if dist_from is not None else hops(adj, src)
    if dst not in d_src:
        return []
    d_dst = dist_to if dist_to is not None else hops(adj, dst)
    total = d_src[dst]
    out: list[tuple[str, ...]] = []
    stack: list[tuple[str, ...]] = [(src,)]  # depth first, smallest successor first
    while stack and len(out) < limit:
        path = stack.pop()
        u = path[-1]
        if u == dst:
            out.append(path)
            continue
        nxt = [v for v in adj[u] if d_src.get(v) == d_src[u] + 1 and d_dst.get(v) == total - d_src[v]]
        stack.extend(path + (v,) for v in sorted(nxt, reverse=True))
    return out


class Router:
    """Assigns capacity-aware shortest paths to host pairs, one pair at a time."""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.adj: dict[str, set[str]] = {s.name: set() for s in spec.switches}
        self.capacity: dict[frozenset, float] = {}
        for lk in spec.links:
            self.adj[lk.a].add(lk.b)
            self.adj[lk.b].add(lk.a)
            self.capacity[frozenset((lk.a, lk.b))] = lk.capacity_mbps
        self.load: dict[frozenset, int] = defaultdict(int)
        self._hops: dict[str, dict[str, int]] = {}

    def _dist(self, switch: str) -> dict[str, int]:
        if switch not in self._hops:
            self._hops[switch] = hops(self.adj, switch)
        return self._hops[switch]

    def _cost(self, path: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
        worst = 0.0
        for a, b in zip(path, path[1:], strict=False):
            e = frozenset((a, b))
            worst = max(worst, (self.load[e] + 1) / self.capacity[e])
        return (worst, path)

    def place(self, src_switch: str, dst_switch: str) -> tuple[str, ...]:
        """Choose and record the path for one pair (a flow unit) between two switches."""
        candidates = shortest_paths(self.adj, src_switch, dst_switch,
                                    dist_from=self._dist(src_switch), dist_to=self._dist(dst_switch))
        if not candidates:
            raise ValueError(f"path: no path from {src_switch} to {dst_switch}")
        best = min(candidates, key=self._cost)
        for a, b in zip(best, best[1:], strict=False):
            self.load[frozenset((a, b))] += 1
        return best

    def place_pairs(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, ...]]:
        """Paths for unordered host pairs ``(h1, h2)``, keyed both ways (reverse path reversed)."""
        out: dict[tuple[str, str], tuple[str, ...]] = {}
        for h1, h2 in sorted({tuple(sorted(p)) for p in pairs}):
            path = self.place(self.spec.host(h1).switch, self.spec.host(h2).switch)
            out[(h1, h2)] = path
            out[(h2, h1)] = tuple(reversed(path))
        return out
