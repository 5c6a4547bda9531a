from __future__ import annotations

from controller.routing import Router, shortest_paths
from topologies import parse_spec


def square(cap_top=100, cap_bottom=100):
    """s1-s2-s4 (top) and s1-s3-s4 (bottom): two 2-hop paths between s1 and s4."""
    return parse_spec({
        "name": "sq",
        "switches": [{"name": n} for n in ("s1", "s2", "s3", "s4")],
        "links": [
            {"a": "s1", "b": "s2", "capacity_mbps": cap_top},
            {"a": "s2", "b": "s4", "capacity_mbps": cap_top},
            {"a": "s1", "b": "s3", "capacity_mbps": cap_bottom},
            {"a": "s3", "b": "s4", "capacity_mbps": cap_bottom},
        ],
        "hosts": [{"name": f"h{i}", "switch": s, "ip": f"10.0.0.{i}/24"}
                  for i, s in ((1, "s1"), (2, "s4"), (3, "s1"), (4, "s4"))],
        "tenants": [{"id": "t", "hosts": ["h1", "h2", "h3", "h4"]}],
    })


def test_shortest_paths_enumerates_all_equal_cost_paths():
    r = Router(square())
    assert shortest_paths(r.adj, "s1", "s4") == [("s1", "s2", "s4"), ("s1", "s3", "s4")]
    assert shortest_paths(r.adj, "s1", "s1") == [("s1",)]


def test_prefers_higher_capacity():
    r = Router(square(cap_top=10, cap_bottom=100))
    assert r.place("s1", "s4") == ("s1", "s3", "s4")


def test_spreads_pairs_over_equal_paths():
    r = Router(square())
    assert {r.place("s1", "s4"), r.place("s1", "s4")} == {("s1", "s2", "s4"), ("s1", "s3", "s4")}


def test_capacity_weighted_spreading():
    r = Router(square(cap_top=100, cap_bottom=50))
    placed = [r.place("s1", "s4") for _ in range(3)]
    # 2 pairs on the 100 Mbit/s path, 1 on the 50 Mbit/s path balances load per Mbit/s
    assert placed.count(("s1", "s2", "s4")) == 2


def grid(n: int) -> dict[str, set[str]]:
    adj: dict[str, set[str]] = {f"g{i}x{j}": set() for i in range(n) for j in range(n)}
    for i in range(n):
        for j in range(n):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < n and j + dj < n:
                    adj[f"g{i}x{j}"].add(f"g{i + di}x{j + dj}")
                    adj[f"g{i + di}x{j + dj}"].add(f"g{i}x{j}")
    return adj


def all_shortest(adj, src, dst):
    """Brute force: every simple path of the fewest hops, sorted."""
    from controller.routing import hops

    want = hops(adj, src)[dst]
    out, stack = [], [(src,)]
    while stack:
        p = stack.pop()
        if len(p) - 1 == want:
            if p[-1] == dst:
                out.append(p)
            continue
        stack.extend(p + (v,) for v in adj[p[-1]] if v not in p)
    return sorted(out)


def test_shortest_paths_are_the_first_of_all_in_order_and_bounded():
    from controller.routing import MAX_CANDIDATES

    small = grid(4)  # 20 shortest paths between opposite corners
    full = all_shortest(small, "g0x0", "g3x3")
    assert len(full) == 20
    assert shortest_paths(small, "g0x0", "g3x3", limit=100) == full
    assert shortest_paths(small, "g0x0", "g3x3") == full[:MAX_CANDIDATES]
    # 16 x 16: 155 million shortest paths between opposite corners; only the first are built
    big = shortest_paths(grid(16), "g0x0", "g15x15")
    assert len(big) == MAX_CANDIDATES and big == sorted(big) and all(len(p) == 31 for p in big)
