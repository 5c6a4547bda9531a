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
