"""The userspace datapath's packet sockets, read with ``ss``: what its receive sockets dropped,
and the send buffer all its ports share.

Sending, the userspace datapath writes every port's packets through one unbound packet socket
(``[0]:*``). A packet waiting in a port's queue (the link's HTB class) is charged to that
socket's send buffer (``tb``, ``net.core.wmem_default`` when the daemon made it) until it leaves;
once full, sends to *every* port fail (``error sending Ethernet packet ... Resource temporarily
unavailable`` in its log) - links that are not congested at all lose packets. The lab sizes its
link queues from this buffer (:func:`emulation.lab.link_queue_packets`), and
``scripts/bootstrap.sh`` starts the daemon with a large one.

Receiving, it reads each port's veth through its own packet socket.

The userspace datapath reads each Mininet link's veth through a raw packet socket (``p_raw``,
bound to the interface). When its forwarding thread does not come back in time the socket's
receive buffer fills and the kernel drops what arrives (``skmem ... d<N>``). Those packets were
counted as received by the interface, so neither the port counters nor the meters see them go:
they are the host's loss, not the plan's - a hardware switch or the kernel datapath would have
forwarded them. A run reads the counters before and after its load.
"""

from __future__ import annotations

import re
import subprocess

from . import ovsns

# p_raw [UNCONN] 0 0 *:nsls1-eth2 * users:(("ovs-vswitchd",pid=4689,fd=43)) skmem:(r0,...,d17)
_SEND = re.compile(r"^p_raw\s+(?:[A-Z-]+\s+)?\d+\s+\d+\s+\[0\]:\*\s.*?users:\(\(\"ovs-vswitchd\".*?"
                   r"skmem:\([^)]*\btb(\d+)\b")
_LINE = re.compile(r"^p_raw\s+(?:[A-Z-]+\s+)?\d+\s+\d+\s+\*:(\S+)\s.*?users:\(\(\"ovs-vswitchd\".*?"
                   r"skmem:\([^)]*\bd(\d+)\)")


class DatapathSocketError(RuntimeError):
    """The datapath's packet sockets could not be listed."""


def parse_ss(text: str, prefix: str = "") -> dict[str, int]:
    """Interface -> packets its ``ovs-vswitchd`` receive socket dropped (interfaces whose name
    starts with ``prefix``; several sockets on one interface are summed)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and m.group(1).startswith(prefix):
            out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def parse_send_buffer(text: str) -> int | None:
    """The send buffer in bytes of ``ovs-vswitchd``'s shared send socket; None before it sent a
    packet (it makes the socket then, with the ``net.core.wmem_default`` of that moment)."""
    for line in text.splitlines():
        m = _SEND.match(line.strip())
        if m:
            return int(m.group(1))
    return None


def _ss(prefix: str = "") -> str:
    """``ss``'s packet sockets where the datapath of lab ``prefix`` runs (its own namespace,
    :mod:`emulation.ovsns`, or the machine's)."""
    try:
        r = subprocess.run(ovsns.in_netns(prefix, ["ss", "-0", "-a", "-m", "-n", "-p"]),
                           capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DatapathSocketError(f"ss: {e}") from e
    if r.returncode != 0:
        raise DatapathSocketError(f"ss: {r.stderr.strip() or f'exit {r.returncode}'}")
    return r.stdout


def send_buffer_bytes(prefix: str = "") -> int:
    """The send buffer the ports of lab ``prefix``'s datapath share: its socket's, or the one it
    will get."""
    found = parse_send_buffer(_ss(prefix))
    if found is not None:
        return found
    with open("/proc/sys/net/core/wmem_default") as f:
        return int(f.read())


def read_drops(prefix: str = "") -> dict[str, int]:
    """The receive-socket drops of ``ovs-vswitchd`` now, per interface under ``prefix``."""
    return parse_ss(_ss(prefix), prefix)


def between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Drops during a run, per interface (only those that dropped; a socket that came and went
    in between counts from zero)."""
    out = {}
    for iface, n in after.items():
        d = n - before.get(iface, 0)
        if d < 0:  # the socket was recreated: its counter restarted
            d = n
        if d > 0:
            out[iface] = d
    return out
