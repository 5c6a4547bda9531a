"""Compute in the plan (pure): a host's CPU quota and memory limit from its requirement.

The planner decides compute the way it decides bandwidth (:mod:`planner.core`: the forecast's
allocated quantile over the horizon, the violation budget's margin, the floor), per host instead
of per application: an agent measures a host's cgroup, not the applications inside it. A compute
series is a :class:`models.series.SeriesKey` whose ``app`` is the host's name and whose metric is
``cpu`` (cores: what the host asked for, its use plus the time its quota held it back - an upper
bound, see :mod:`netshadow.agent`) or
``memory`` (MiB in use). What is left to this module is what differs from a meter:

* **the value in force**: a plan's ``cpu_quotas`` (a share of one CPU, the same number as cores)
  and ``memory_limits`` (MiB);
* **sizing**: the requirement times ``1 + headroom``, never below what the host uses now, with
  the allocator's hysteresis (grows at once; shrinks only after the requirement stayed
  ``release_fraction`` lower for ``hold_s``; changes under ``min_change`` are not made), inside
  the bounds a plan accepts (:data:`controller.plan.MIN_CPU_QUOTA` ..
  :data:`controller.plan.MAX_CPU_QUOTA` of one CPU, at least
  :data:`controller.plan.MIN_MEMORY_MIB`).

A CPU step is violated when the host asked for more than :data:`controller.plan.VIOLATION_DROP`
above its quota (it was throttled for it); a memory step when its use came within that fraction of
the limit (the kernel reclaims there, and kills beyond it). The same comparison as a meter's.
"""

from __future__ import annotations

from controller.allocator import AllocatorSettings, AllocatorState, hysteresis
from controller.plan import (
    MAX_CPU_QUOTA,
    MAX_MEMORY_MIB,
    MIN_CPU_QUOTA,
    MIN_MEMORY_MIB,
    Plan,
)
from models.series import SeriesKey

COMPUTE_METRICS = ("cpu", "memory")
BOUNDS = {"cpu": (MIN_CPU_QUOTA, MAX_CPU_QUOTA), "memory": (MIN_MEMORY_MIB, MAX_MEMORY_MIB)}


def is_compute(k: SeriesKey) -> bool:
    return k.metric in COMPUTE_METRICS


def held(plan: Plan | None, k: SeriesKey) -> float | None:
    """What ``plan`` gives ``k``: Mbit/s for a bandwidth key, cores (a share of one CPU) for a
    CPU key, MiB for a memory key; None when it gives nothing."""
    if plan is None:
        return None
    if k.metric == "cpu":
        return plan.cpu_quota(k.app)
    if k.metric == "memory":
        return plan.memory_limit(k.app)
    a = plan.allocation(*k.app_key)
    return a.rate_mbps if a is not None else None


def size(k: SeriesKey, required: float, used: float, current: float | None, now: float,
         state: AllocatorState, settings: AllocatorSettings) -> tuple[float, str]:
    """The quota or limit for ``k`` (in ``k.unit``) and why; ``state`` keeps the hysteresis
    clock per key, as the allocator's does per application."""
    lo, hi = BOUNDS[k.metric]
    want = min(hi, max(required * (1 + settings.headroom), used, lo))
    why = f"{k.tenant}/{k.app} {k.metric}: required {required:.3g} {k.unit}, in use {used:.3g}"
    v, note = hysteresis(k, want, current, now, state, settings, fmt=".3g")
    if note.startswith("; keeps"):
        return v, why + note
    if not note and want >= hi and required * (1 + settings.headroom) > hi:
        note = f"; capped at {hi:g}, the most a plan sets"
    return round(v, 4), why + note
