"""A Mininet ``Topo`` built from a :class:`NetworkSpec` (imports Mininet; the lab and shadows use it).

Node names are ``<prefix><spec name>``; port numbers come from :func:`topologies.wiring.wire`, so
the switch ports Mininet creates are exactly the ones the controller programs. Link options carry
the spec's capacity as an HTB bandwidth limit in Mbit/s.
"""

from __future__ import annotations

import re

from mininet.topo import Topo

from .spec import MAX_PREFIX_LEN, NetworkSpec, SpecError
from .wiring import wire

PREFIX_RE = re.compile(rf"^[a-z][a-z0-9]{{{MAX_PREFIX_LEN - 1}}}$")


def check_prefix(prefix: str) -> str:
    """Prefixes are exactly three characters so that no prefix is the start of another."""
    if not PREFIX_RE.match(prefix):
        raise SpecError("<lab>", "prefix", prefix,
                        f"must be {MAX_PREFIX_LEN} characters: a lower-case letter, then lower-case "
                        "letters or digits")
    return prefix


class SpecTopo(Topo):
    """Hosts, switches and shaped links of ``spec``, every node name prefixed with ``prefix``."""

    def build(self, spec: NetworkSpec, prefix: str, shape: bool = True):  # noqa: D401 - Mininet API
        check_prefix(prefix)
        wiring = wire(spec)
        for s in spec.switches:
            self.addSwitch(prefix + s.name, dpid=f"{s.dpid:016x}")
        for h in spec.hosts:
            opts = {"ip": f"{h.ip}/{h.prefixlen}", "mac": h.mac}
            if h.cpu is not None:  # a cgroup of its own: the allocator's CPU quota applies to it
                from mininet.node import CPULimitedHost

                opts["cls"] = CPULimitedHost
                opts["cpu"] = h.cpu
            self.addHost(prefix + h.name, **opts)
            sw, port = wiring.host_port[h.name]
            link = {"bw": h.link_mbps, "use_htb": True} if shape else {}
            self.addLink(prefix + h.name, prefix + sw, port1=0, port2=port, **link)
        for lk, ((sa, pa), (sb, pb)) in zip(spec.links, wiring.link_ports, strict=False):
            link = {"bw": lk.capacity_mbps, "use_htb": True} if shape else {}
            self.addLink(prefix + sa, prefix + sb, port1=pa, port2=pb, **link)
