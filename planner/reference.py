"""What reacting would have spent: the predictive planner's spend cap (pure).

Allocating ahead of demand is meant to beat reacting to it. Where a forecaster cannot see the
next step coming (isolated request spikes), holding the violation budget costs more than
reacting does: the margin of :mod:`planner.budget` rises after every spike and stays up. On the
generalisation suite's request-count series the budget was held at about 1.6x the reactive
allocator's reserve. The operator asked for a budget, not for paying more than the simplest
alternative, so by default the planner does not spend more than reacting would have:

* a **reference** runs beside the planner: the reactive allocator
  (:func:`controller.reactive.react`, the planner's reactive settings) fed the same measured
  steps, starting at ``reactive_start`` times the first measurement - exactly what
  ``netshadow replay``'s reactive policy does from the same start;
* one **bank** for all the planner's applications, in Mbit/s x steps: for every measured step,
  what the reference held during it minus what the planner held, summed over the applications.
  The planner saves while its forecasts let it allocate below the reference, and spends the
  savings before a peak - of any application: the reserve that counts is the network's, and an
  application the reactive allocator over-serves pays for one it under-serves;
* the steps the reference itself **violated** (demand above its rate, as the planner counts
  its own): the planner's budget step (:mod:`planner.core`, step 4) lifts an application that
  violated more than both the budget allows and this over the last day to the reference's rate;
* the **cap** for the next step, a ceiling per application: the applications whose requirement
  is above the reference's next rate share the bank in proportion to their excess (none of it
  while the bank is overdrawn); what the bank holds beyond that is shared by all in proportion
  to the reference's rates, and is as far as the allocator's hysteresis may hold an
  application above the reference. Over any run the planner's reserve is therefore at most the
  reference's (the ceilings apply after the allocator's rounding to the kbit/s).

**From the planner's second day.** Savings mean something only once there were days to save
in: a planner that has measured less than a day of steps (``seen_s``) is not capped, so a cold
``netshadow run`` pre-allocates from its first cycle. The replay's predictive policy runs the day
before its window first (:mod:`planner.replay`), so it is capped from its window's first step;
there the reference restarts with the window, from the start the replay's reactive policy uses,
and the bank from zero, so that the window is compared with the window.

A violated step whose requirement the cap cut is counted against the budget but does not move
the margin (the margin could not have prevented it). Where the budget costs more than reacting,
the measured share therefore settles above the budget, at or below what reacting violates; the
planner says so in its reasons. ``PlannerSettings(spend_cap=False)`` (``--no-spend-cap``) holds
the budget whatever it costs.

Bandwidth only: a compute quota is not capped (it is held within what a plan can set).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.plan import Allocation, Plan, exceeds
from controller.reactive import ReactiveSettings, ReactiveState, react
from models.series import SeriesKey

from .budget import DAY_S  # measured seconds before the cap holds


@dataclass
class Reference:
    """The reference's rate for the next step and the bank, per application."""

    rate: dict[SeriesKey, float] = field(default_factory=dict)  # Mbit/s
    bank: float = 0.0  # Mbit/s x steps, all applications together
    state: ReactiveState = field(default_factory=ReactiveState)
    seen_s: float = 0.0  # seconds of measured steps the planner has run through

    @property
    def holds(self) -> bool:
        """Whether the cap holds yet (a day of measured steps)."""
        return self.seen_s >= DAY_S - 1e-6

    def observe(self, k: SeriesKey, used: float, held: float | None, now: float,
                settings: ReactiveSettings, start: float) -> bool:
        """One measured step of ``k``: ``used`` its demand (Mbit/s), ``held`` the planner's rate
        in force during it (None: unknown, the bank is not moved), ``now`` its time (s). Whether
        the reference violated it (False for the step it starts on)."""
        used = max(0.0, float(used))
        if k not in self.rate:
            self.rate[k] = max(used * start, settings.floor_mbps)
            return False
        if held is not None:
            self.bank += self.rate[k] - held
        violated = exceeds(used, self.rate[k])
        current = Plan("reference", (Allocation(k.tenant, k.app, self.rate[k]),))
        self.rate[k] = react({k.app_key: used}, current, now, self.state, settings).allocation(
            k.tenant, k.app).rate_mbps
        return violated

    def cap(self, required: dict[SeriesKey, float]) -> dict[SeriesKey, float]:
        """Per application, the most it may be given next step (Mbit/s); empty before the cap
        holds. The applications whose requirement is above the reference's rate share what the
        bank holds in proportion to their excess (none of it while the bank is overdrawn); what
        is left after them is shared by all in proportion to the reference's rates. So every
        application has a ceiling, and the allocator's hysteresis can hold one above what
        reacting would only as far as the savings pay for it."""
        if not self.holds:
            return {}
        keys = [k for k in required if k in self.rate]
        excess = {k: max(0.0, required[k] - self.rate[k]) for k in keys}
        total, saved = sum(excess.values()), max(self.bank, 0.0)
        share = min(1.0, saved / total) if total > 0 else 0.0
        left = max(0.0, saved - total)
        weight = sum(self.rate[k] for k in keys)
        return {k: self.rate[k] + excess[k] * share + (left * self.rate[k] / weight if weight > 0 else 0.0)
                for k in keys}

    def as_dict(self) -> dict:
        return {"rate": {k.name: v for k, v in self.rate.items()},
                "bank": self.bank, "seen_s": self.seen_s,
                "low_since": [[t, a, s] for (t, a), s in self.state.low_since.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> Reference:
        return cls({SeriesKey.parse(n): float(v) for n, v in d.get("rate", {}).items()},
                   float(d.get("bank", 0.0)),
                   ReactiveState({(str(t), str(a)): float(s) for t, a, s in d.get("low_since", [])}),
                   float(d.get("seen_s", 0.0)))
