"""Applies :class:`controller.shaping.ShapeRule` s to switch ports with Linux tc (HTB classes and
u32 filters). Needs to run on the host of the switch's ports, as root.

Each port is reconciled to the desired state: netshadow's classes (minor numbers from 0x100, the
meter ids they stand for) are created or changed in place (``tc class replace``: packets in the
queue are kept), filters (preference :data:`FILTER_PREF`) are rebuilt only when they differ from
what this process installed, and classes no longer wanted are removed after their filters.
A port whose root qdisc is already HTB (Mininet's ``TCLink`` shaping) keeps it and its classes;
otherwise netshadow installs a root HTB whose default class does not exist, so unclassified
traffic passes unshaped, and removes that qdisc again when the port has no class left.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable

from .shaping import ShapeRule

FILTER_PREF = 10
MIN_MINOR = 0x100
OWN_DEFAULT = 0xFFFF  # the default class of a root HTB netshadow installed (never created)
# HTB bursts leave the port back to back at memory speed; a meter-sized burst (a tenth of a
# second at the rate) overflows the receive socket of a userspace switch on the other end of a
# veth, so the class keeps Mininet's link burst (about ten frames) whatever the plan's burst is
BURST_BYTES = 15_000
# a short queue per class: a userspace switch sends every port's packets through one AF_PACKET
# socket, and packets waiting in a long HTB queue hold that socket's send buffer, so sends to
# *other* ports fail while the class is over its rate
QUEUE_PACKETS = 16


class TcError(RuntimeError):
    """A tc command failed; the message names the device and the command."""


_RATE = re.compile(r"class htb (\w+):(\w+) .*?\brate (\d+(?:\.\d+)?)([KMG]?)bit")
_UNIT = {"": 1e-3, "K": 1.0, "M": 1e3, "G": 1e6}


def parse_classes(text: str) -> dict[int, int]:
    """``tc class show`` output -> {class minor: rate in kbit/s} (every HTB class)."""
    out = {}
    for m in _RATE.finditer(text):
        out[int(m.group(2), 16)] = int(round(float(m.group(3)) * _UNIT[m.group(4)]))
    return out


def class_commands(dev: str, major: int, rules: list[ShapeRule]) -> list[list[str]]:
    cmds = []
    for r in rules:
        cid = f"{major:x}:{r.meter_id:x}"
        cmds.append(["tc", "class", "replace", "dev", dev, "parent", f"{major:x}:", "classid", cid,
                     "htb", "rate", f"{r.rate_kbps}kbit", "ceil", f"{r.rate_kbps}kbit",
                     "burst", f"{BURST_BYTES}b", "cburst", f"{BURST_BYTES}b", "quantum", "1514"])
        cmds.append(["tc", "qdisc", "replace", "dev", dev, "parent", cid, "handle",
                     f"{r.meter_id:x}:", "pfifo", "limit", str(QUEUE_PACKETS)])
    return cmds


def filter_commands(dev: str, major: int, rules: list[ShapeRule]) -> list[list[str]]:
    cmds = []
    for r in rules:
        for m in r.matches:
            cmds.append(["tc", "filter", "add", "dev", dev, "parent", f"{major:x}:", "protocol", "ip",
                         "pref", str(FILTER_PREF), "u32",
                         "match", "ip", "src", f"{m.src_ip}/32", "match", "ip", "dst", f"{m.dst_ip}/32",
                         "match", "ip", "protocol", str(m.ip_proto), "0xff",
                         "match", "ip", "dport", str(m.dst_port), "0xffff",
                         "flowid", f"{major:x}:{r.meter_id:x}"])
    return cmds


class TcShaper:
    def __init__(self, port_name: Callable[[int, int], str | None],
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        """``port_name(dpid, port)`` is the port's interface name (None if unknown)."""
        self.port_name = port_name
        self.run = run
        self._filters: dict[str, tuple] = {}  # what this process installed, per device

    def _tc(self, cmd: list[str], dev: str) -> str:
        r = self.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise TcError(f"tc on {dev}: {' '.join(cmd[1:])}: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    def _root(self, dev: str, create: bool) -> tuple[int, bool] | None:
        """(major, installed by netshadow) of the device's root HTB; created when asked."""
        qd = json.loads(self._tc(["tc", "-j", "qdisc", "show", "dev", dev], dev) or "[]")
        for q in qd:
            if q.get("root") and q.get("kind") == "htb":
                default = int(str(q.get("options", {}).get("default", "0")), 16)
                return int(q["handle"].rstrip(":"), 16), default == OWN_DEFAULT
        if not create:
            return None
        self._tc(["tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default",
                  f"{OWN_DEFAULT:x}"], dev)
        return 1, True

    def sync(self, dpid: int, ports: list[int], shapes: tuple[ShapeRule, ...]) -> None:
        """Make ``ports`` of switch ``dpid`` hold exactly the classes of ``shapes`` (their rules
        for this switch). Raises :class:`TcError`."""
        for port in ports:
            want = [s for s in shapes if s.dpid == dpid and s.port == port]
            dev = self.port_name(dpid, port)
            if dev is None:
                if want:
                    raise TcError(f"port: switch {dpid:#x} port {port} has no known interface name")
                continue
            root = self._root(dev, create=bool(want))
            if root is None:
                continue
            major, own = root
            have = {m for m in parse_classes(self._tc(["tc", "class", "show", "dev", dev], dev))
                    if m >= MIN_MINOR}
            for cmd in class_commands(dev, major, want):
                self._tc(cmd, dev)
            fkey = tuple(sorted((s.meter_id, s.matches) for s in want))
            if self._filters.get(dev) != fkey:
                r = self.run(["tc", "filter", "del", "dev", dev, "parent", f"{major:x}:", "pref",
                              str(FILTER_PREF)], capture_output=True, text=True)
                if r.returncode != 0 and "No such file" not in r.stderr and "Cannot find" not in r.stderr:
                    raise TcError(f"tc on {dev}: filter del: {r.stderr.strip()}")
                for cmd in filter_commands(dev, major, want):
                    self._tc(cmd, dev)
                self._filters[dev] = fkey
            for minor in sorted(have - {s.meter_id for s in want}):
                self._tc(["tc", "class", "del", "dev", dev, "classid", f"{major:x}:{minor:x}"], dev)
            if own and not want:
                self._tc(["tc", "qdisc", "del", "dev", dev, "root"], dev)
                self._filters.pop(dev, None)

    def read_back(self, dpid: int, ports: list[int]) -> dict[tuple[int, int, int], int]:
        """{(dpid, port, meter id): rate kbit/s} of netshadow's classes on those ports."""
        out = {}
        for port in ports:
            dev = self.port_name(dpid, port)
            if dev is None or self._root(dev, create=False) is None:
                continue
            for minor, rate in parse_classes(self._tc(["tc", "class", "show", "dev", dev], dev)).items():
                if minor >= MIN_MINOR:
                    out[(dpid, port, minor)] = rate
        return out
