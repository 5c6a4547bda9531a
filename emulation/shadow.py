"""Shadow networks: a throw-away replica of a tenant's network, driven by the forecast, measured.

A shadow is a second Mininet network built from the same spec (all tenants, or only some), with
its own three-character name prefix (default ``sh1``) on every node, bridge and interface, its
own controller process (the same controller code, so the same routing and ACLs) on free OpenFlow
and REST ports, with its own store in the shadow's work directory. Production is never touched:
the shadow's switches connect only to the shadow's controller, and its hosts only to its
switches. ``netshadow shadow clean`` removes a crashed shadow by prefix, and nothing else.

Per candidate plan, :meth:`Shadow.apply` puts it in force through the shadow controller's REST
API, exactly as production's plans are (``POST /api/v1/plans``: the enforcer's phased
transaction, confirmed by barriers, rolled back on failure), so the shadow measures the plan
as production will hold it, in a tenth of a second where restarting the controller on cleared
switches took seconds; a controller that has died is restarted with the plan instead. It also
sets the plan's CPU quotas on the CPU-limited hosts' cgroups (production's agents do that; a
shadow has none), and :meth:`Shadow.run` measures the forecast load exactly as
production is measured (:mod:`emulation.loadrun`): flows, scan and RTT probes, link counters,
the CPU-limited hosts' loads, and a verdict that keeps what the host did apart from what the
plan did.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path

from controller.plan import Plan
from topologies import NetworkSpec

from . import cleanup, hostcompute
from .controller_proc import ControllerProcess, PlanApplyError, free_port, post_plan
from .lab import Lab
from .loadrun import FlowDemand, LoadRun
from .report import ShadowReport


def restrict(spec: NetworkSpec, tenants: list[str] | None) -> NetworkSpec:
    """The spec with only ``tenants`` (all switches and links kept)."""
    if not tenants:
        return spec
    unknown = sorted(set(tenants) - {t.id for t in spec.tenants})
    if unknown:
        raise ValueError(f"tenants: not in the spec: {unknown}")
    keep = [t for t in spec.tenants if t.id in tenants]
    hosts = {h for t in keep for h in t.hosts}
    return NetworkSpec(spec.name, spec.switches, spec.links,
                       tuple(h for h in spec.hosts if h.name in hosts), tuple(keep), spec.source)


def demand_for(spec: NetworkSpec, tenant: str, app: str, rates_mbps) -> FlowDemand | None:
    """The flow that stands for ``tenant``'s ``app``: between the first client/server pair of its
    policies, at ``rates_mbps`` (one per step); None if no policy allows it."""
    t = spec.tenant(tenant)
    a = t.app(app)
    pairs = sorted((s, d) for s, d, ap in spec.allowed() if ap == app and s in t.hosts)
    if not pairs:
        return None
    return FlowDemand(t.id, a.name, pairs[0][0], pairs[0][1], a.protocol, a.port,
                      tuple(max(0.0, float(r)) for r in rates_mbps))


def demands_from_forecast(spec: NetworkSpec, forecast, quantile: float = 0.5) -> list[FlowDemand]:
    """One flow per tenant application whose ``app/<tenant>/<app>/fwd/bps`` series is forecast."""
    out = []
    for t in spec.tenants:
        for a in t.applications:
            try:
                sf = forecast.get(f"app/{t.id}/{a.name}/fwd/bps")
            except KeyError:
                continue
            d = demand_for(spec, t.id, a.name, [v / 1e6 for v in sf.quantile(quantile)])
            if d is not None:
                out.append(d)
    return out


class ShadowError(RuntimeError):
    """The shadow could not put a plan in force; the message names the plan and why."""


class Shadow(LoadRun):
    def __init__(self, spec: NetworkSpec, prefix: str = "sh1", tenants: list[str] | None = None,
                 workdir: str | Path | None = None, util_threshold: float = 0.9,
                 loss_threshold: float = 0.01, rtt_bound_ms: float | None = None,
                 frame_bytes: int = 1514, attempts: int = 3, own_ovs: bool = True):
        """``own_ovs``: the shadow's switches run in an Open vSwitch of its own
        (:mod:`emulation.ovsns`), not in the one forwarding production; False only to measure
        what that changes."""
        super().__init__(util_threshold, loss_threshold, rtt_bound_ms, frame_bytes, attempts)
        self.spec = restrict(spec, tenants)
        self.prefix = prefix
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"netshadow-{prefix}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.own_ovs = own_ovs
        self.of_host = "127.0.0.1"  # where the controller listens for the switches
        self.of_port = free_port()
        self.rest_port = free_port()
        self.ctl: ControllerProcess | None = None
        self.lab: Lab | None = None
        self.plan: Plan | None = None
        self.build_s: float | None = None
        self.base_quota: dict[str, float | None] = {}  # the CPU-limited hosts' own, at start
        self.spec_path = self.workdir / "spec.json"
        self.spec_path.write_text(json.dumps(self.spec.to_dict()))
        # the shadow's own API token, so that plans are applied through the API as production's
        self.token = secrets.token_urlsafe(24)
        self.token_path = self.workdir / "api-token"
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.token)

    # ------------------------------------------------------------------ lifecycle
    def _controller(self, plan: Plan | None) -> ControllerProcess:
        """A controller process for the shadow, registered under its prefix so that
        ``netshadow shadow clean`` can end it by pid after a crash."""
        args = ["--token-file", str(self.token_path), "--of-host", self.of_host]
        if plan is not None:
            p = self.workdir / f"plan-{plan.name}.json"
            p.write_text(json.dumps(plan.to_dict()))
            args += ["--plan", str(p)]
        return ControllerProcess(self.spec_path, self.of_port, self.rest_port,
                                 log_path=self.workdir / "controller.log", extra_args=args,
                                 db_path=self.workdir / "shadow.db")

    def _start_controller(self, plan: Plan | None) -> ControllerProcess:
        ctl = self._controller(plan).start()
        cleanup.register_pid(self.prefix, ctl.proc.pid)
        return ctl

    def start(self, plan: Plan | None = None) -> Shadow:
        t0 = time.monotonic()
        try:
            self.lab = Lab(self.spec, prefix=self.prefix, controller_port=self.of_port,
                           controller_starting=True, own_ovs=self.own_ovs)
            if self.own_ovs:  # its switches reach the controller over the namespace's link
                self.of_host = self.lab.start_ovs()
            # the controller starts while Mininet builds; switches connect once it listens
            self.ctl = self._controller(plan).launch()
            cleanup.register_pid(self.prefix, self.ctl.proc.pid)
            self.lab.start()
            self.ctl.wait_started()
            self.ctl.wait_ready(timeout_s=60)
            self.base_quota = {h.name: hostcompute.quota(self._cgroup(h.name))
                               for h in self.spec.hosts if h.cpu is not None}
            self._set_quotas(plan)
            self.prespawn_scanners()  # crafts the scan's probes once: the first run is warm too
        except BaseException:
            self.stop()
            raise
        self.plan = plan
        self.build_s = time.monotonic() - t0
        return self

    def apply(self, plan: Plan | None) -> None:
        """Put ``plan`` in force through the shadow controller's API (None: a plan without
        allocations), as production's plans are; a controller that has died is restarted with
        it on cleared switches. The next run's scanners start meanwhile (they only wait for it).
        Raises :class:`ShadowError` when the controller refuses or rolls the plan back."""
        self.prespawn_scanners()
        body = plan.to_dict() if plan is not None else {"name": "none"}
        if self.ctl.proc.poll() is None:
            try:
                post_plan(self.ctl.url.removesuffix("/api/v1"), self.token, body)
            except PlanApplyError as e:
                if e.reached:
                    raise ShadowError(f"shadow {self.prefix}: {e}") from None
                self._restart(plan)  # the controller stopped answering
        else:
            self._restart(plan)
        self._set_quotas(plan)
        self.plan = plan

    def _restart(self, plan: Plan | None) -> None:
        """A new controller started with ``plan``; switches are cleared and re-programmed."""
        self.ctl.stop()
        self.ctl = self._start_controller(plan)
        self.ctl.wait_ready(timeout_s=60)

    def _set_quotas(self, plan: Plan | None) -> None:
        """The plan's CPU quota on each CPU-limited host, else the host's own share."""
        for host, base in self.base_quota.items():
            q = plan.cpu_quota(host) if plan is not None else None
            hostcompute.set_quota(self._cgroup(host), base if q is None else q)

    def stop(self) -> None:
        self.drop_prespawned()
        try:
            if self.lab is not None:
                self.lab.stop()
        finally:
            if self.ctl is not None:
                self.ctl.stop()
            self.token_path.unlink(missing_ok=True)  # its controller is gone: nothing to open

    def __enter__(self) -> Shadow:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def controller_url(self) -> str:
        return self.ctl.url


def evaluate_plans(shadow: Shadow, plans: list[Plan | None], demands: list[FlowDemand],
                   duration_s: float) -> tuple[list[ShadowReport], ShadowReport | None]:
    """Run every plan in the same replica; returns the reports and the cheapest that passed."""
    reports = []
    for plan in plans:
        shadow.apply(plan)
        reports.append(shadow.run(demands, duration_s))
    passing = [r for r in reports if r.verdict == "pass"]
    return reports, min(passing, key=lambda r: r.plan_cost_mbps) if passing else None
