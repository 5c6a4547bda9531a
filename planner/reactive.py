"""The reactive baseline as a loop policy (pure): ``netshadow run --policy reactive``.

The threshold allocator (:func:`controller.reactive.react`) on what was measured last, for the
applications' bandwidth and the hosts' compute alike, so an operator (and a test) can run the
baseline the predictive planner is judged against through the very loop, telemetry and apply
path the planner uses. Thresholds and cooldown are the planner's reactive reference
(:attr:`planner.core.PlannerSettings.reactive`, the cooldown in steps); the step and the floor
are in each resource's unit: Mbit/s for bandwidth, cores for CPU (0.02 and
:data:`controller.plan.MIN_CPU_QUOTA`), MiB for memory (16 and
:data:`controller.plan.MIN_MEMORY_MIB`). Compute stays within what a plan can set.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from controller.plan import (
    MAX_CPU_QUOTA,
    MAX_MEMORY_MIB,
    MIN_CPU_QUOTA,
    MIN_MEMORY_MIB,
    Allocation,
    Plan,
)
from controller.reactive import ReactiveSettings, ReactiveState, react
from models.series import SeriesKey, SeriesSet

from .compute import held
from .core import PlannerSettings

UNIT_STEPS = {"cpu": (0.02, MIN_CPU_QUOTA, MAX_CPU_QUOTA), "memory": (16.0, MIN_MEMORY_MIB, MAX_MEMORY_MIB)}


@dataclass
class ReactivePlanner:
    settings: PlannerSettings
    step_s: float
    states: dict[str, ReactiveState] = field(default_factory=dict)

    def _settings(self, metric: str) -> ReactiveSettings:
        base = self.settings.reactive_for(self.step_s)
        if metric == "bandwidth":
            return base
        step, lo, _ = UNIT_STEPS[metric]
        return replace(base, min_step_mbps=step, floor_mbps=lo)

    def decide(self, now: float, observed: SeriesSet, current: Plan | None, name: str) -> Plan:
        """The plan for the newest measured values of ``observed`` (names: SeriesKey names)."""
        keys = [SeriesKey.parse(n) for n in observed.names]
        used = {}
        for j, k in enumerate(keys):
            col = np.asarray(observed.values[:, j], dtype=float)
            fin = np.flatnonzero(np.isfinite(col))
            used[k] = float(col[fin[-1]]) if len(fin) else 0.0
        out: dict[str, Plan] = {}
        for metric in ("bandwidth", "cpu", "memory"):
            group = [k for k in keys if k.metric == metric]
            if not group:
                continue
            # react() speaks (tenant, app) allocations; compute keys name a host in app's place
            now_in = [Allocation(k.tenant, k.app, v) for k in group
                      if (v := held(current, k)) is not None]
            prev = Plan("in-force", tuple(now_in)) if now_in else None
            out[metric] = react({k.app_key: used[k] for k in group}, prev, now,
                                self.states.setdefault(metric, ReactiveState()),
                                self._settings(metric), initial_mbps={k.app_key: used[k] for k in group})
        bw = out.get("bandwidth")
        compute = {m: tuple((a.app, float(np.clip(a.rate_mbps, UNIT_STEPS[m][1], UNIT_STEPS[m][2])))
                            for a in out[m].allocations) if m in out else () for m in ("cpu", "memory")}
        reasons = tuple(r for p in out.values() for r in p.reasons)
        return Plan(name, bw.allocations if bw else (), cpu_quotas=compute["cpu"],
                    memory_limits=compute["memory"], reasons=reasons)

