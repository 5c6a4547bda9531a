"""Port numbering shared by the lab (which builds the links) and the controller (which installs flows).

Both sides derive OpenFlow port numbers from the spec with :func:`wire`, so neither has to discover
them. On each switch, ports are numbered from 1: first the hosts attached to it in spec order, then
its links in spec order.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import NetworkSpec


@dataclass(frozen=True)
class Wiring:
    """``host_port[h]`` is (switch, port) where host ``h`` attaches; ``link_ports[i]`` is
    ((switch a, port on a), (switch b, port on b)) for ``spec.links[i]``."""

    host_port: dict[str, tuple[str, int]]
    link_ports: tuple[tuple[tuple[str, int], tuple[str, int]], ...]

    def __post_init__(self):
        by_pair: dict[tuple[str, str], int] = {}
        trunks: dict[str, list[int]] = {}
        for (sa, pa), (sb, pb) in self.link_ports:  # the first link between two switches wins
            by_pair.setdefault((sa, sb), pa)
            by_pair.setdefault((sb, sa), pb)
            trunks.setdefault(sa, []).append(pa)
            trunks.setdefault(sb, []).append(pb)
        object.__setattr__(self, "_by_pair", by_pair)
        object.__setattr__(self, "_trunks", {k: sorted(v) for k, v in trunks.items()})

    def neighbour_port(self, switch: str, neighbour: str) -> int:
        """The port on ``switch`` that leads to the adjacent switch ``neighbour``."""
        try:
            return self._by_pair[(switch, neighbour)]
        except KeyError:
            raise KeyError((switch, neighbour)) from None

    def trunk_ports(self, switch: str) -> list[int]:
        """Ports of ``switch`` that lead to other switches."""
        return list(self._trunks.get(switch, []))


def wire(spec: NetworkSpec) -> Wiring:
    nxt = {s.name: 1 for s in spec.switches}
    host_port: dict[str, tuple[str, int]] = {}
    for h in spec.hosts:
        host_port[h.name] = (h.switch, nxt[h.switch])
        nxt[h.switch] += 1
    link_ports = []
    for lk in spec.links:
        pa, pb = nxt[lk.a], nxt[lk.b]
        nxt[lk.a] += 1
        nxt[lk.b] += 1
        link_ports.append(((lk.a, pa), (lk.b, pb)))
    return Wiring(host_port, tuple(link_ports))
