"""The emulation lab: a Mininet network built from a spec, connected to the netshadow controller.

* switches: Open vSwitch, OpenFlow 1.3, fail mode ``secure`` (nothing is forwarded until the
  controller programs the switch), datapath ``user`` by default (this machine's kernel has no
  openvswitch module) or ``kernel`` (set ``datapath``, or ``NETSHADOW_DATAPATH``, e.g. in the
  Vagrant VM);
* links: ``TCLink`` with HTB at the spec's capacity in Mbit/s, and under its class a short
  head-drop queue in place of the default 1000-packet FIFO (:func:`_link_queues`);
* hosts: TX checksum offload off on every interface, or the userspace datapath drops their TCP
  and UDP packets; a host with a CPU share (Mininet's ``CPULimitedHost``) also gets a memory
  cgroup of its name, so a plan's memory limit has somewhere to go (:func:`_memory_cgroup`).

Every object carries ``prefix`` (three characters, default ``nsl``), so a shadow network can run
beside the lab. With ``own_ovs`` the switches run in an Open vSwitch of the lab's own, in a
namespace of its own (:mod:`emulation.ovsns`): a shadow's packets then never wait in the loop that
forwards production's. :meth:`Lab.stop` always ends with :func:`emulation.cleanup.remove` for the prefix,
so nothing of the lab survives a failure half-way through start or stop.
"""

from __future__ import annotations

import logging
import os
import time
from functools import partial

from topologies import NetworkSpec

from . import cleanup, dpsock

LOG = logging.getLogger("netshadow.lab")
DATAPATHS = ("user", "kernel")


def _quiet_htb_quantum() -> None:
    """tc warns that HTB's quantum is big at rates above ~12 Mbit/s with the default r2q; the
    shaping is still right, so drop that one message (Mininet logs it as an error)."""
    from mininet.log import lg

    if not any(getattr(f, "_netshadow", False) for f in lg.filters):
        def keep(record: logging.LogRecord) -> bool:
            return "quantum of class" not in record.getMessage()

        keep._netshadow = True  # type: ignore[attr-defined]
        lg.addFilter(keep)


LINK_QUEUE_HANDLE = "fffe:"  # outside the meter ids controller.tc gives its class qdiscs
LINK_QUEUE_MAX = 256  # packets: 62 ms at 50 Mbit/s of full-size frames; a TCP burst fits
LINK_QUEUE_MIN = 16
PACKET_TRUESIZE = 2304  # bytes a full-size frame costs a socket buffer (its skb and data)
FULL_QUEUES = 3  # link directions that may be overloaded at once without starving the others


def link_queue_packets(send_buffer_bytes: int) -> int:
    """How long a link direction's queue may be, in packets: every port of the userspace
    datapath sends through one socket whose send buffer (``send_buffer_bytes``,
    :func:`emulation.dpsock.send_buffer_bytes`) pays for every packet waiting in any queue, so
    :data:`FULL_QUEUES` full queues must fit in it."""
    fit = send_buffer_bytes // (PACKET_TRUESIZE * FULL_QUEUES)
    return int(max(LINK_QUEUE_MIN, min(LINK_QUEUE_MAX, fit)))


def _link_queues(net, packets: int) -> int:
    """Under each shaped link's HTB class (Mininet's ``5:1``) a head-drop queue of ``packets``
    (:func:`link_queue_packets`); returns how many link directions got one.

    Mininet leaves HTB's default there: a 1000-packet FIFO that refuses what arrives when full.
    The userspace datapath reads its ports one after another in a fixed order (its port table's)
    and, with the queue full, whatever comes next is refused: on an overloaded link the flows
    whose input port is read first took the whole capacity and the others all the loss - a strict
    priority set by port numbering, which differs from lab to lab (a shadow and production
    disagreed on which flow starved, every run). Worse, 1000 waiting packets hold the send buffer
    every port shares (208 KiB by default), so sends to *other*, idle links failed too. A
    head-drop queue admits every packet and drops the oldest: each flow loses in proportion to
    what it sends, whatever the poll order; and its length is what the shared send buffer can
    pay for. (This kernel has no fair-queueing qdisc: no fq_codel, sfq or red.)"""
    n = 0
    for link in net.links:
        for intf in (link.intf1, link.intf2):
            if not getattr(intf, "params", {}).get("bw"):
                continue
            out = intf.node.cmd(f"tc qdisc replace dev {intf.name} parent 5:1 handle "
                                f"{LINK_QUEUE_HANDLE} pfifo_head_drop limit {packets} 2>&1")
            if out.strip():
                raise LabError(f"link {intf.name}: its queue under the HTB class: {out.strip()}")
            n += 1
    return n


def _controller_class(starting: bool):
    """A RemoteController whose reachability check is a TCP connect. Mininet's own check runs
    ``telnet`` against the OpenFlow port and decodes what comes back as UTF-8: the controller's
    OpenFlow HELLO (binary, with a random transaction id) then fails to decode about half of the
    time and the lab start crashes. For a controller that is still ``starting``, there is no check
    at all: "unable to contact" would only warn about a race the switches resolve by retrying."""
    import socket

    from mininet.log import warn
    from mininet.node import RemoteController

    class CheckedController(RemoteController):
        def checkListening(self):
            if starting:
                return None
            try:
                with socket.create_connection((self.ip, self.port), timeout=2):
                    return None
            except OSError:
                warn(f"Unable to contact the remote controller at {self.ip}:{self.port}\n")
                return None

    return CheckedController


MEMORY_CGROUP_ROOT = "/sys/fs/cgroup/memory"


def _switch_class(ovs=None):
    """Mininet's ``OVSSwitch``, its ports numbered in the datapath the same way whatever the lab,
    and with ``ovs`` (:class:`emulation.ovsns.OvsNamespace`) its shell - so every ``ovs-vsctl``,
    ``tc`` and ``ip`` it runs, and the links' switch ends made through its pid - in that Open
    vSwitch's namespace, talking to its daemons.

    The userspace datapath numbers ports in the order they are added (the lowest number free)
    and reads them in an order set by those numbers. Mininet adds a switch's ports in one
    transaction, which Open vSwitch applies in an order of its own that changes from one build to
    the next; so the same path met the forwarding loop at other points in two builds of one spec,
    and its latency differed by a fraction of a millisecond with nothing queued. Here the bridge
    comes first and then its ports one transaction each, in OpenFlow port order: two labs of one
    spec, each in a datapath of its own, number and read their ports alike."""
    import shlex

    from mininet.node import OVSSwitch
    from mininet.util import errRun

    class LabSwitch(OVSSwitch):
        def start(self, controllers):
            if self.batch:
                raise LabError("switch: batch start-up would add the ports in one transaction")
            ports = {intf: n for intf, n in self.ports.items() if n and not intf.IP()}
            saved = dict(self.ports)
            try:
                for intf in ports:  # Mininet's start adds the ports it numbers: the bridge alone
                    self.ports[intf] = 0
                super().start(controllers)
            finally:
                self.ports.update(saved)
            for intf in sorted(ports, key=ports.get):
                out = self.vsctl("add-port", self, intf, self.intfOpts(intf))
                if out.strip():
                    raise LabError(f"switch {self.name}: port {intf}: {out.strip()}")
            for intf in self.intfList():
                self.TCReapply(intf)

    if ovs is None:
        return LabSwitch
    where = " ".join(shlex.quote(a) for a in ovs.ns_argv([]))

    def run(cmd, **_):  # Mininet's batch start and stop hand over shell command lines
        return errRun(f"{where} {cmd}", shell=True)

    class NamespacedSwitch(LabSwitch):
        def _popen(self, cmd, **params):
            return super()._popen(ovs.ns_argv(list(cmd)), **params)

        @classmethod
        def batchStartup(cls, switches, run=run):
            return super().batchStartup(switches, run=run)

        @classmethod
        def batchShutdown(cls, switches, run=run):
            return super().batchShutdown(switches, run=run)

    return NamespacedSwitch


def _memory_cgroup(node) -> str | None:
    """A memory cgroup named like ``node`` (v1) holding its shell (so everything the shell starts);
    Mininet's ``CPULimitedHost`` makes only cpu, cpuacct and cpuset groups. A process moved in
    later brings its charges along only where the kernel still moves them
    (``move_charge_at_immigrate``, gone from recent kernels); elsewhere what it allocates from then
    on is charged. None where the memory controller is not mounted."""
    root = MEMORY_CGROUP_ROOT
    if not os.path.isdir(root):
        return None
    path = os.path.join(root, node.name)
    os.makedirs(path, exist_ok=True)
    try:
        with open(os.path.join(path, "memory.move_charge_at_immigrate"), "w") as f:
            f.write("3")
    except OSError:
        pass  # charges then stay where they were made; the limit still applies to new ones
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(node.pid))
    return path


class LabError(RuntimeError):
    """The lab could not be built or reached."""


class Lab:
    """Context manager around a Mininet network for ``spec``::

        with Lab(spec, controller_port=6653) as lab:
            lab.host("h1").cmd("ping -c1 10.0.0.2")
    """

    def __init__(self, spec: NetworkSpec, prefix: str = "nsl", controller_ip: str = "127.0.0.1",
                 controller_port: int = 6653, datapath: str | None = None, shape: bool = True,
                 controller_starting: bool = False, own_ovs: bool = False):
        """``own_ovs``: switches in an Open vSwitch of the lab's own (userspace datapath only);
        the controller must listen on the address :meth:`start_ovs` returns."""
        from topologies.mininet_topo import check_prefix

        self.spec = spec
        self.prefix = check_prefix(prefix)
        self.controller_ip = controller_ip
        self.controller_port = controller_port
        self.datapath = datapath or os.environ.get("NETSHADOW_DATAPATH", "user")
        if self.datapath not in DATAPATHS:
            raise LabError(f"datapath: must be one of {list(DATAPATHS)} (got {self.datapath!r})")
        if own_ovs and self.datapath != "user":
            raise LabError(f"own_ovs: needs the userspace datapath (datapath is {self.datapath!r})")
        self.own_ovs = own_ovs
        self.ovs = None  # emulation.ovsns.OvsNamespace once started
        self.shape = shape
        self.controller_starting = controller_starting  # started in parallel: skip Mininet's check
        self.net = None
        self.start_s: float | None = None
        self.stop_s: float | None = None
        self.leftovers: cleanup.Leftovers | None = None  # what Mininet's own teardown left
        self._owner = False
        self.link_queue_packets: int | None = None  # each shaped link direction's queue

    # -------------------------------------------------------------------- lifecycle
    def _claim(self) -> None:
        """Refuse to start beside objects that already carry the prefix; from then on,
        whatever carries it is this lab's."""
        if self._owner:
            return
        leftovers = cleanup.find(self.prefix, registered=False)
        if not leftovers.empty():
            raise LabError(f"prefix: objects named {self.prefix}* already exist "
                           f"({leftovers.bridges + leftovers.interfaces + leftovers.datapaths}); "
                           f"another lab is running or one crashed - run "
                           f"'netshadow lab down --prefix {self.prefix}'")
        self._owner = True

    def start_ovs(self) -> str:
        """Start the lab's own Open vSwitch (``own_ovs``; done by :meth:`start` otherwise) and
        return the address its switches reach the controller at: start the controller on it
        meanwhile."""
        from .ovsns import OvsNamespace

        if not self.own_ovs:
            raise LabError("own_ovs: this lab uses the system's Open vSwitch")
        if self.ovs is None:
            self._claim()
            try:
                self.ovs = OvsNamespace(self.prefix).start()
            except BaseException:
                self.stop()
                raise
            self.controller_ip = self.ovs.controller_ip
        return self.controller_ip

    def start(self) -> Lab:
        from mininet.link import TCLink
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        from topologies.mininet_topo import SpecTopo

        setLogLevel(os.environ.get("NETSHADOW_MININET_LOG", "warning"))
        _quiet_htb_quantum()
        t0 = time.monotonic()
        if self.own_ovs:
            self.start_ovs()
        self._claim()
        switch = partial(_switch_class(self.ovs), batch=False, failMode="secure",
                         datapath=self.datapath, protocols="OpenFlow13", inband=False)
        try:
            self.net = Mininet(topo=SpecTopo(spec=self.spec, prefix=self.prefix, shape=self.shape),
                               switch=switch, link=TCLink, controller=None, autoSetMacs=False,
                               build=False, waitConnected=False)
            ctl_cls = _controller_class(starting=self.controller_starting)
            self.net.addController(self.prefix + "c0", controller=ctl_cls,
                                   ip=self.controller_ip, port=self.controller_port)
            self.net.build()
            self.net.start()
            if self.shape:
                self.link_queue_packets = link_queue_packets(dpsock.send_buffer_bytes(self.prefix))
                if self.link_queue_packets < LINK_QUEUE_MAX:
                    LOG.warning("lab %s: the datapath's shared send buffer holds only %d-packet "
                                "link queues (scripts/bootstrap.sh starts Open vSwitch with a "
                                "larger one)", self.prefix, self.link_queue_packets)
                _link_queues(self.net, self.link_queue_packets)
            for h in self.net.hosts:
                for intf in h.intfList():
                    if intf.name != "lo":
                        h.cmd(f"ethtool -K {intf.name} tx off >/dev/null 2>&1")
                h.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
                if self.spec.host(h.name[len(self.prefix):]).cpu is not None:
                    _memory_cgroup(h)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.monotonic() - t0
        LOG.info("lab %s up in %.2f s", self.prefix, self.start_s)
        return self

    def stop(self) -> None:
        if not self._owner:
            return  # never started, or refused to start beside another network's objects
        t0 = time.monotonic()
        try:
            if self.net is not None:
                self.net.stop()
                # Mininet's RemoteController.stop() leaves the node's shell running, and its
                # cgdelete for a CPULimitedHost leaves the cpuacct and cpuset directories
                for c in self.net.controllers:
                    c.terminate()
                for path in cleanup.find(self.prefix, registered=False).cgroups:
                    try:
                        os.rmdir(path)
                    except OSError:
                        pass  # the final sweep reports it
            if self.ovs is not None:  # its daemons, namespace and control link
                self.ovs.stop()
        finally:
            self.net = None
            self.ovs = None  # removed with the rest of the prefix's objects
            self.leftovers = cleanup.remove(self.prefix)
            self.stop_s = time.monotonic() - t0

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------------- access
    def host(self, name: str):
        """The Mininet host for spec host ``name``."""
        if self.net is None:
            raise LabError("lab: not started")
        return self.net.get(self.prefix + name)

    def switch_names(self) -> list[str]:
        return [self.prefix + s.name for s in self.spec.switches]
