"""Production as a load target: the running lab (``netshadow lab up --with-controller``), driven
with the same generators and schedule as a shadow and measured the same way
(:class:`emulation.loadrun.LoadRun`), so that the shadow's verdict can be checked against what
production then does (:mod:`emulation.fidelity`).

* The plan is applied through the production controller's REST API (``POST /api/v1/plans``, the
  enforcer's transaction and confirmation, as ``netshadow run`` applies it), and
  :meth:`Production.restore` puts back the plan that was in force before the first apply.
* The lab's hosts are reached by their Mininet shells: the processes named
  ``mininet:<prefix><host>``, whose namespaces ``mnexec -a`` enters. So the lab may run in
  another process (``netshadow lab up``) or in this one (tests hand their :class:`Lab` in).
* Its spec is the controller's (``GET /api/v1/spec``), all tenants.

Traffic goes only between the lab's own hosts, inside their namespaces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from controller.plan import Plan, PlanError, parse_plan
from topologies import NetworkSpec, parse_spec
from topologies.spec import SpecError

from .controller_proc import PlanApplyError, post_plan
from .loadrun import LoadRun


class ProductionError(RuntimeError):
    """Production cannot be driven: its controller, a host or a plan apply; the message names
    which."""


class AttachedHost:
    """A lab host in another process's Mininet network, by the pid of its shell."""

    def __init__(self, name: str, pid: int):
        self.name, self.pid = name, pid

    def _argv(self, args: list[str]) -> list[str]:
        return ["mnexec", "-da", str(self.pid), *args]

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self._argv(list(args)), **kwargs)

    def cmd(self, text: str) -> str:
        return subprocess.run(self._argv(["sh", "-c", text]), capture_output=True, text=True,
                              timeout=30).stdout


class AttachedLab:
    """The hosts of a running lab with ``prefix``, found by their shells' names in /proc."""

    def __init__(self, spec: NetworkSpec, prefix: str, proc: Path = Path("/proc")):
        shells: dict[str, int] = {}
        wanted = {f"mininet:{prefix}{h.name}".encode(): h.name for h in spec.hosts}
        for d in proc.iterdir():
            if not d.name.isdigit():
                continue
            try:
                argv = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            for a in argv:
                if a in wanted:
                    shells.setdefault(wanted[a], int(d.name))
        missing = sorted(h.name for h in spec.hosts if h.name not in shells)
        if missing:
            raise ProductionError(f"--production-prefix: no running lab host {prefix}{missing[0]} "
                                  f"(missing: {', '.join(missing)}); is 'netshadow lab up "
                                  f"--prefix {prefix}' running?")
        self.spec, self.prefix = spec, prefix
        self.hosts = {n: AttachedHost(n, pid) for n, pid in shells.items()}

    def host(self, name: str) -> AttachedHost:
        return self.hosts[name]


def fetch_spec(url: str) -> NetworkSpec:
    """The spec in force at the controller at ``url`` (its base URL)."""
    try:
        r = requests.get(url.rstrip("/") + "/api/v1/spec", timeout=10)
        r.raise_for_status()
        return parse_spec(r.json(), url)
    except (requests.RequestException, ValueError, SpecError) as e:
        raise ProductionError(f"--compare-production: cannot read the spec at {url}: {e}") from None


class Production(LoadRun):
    """The production lab behind the controller at ``controller_url``; ``lab`` defaults to the
    hosts found by ``prefix`` (:class:`AttachedLab`)."""

    def __init__(self, controller_url: str, token: str | None, prefix: str = "nsl",
                 spec: NetworkSpec | None = None, lab=None, **kwargs):
        super().__init__(**kwargs)
        self.url = controller_url.rstrip("/").removesuffix("/api/v1")
        self.token = token
        self.prefix = prefix
        self.spec = spec or fetch_spec(self.url)
        self.lab = lab if lab is not None else AttachedLab(self.spec, prefix)
        self._before: dict | None = None  # the plan in force before the first apply (as sent)
        self._touched = False
        self.plan = self._current()

    @property
    def controller_url(self) -> str:
        return f"{self.url}/api/v1"

    def _current(self) -> Plan | None:
        try:
            r = requests.get(f"{self.url}/api/v1/plans/current", timeout=10)
            r.raise_for_status()
            data = r.json()["plan"]
        except (requests.RequestException, ValueError, KeyError) as e:
            raise ProductionError(f"--compare-production: cannot read the plan in force at "
                                  f"{self.url}: {e}") from None
        if data is None:
            return None
        try:
            return parse_plan(data, self.spec)
        except PlanError as e:
            raise ProductionError(f"--compare-production: the plan in force: {e}") from None

    def _post(self, body: dict) -> dict:
        try:
            return post_plan(self.url, self.token, body)
        except PlanApplyError as e:
            raise ProductionError(f"--compare-production: {e}") from None

    def apply(self, plan: Plan | None) -> None:
        """Put ``plan`` in force in production (None: a plan without allocations)."""
        if not self._touched:
            self._before = self.plan.to_dict() if self.plan is not None else None
            self._touched = True
        self._post(plan.to_dict() if plan is not None else {"name": "none"})
        self.plan = plan

    def restore(self) -> None:
        """Put back the plan that was in force before the first :meth:`apply`."""
        if not self._touched:
            return
        before = self._before
        self._post(before if before is not None else {"name": "none"})
        self.plan = parse_plan(before, self.spec) if before is not None else None
        self._touched = False


def side_by_side(shadow, production: Production, plan: Plan | None, demands: list,
                 duration_s: float, probe: bool = True):
    """Run ``plan`` under ``demands`` in the shadow, then in production (one after the other, so
    that neither competes with the other for the CPU); returns both reports and their
    :class:`~emulation.fidelity.Fidelity`. Production keeps ``plan`` in force afterwards: call
    :meth:`Production.restore` when done."""
    from .fidelity import compare

    shadow.apply(plan)
    in_shadow = shadow.run(demands, duration_s, probe)
    production.apply(plan)
    in_production = production.run(demands, duration_s, probe)
    return in_shadow, in_production, compare(in_shadow, in_production)
