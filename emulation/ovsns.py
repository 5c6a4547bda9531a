"""An Open vSwitch of a lab's own: ``ovsdb-server`` and ``ovs-vswitchd`` (userspace datapath) in a
network namespace named after the lab's prefix.

Why: the userspace datapath forwards every port of every bridge on the machine from one thread,
which reads the ports in the order of a hash of their port numbers. A shadow beside production
shares that thread, and its ports get other numbers than production's, so a packet crossing a
path meets the thread's loop at other points: the same path's latency differed between the two
networks by up to a millisecond while nothing was queued. A daemon of its own polls only the
lab's ports, numbered in the lab's own order, as production's daemon polls production's.

A second userspace datapath cannot run beside the system one in one namespace (both name their
tap device ``ovs-netdev``), hence the namespace ``<prefix>dp``. In it:

* the daemons, with ``OVS_RUNDIR`` = ``/run/netshadow/ovs/<prefix>``: their database socket,
  pid files, control sockets and each bridge's ``<bridge>.mgmt`` are there, so ``ovs-vsctl`` and
  ``ovs-ofctl <bridge>`` reach them with that variable set (:func:`env_for`);
* the switches' ends of the links (Mininet moves them by the switch shell's pid);
* ``<prefix>c1``, one end of a veth pair whose other end ``<prefix>c0`` is in the machine's
  namespace: the switches reach the controller at :attr:`OvsNamespace.controller_ip` over it
  (an address of 169.254.250.0/24, link-local, never routed).

Everything is removed by :meth:`OvsNamespace.stop`, and by :func:`emulation.cleanup.remove`
after a crash (daemons ended by the pids in their pid files).
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

LOG = logging.getLogger("netshadow.ovsns")
SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
CONTROL_NET = ipaddress.ip_network("169.254.250.0/24")  # split into /30s, one per namespace
DAEMONS = ("ovs-vswitchd", "ovsdb-server")  # stopped in this order
OVS_CTL_NICE = -10  # ovs-ctl's default priority for the daemons (--ovs-vswitchd-priority)


class OvsNamespaceError(RuntimeError):
    """The lab's own Open vSwitch could not be started; the message names the step."""


def _run_root() -> Path:
    from .cleanup import RUN_DIR
    return RUN_DIR / "ovs"


def rundir(prefix: str) -> Path:
    return _run_root() / prefix


def netns_name(prefix: str) -> str:
    return f"{prefix}dp"


def owner_of(name: str) -> str | None:
    """The prefix of the own Open vSwitch that ``name`` (a bridge, an interface, a prefix)
    belongs to; None: the system's."""
    root = _run_root()
    if not root.is_dir():
        return None
    found = [d.name for d in root.iterdir() if d.is_dir() and name.startswith(d.name)]
    return max(found, key=len) if found else None


def running(prefix: str) -> list[str]:
    """The prefixes starting with ``prefix`` whose own Open vSwitch database answers."""
    root = _run_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir()
                  if d.name.startswith(prefix) and (d / "db.sock").exists())


def env_for(name: str) -> dict[str, str] | None:
    """The environment that points ``ovs-vsctl``/``ovs-ofctl`` at the Open vSwitch holding
    ``name`` (None: the system's, the default)."""
    prefix = owner_of(name)
    return None if prefix is None else {**os.environ, "OVS_RUNDIR": str(rundir(prefix))}


def in_netns(name: str, argv: list[str]) -> list[str]:
    """``argv`` run where the datapath holding ``name`` runs (unchanged for the system's)."""
    prefix = owner_of(name)
    if prefix is None:
        return argv
    return ["ip", "netns", "exec", netns_name(prefix), "env", f"OVS_RUNDIR={rundir(prefix)}", *argv]


def vswitchd_pid_file(name: str) -> Path | None:
    """The pid file of the ``ovs-vswitchd`` forwarding ``name``'s packets (None: the system's)."""
    prefix = owner_of(name)
    return None if prefix is None else rundir(prefix) / "ovs-vswitchd.pid"


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def system_nice() -> int:
    """The nice value the system's ``ovs-vswitchd`` runs at (ovs-ctl's -10 when it cannot be
    read): a lab's own daemon gets the same, or it would lose the CPU to the load generators
    that production's daemon wins against."""
    from .hostcpu import OVS_PID_FILE

    pid = _pid(OVS_PID_FILE)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[16])  # field 19: nice
    except (OSError, ValueError, IndexError):
        return OVS_CTL_NICE


def _netns_names() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def leftovers(prefix: str) -> list[str]:
    """The own Open vSwitch objects of prefixes starting with ``prefix``: namespaces and run
    directories, by name."""
    out = [f"netns {n}" for n in _netns_names() if n.startswith(prefix) and n.endswith("dp")]
    root = _run_root()
    if root.is_dir():
        out += [f"rundir {d}" for d in sorted(root.iterdir()) if d.name.startswith(prefix)]
    return out


def _stop_daemon(path: Path, timeout_s: float = 10.0) -> None:
    pid = _pid(path)
    if pid is None:
        return
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return  # already gone
    if not any(d.encode() in argv for d in DAEMONS):
        return  # a recycled pid: not ours
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    if Path(f"/proc/{pid}").exists():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove(prefix: str) -> None:
    """End the daemons of ``prefix``'s own Open vSwitch by their pid files and remove its
    namespace, control link and run directory (each only if it exists)."""
    d = rundir(prefix)
    for daemon in DAEMONS:
        _stop_daemon(d / f"{daemon}.pid")
    subprocess.run(["ip", "link", "del", f"{prefix}c0"], capture_output=True, timeout=10)
    ns = netns_name(prefix)
    if ns in _netns_names():
        r = subprocess.run(["ip", "netns", "del", ns], capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            LOG.warning("netns %s not removed: %s", ns, r.stderr.strip())
    shutil.rmtree(d, ignore_errors=True)


def _free_control_net() -> ipaddress.IPv4Network:
    r = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=10)
    used = set()
    for line in r.stdout.split():
        if "/" in line:
            try:
                used.add(ipaddress.ip_interface(line).ip)
            except ValueError:
                continue
    for net in CONTROL_NET.subnets(new_prefix=30):
        if not any(a in net for a in used):
            return net
    raise OvsNamespaceError(f"control link: every /30 of {CONTROL_NET} is in use")


class OvsNamespace:
    """``start()`` / ``stop()`` the Open vSwitch of lab ``prefix`` (module docstring)."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.netns = netns_name(prefix)
        self.rundir = rundir(prefix)
        self.controller_ip: str | None = None  # the machine's end of the control link
        self.switch_ip: str | None = None  # the namespace's end
        self.start_s: float | None = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "OVS_RUNDIR": str(self.rundir)}

    def ns_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, "env", f"OVS_RUNDIR={self.rundir}", *argv]

    def _daemon_argv(self, argv: list[str]) -> list[str]:
        """A daemon as ovs-ctl starts the system's: at its nice value, memory locked."""
        step = system_nice() - os.getpriority(os.PRIO_PROCESS, 0)
        return self.ns_argv(["nice", "-n", str(step), *argv])

    def _step(self, what: str, argv: list[str], env=None) -> None:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
        if r.returncode != 0:
            raise OvsNamespaceError(f"{what}: {(r.stderr or r.stdout).strip() or f'exit {r.returncode}'}")

    def start(self) -> OvsNamespace:
        t0 = time.monotonic()
        if not SCHEMA.is_file():
            raise OvsNamespaceError(f"schema: {SCHEMA} not found (the openvswitch-common package)")
        try:
            self.rundir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise OvsNamespaceError(f"rundir: {self.rundir} exists; another lab with prefix "
                                    f"{self.prefix} runs, or one crashed") from None
        try:
            d = self.rundir
            self._step("netns", ["ip", "netns", "add", self.netns])
            self._step("netns loopback", ["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"])
            self._step("database", ["ovsdb-tool", "create", str(d / "conf.db"), str(SCHEMA)])
            self._step("ovsdb-server", self._daemon_argv(
                ["ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d / 'db.sock'}",
                 f"--pidfile={d / 'ovsdb-server.pid'}", f"--unixctl={d / 'ovsdb-server.ctl'}",
                 f"--log-file={d / 'ovsdb-server.log'}", "--detach"]))
            self._step("ovsdb init", ["ovs-vsctl", "--timeout=10", "--no-wait", "init"], env=self.env)
            self._step("ovs-vswitchd", self._daemon_argv(
                ["ovs-vswitchd", f"unix:{d / 'db.sock'}", "--mlockall",
                 f"--pidfile={d / 'ovs-vswitchd.pid'}",
                 f"--unixctl={d / 'ovs-vswitchd.ctl'}", f"--log-file={d / 'ovs-vswitchd.log'}",
                 "--detach"]))
            root, inner = f"{self.prefix}c0", f"{self.prefix}c1"
            self._step("control link", ["ip", "link", "add", root, "type", "veth", "peer", "name",
                                        inner, "netns", self.netns])
            with open(_run_root() / ".control-net.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # two labs starting at once pick different /30s
                hosts = list(_free_control_net().hosts())
                self.controller_ip, self.switch_ip = str(hosts[0]), str(hosts[1])
                self._step("control link", ["ip", "addr", "add", f"{self.controller_ip}/30",
                                            "dev", root])
            self._step("control link", ["ip", "link", "set", root, "up"])
            self._step("control link", ["ip", "netns", "exec", self.netns, "ip", "addr", "add",
                                        f"{self.switch_ip}/30", "dev", inner])
            self._step("control link", ["ip", "netns", "exec", self.netns, "ip", "link", "set",
                                        inner, "up"])
        except BaseException:
            remove(self.prefix)
            raise
        self.start_s = time.monotonic() - t0
        LOG.info("own Open vSwitch for %s up in %.2f s (netns %s)", self.prefix, self.start_s,
                 self.netns)
        return self

    @property
    def vswitchd_pid_file(self) -> Path:
        return self.rundir / "ovs-vswitchd.pid"

    def stop(self) -> None:
        remove(self.prefix)
