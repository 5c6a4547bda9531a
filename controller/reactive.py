"""The reactive baseline: what operators run without forecasts, in the same Plan framework.

Per tenant application: when measured use passes ``raise_at`` of the allocation, the allocation
grows by ``step`` (a fraction of itself, at least ``min_step_mbps``); when use stays below
``lower_at`` of the allocation for ``cooldown_s``, it shrinks by the same step, never below use
nor below ``floor_mbps``. It only ever reacts to what already happened - the comparison the
predictive allocator has to win.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .plan import Allocation, Plan


@dataclass(frozen=True)
class ReactiveSettings:
    raise_at: float = 0.9
    lower_at: float = 0.5
    step: float = 0.25
    min_step_mbps: float = 1.0
    cooldown_s: float = 60.0
    floor_mbps: float = 1.0


@dataclass
class ReactiveState:
    low_since: dict[tuple[str, str], float] = field(default_factory=dict)


def react(usage_mbps: dict[tuple[str, str], float], current: Plan | None, now: float,
          state: ReactiveState, settings: ReactiveSettings = ReactiveSettings(),
          initial_mbps: dict[tuple[str, str], float] | None = None, name: str = "reactive") -> Plan:
    allocs, reasons = [], []
    keys = sorted(set(usage_mbps) | {(a.tenant, a.app) for a in (current.allocations if current else ())})
    for k in keys:
        used = max(0.0, usage_mbps.get(k, 0.0))
        cur_a = current.allocation(*k) if current else None
        cur = cur_a.rate_mbps if cur_a else max((initial_mbps or {}).get(k, 0.0), settings.floor_mbps)
        step = max(cur * settings.step, settings.min_step_mbps)
        new = cur
        if used > settings.raise_at * cur:
            new = max(cur + step, used / settings.raise_at)
            state.low_since.pop(k, None)
            reasons.append(f"{k[0]}/{k[1]}: use {used:.2f} > {settings.raise_at:.0%} of {cur:.2f}; "
                           f"raised to {new:.2f}")
        elif used < settings.lower_at * cur:
            since = state.low_since.setdefault(k, now)
            if now - since >= settings.cooldown_s:
                new = max(cur - step, used, settings.floor_mbps)
                state.low_since[k] = now  # the next step down needs a new cooldown
                reasons.append(f"{k[0]}/{k[1]}: use {used:.2f} low for {now - since:.0f} s; "
                               f"lowered to {new:.2f}")
        else:
            state.low_since.pop(k, None)
        allocs.append(Allocation(k[0], k[1], round(new, 3)))
    return Plan(name, tuple(allocs), reasons=tuple(reasons))
