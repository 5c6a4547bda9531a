"""Path selection over the spec's switch graph.

Each pair of hosts that may talk gets one symmetric path (the reverse direction uses the same
switches), so TCP sees one round-trip path and statistics on a link cover both directions of a
pair. Among the paths with the fewest hops, the router picks the one whose busiest link would be
least loaded relative to its capacity, counting the pairs already placed (load in "pairs per
Mbit/s"). Ties fall to the lexicographically smallest path, so the result is deterministic.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable

from topologies import NetworkSpec


def shortest_paths(adj: dict[str, set[str]], src: str, dst: str) -> list[tuple[str, ...]]:
    """All paths with the fewest hops from ``src`` to ``dst`` (switch names), sorted."""
    if src == dst:
        return [(src,)]
    dist = {src: 0}
    preds: dict[str, list[str]] = defaultdict(list)
    q = deque([src])
    while q:
        u = q.popleft()
        for v in sorted(adj[u]):
            if v not in dist:
                dist[v] = dist[u] + 1
                q.append(v)
            if dist[v] == dist[u] + 1:
                preds[v].append(u)
    if dst not in dist:
        return []
    out: list[tuple[str, ...]] = []

    def walk(node: str, tail: tuple[str, ...]) -> None:
        if node == src:
            out.append((src,) + tail)
            return
        for p in preds[node]:
            walk(p, (node,) + tail)

    walk(dst, ())
    return sorted(out)


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

    def _cost(self, path: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
        worst = 0.0
        for a, b in zip(path, path[1:], strict=False):
            e = frozenset((a, b))
            worst = max(worst, (self.load[e] + 1) / self.capacity[e])
        return (worst, path)

    def place(self, src_switch: str, dst_switch: str) -> tuple[str, ...]:
        """Choose and record the path for one pair (a flow unit) between two switches."""
        candidates = shortest_paths(self.adj, src_switch, dst_switch)
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
