"""Plan enforcement as a pure state machine: events in, messages and a typed outcome out.

A :class:`Transaction` installs one compiled network over another, in the style of the switch
lifecycle in :mod:`controller.core`: nothing here sends, sleeps, waits or reads a clock. The
driver (:class:`controller.enforcer.PlanEnforcer`) performs the :class:`Step` s it returns and
feeds back what happened:

1. every phase of the diff (:func:`controller.core.diff_networks`) is sent, each switch's part
   ending with a :class:`~controller.core.Barrier`; the driver reports each barrier's xid
   (:meth:`Transaction.barrier_sent`), a message it could not send
   (:meth:`Transaction.not_connected`) and the replies (:meth:`Transaction.barrier_replied`);
   a message of a step the transaction has turned away from is not sent
   (:meth:`Transaction.current`);
2. an OpenFlow error from a switch of the transaction (:meth:`Transaction.error`) fails it: a
   switch answers in order, so an error for a message arrives before the barrier behind it;
3. after the last phase the driver applies the tc classes (``shape``, for switches without
   meters) and reports whether that worked (:meth:`Transaction.shaped`);
4. every switch with meters is asked for its meter configuration
   (:class:`~controller.core.ReadMeters`); the replies (:meth:`Transaction.meters_read`) must
   equal the compiled meters' rates;
5. a deadline (``timeout_s`` after each step began, checked on :meth:`Transaction.tick`) fails
   a step that got no answer.

A failure before the end turns the transaction around: the reverse diff is sent and confirmed
the same way, and the outcome is ``ROLLED_BACK`` (or ``ROLLBACK_FAILED`` when that failed too).
:class:`RegressionWatch` is the after-apply check, pure as well: it says when it is due and,
given the delivered rates before and after, which applications got worse.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .core import Barrier, Message, ReadMeters, diff_networks


class Outcome(enum.Enum):
    APPLIED = "applied"
    UNCHANGED = "unchanged"
    DRY_RUN = "dry run"
    ROLLED_BACK = "rolled back"  # the plan failed and the previous one is installed again
    ROLLBACK_FAILED = "rollback failed"  # the plan failed and restoring the previous one did too


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str | None = None  # why it was rolled back (and why the rollback failed)

    @property
    def in_force(self) -> bool:
        """Whether the plan asked for is the one installed now."""
        return self.outcome in (Outcome.APPLIED, Outcome.UNCHANGED)

    def text(self) -> str:
        """One line for the audit log and the REST answer: ``rolled back: <reason>``."""
        return self.outcome.value + (f": {self.reason}" if self.reason else "")


# ---------------------------------------------------------------------- steps (out)
@dataclass(frozen=True)
class Send:
    dpid: int
    message: Message
    gen: int = 0  # the step of the transaction it belongs to (see Transaction.current)


@dataclass(frozen=True)
class Shape:
    """Apply the tc classes of ``compiled`` (switches without meters); report with ``shaped``."""

    compiled: object


@dataclass(frozen=True)
class Done:
    result: Result


Step = Send | Shape | Done


@dataclass
class _Leg:
    """One direction of a transaction: the phases to send, then shaping and meter read-back of
    the compiled network it ends at."""

    phases: list[dict[int, list[Message]]]
    target: object  # the CompiledNetwork this leg installs
    phase: int = 0


@dataclass
class Transaction:
    """Install ``new`` over ``old`` on ``dpids`` (the switches; ``meterless`` have no meters)."""

    old: object
    new: object
    dpids: frozenset[int]
    meterless: frozenset[int] = frozenset()
    timeout_s: float = 5.0
    # set: this transaction is itself an undo, for this reason (its outcome is ROLLED_BACK)
    undo_for: str | None = None
    _leg: _Leg | None = None
    _why: str | None = None  # why the forward leg failed (set once turned around)
    _stage: str = "idle"  # phase | shape | meters | done
    _barriers: dict[int, int | None] = field(default_factory=dict)  # dpid -> xid (None: not sent yet)
    _meters: dict[int, dict[int, int]] = field(default_factory=dict)
    _deadline: float = 0.0
    _result: Result | None = None
    _gen: int = 0  # bumped at every phase and read-back, so stale sends and replies are known
    _summary: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ events
    def start(self, now: float) -> list[Step]:
        self._why = self.undo_for
        phases, self._summary = diff_networks(self.old, self.new)
        self._leg = _Leg(phases, self.new)
        return self._begin_phase(now)

    @property
    def summary(self) -> dict:
        """The diff summary of what the transaction installs (after :meth:`start`)."""
        return self._summary

    def current(self, step: Send) -> bool:
        """Whether ``step`` belongs to what the transaction does now (not to a phase it left)."""
        return step.gen == self._gen and self._stage in ("phase", "meters")

    def barrier_sent(self, step: Send, xid: int | None, now: float) -> list[Step]:
        """The driver sent this transaction's barrier (``xid`` None: the switch is not
        connected)."""
        if not self.current(step) or step.dpid not in self._barriers:
            return []
        if xid is None:
            return self._fail(f"switch {step.dpid:#x} is not connected", now)
        self._barriers[step.dpid] = xid
        return []

    def not_connected(self, step: Send, now: float) -> list[Step]:
        """The driver could not send ``step``: its switch is not connected."""
        if not self.current(step):
            return []
        return self._fail(f"switch {step.dpid:#x} is not connected", now)

    def barrier_replied(self, xid: int, now: float) -> list[Step]:
        if self._stage != "phase":
            return []
        for dpid, x in self._barriers.items():
            if x == xid:
                del self._barriers[dpid]
                break
        else:
            return []  # someone else's barrier
        if self._barriers:
            return []
        self._leg.phase += 1
        return self._begin_phase(now)

    def error(self, dpid: int, text: str, now: float) -> list[Step]:
        if self._stage in ("idle", "done") or dpid not in self.dpids:
            return []
        return self._fail(f"switch {dpid:#x}: {text}", now)

    def shaped(self, why: str | None, now: float) -> list[Step]:
        if self._stage != "shape":
            return []
        if why is not None:
            return self._fail(why, now)
        return self._read_meters(now)

    def meters_read(self, dpid: int, rates_kbps: dict[int, int], now: float) -> list[Step]:
        if self._stage != "meters" or dpid not in self._expected_meters():
            return []
        self._meters[dpid] = dict(rates_kbps)
        if set(self._meters) < self._expected_meters():
            return []
        want = self._want_meters()
        for d in sorted(self._expected_meters()):
            if self._meters[d] != want.get(d, {}):
                return self._fail(f"switch {d:#x}: meters read back {self._meters[d]}, "
                                  f"expected {want.get(d, {})}", now)
        return self._finish()

    def tick(self, now: float) -> list[Step]:
        if self._stage in ("phase", "meters") and now >= self._deadline:
            if self._stage == "phase":
                late = sorted(self._barriers)
                return self._fail(f"switch {late[0]:#x} did not confirm within {self.timeout_s} s", now)
            return self._fail("meter read-back timed out", now)
        return []

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> Result | None:
        return self._result

    def waiting_for(self) -> str:
        """What the transaction waits for now, for logs."""
        if self._stage == "phase":
            return f"barriers from {sorted(self._barriers)}"
        return self._stage

    # ------------------------------------------------------------------ internals
    def _begin_phase(self, now: float) -> list[Step]:
        leg = self._leg
        while leg.phase < len(leg.phases) and not any(leg.phases[leg.phase].values()):
            leg.phase += 1
        if leg.phase >= len(leg.phases):
            self._stage = "shape"
            return [Shape(leg.target)]
        self._stage = "phase"
        self._gen += 1
        self._deadline = now + self.timeout_s
        steps: list[Step] = []
        self._barriers = {}
        for dpid, msgs in leg.phases[leg.phase].items():
            for m in msgs:
                if isinstance(m, Barrier):
                    self._barriers[dpid] = None
                steps.append(Send(dpid, m, self._gen))
        return steps

    def _expected_meters(self) -> frozenset[int]:
        return self.dpids - self.meterless

    def _want_meters(self) -> dict[int, dict[int, int]]:
        return {d: {m.meter_id: m.rate_kbps for m in ms}
                for d, ms in self._leg.target.meters.items() if ms}

    def _read_meters(self, now: float) -> list[Step]:
        self._stage = "meters"
        self._gen += 1
        self._deadline = now + self.timeout_s
        self._meters = {}
        if not self._expected_meters():
            return self._finish()
        return [Send(d, ReadMeters(d), self._gen) for d in sorted(self._expected_meters())]

    def _finish(self) -> list[Step]:
        self._stage = "done"
        if self._why is None:
            self._result = Result(Outcome.APPLIED)
        else:
            self._result = Result(Outcome.ROLLED_BACK, self._why)
        return [Done(self._result)]

    def _fail(self, why: str, now: float) -> list[Step]:
        if self._why is not None:  # the rollback itself failed
            self._stage = "done"
            self._result = Result(Outcome.ROLLBACK_FAILED, f"{self._why}; rollback also failed: {why}")
            return [Done(self._result)]
        self._why = why
        back, _ = diff_networks(self.new, self.old)
        self._leg = _Leg(back, self.old)
        return self._begin_phase(now)


def rollback(current: object, previous: object, dpids: frozenset[int], meterless: frozenset[int],
             why: str, timeout_s: float = 5.0) -> Transaction:
    """A transaction that goes straight back from ``current`` to ``previous`` (the regression
    watch's undo): its outcome is ``ROLLED_BACK`` with ``why``, or ``ROLLBACK_FAILED``."""
    return Transaction(current, previous, dpids, meterless, timeout_s, undo_for=why)


# ---------------------------------------------------------------------- regression watch
@dataclass(frozen=True)
class RegressionWatch:
    """After an apply at ``t_apply`` (wall-clock seconds): compare each guaranteed application's
    delivered rate over ``watch_s`` before it with ``watch_s`` after ``settle_s`` of settling;
    the check is due once the store can hold the after window (``flush_s`` later)."""

    plan_name: str
    keys: tuple[tuple[str, str], ...]  # (tenant, app)
    t_apply: float
    watch_s: float
    settle_s: float = 1.0
    flush_s: float = 2.0
    tolerance: float = 0.05  # a drop by more than this fraction is a regression

    @property
    def before(self) -> tuple[float, float]:
        return self.t_apply - self.watch_s, self.t_apply

    @property
    def after(self) -> tuple[float, float]:
        start = self.t_apply + self.settle_s
        return start, start + self.watch_s

    def due(self, now: float) -> bool:
        return now >= self.after[1] + self.flush_s

    def regressions(self, delivered: dict[tuple[str, str], tuple[float | None, float | None]]) -> list[str]:
        """The applications whose delivered rate (bit/s, before and after) fell by more than
        ``tolerance``; an application without a measurement either side is not judged."""
        worse = []
        for key in self.keys:
            before, after = delivered.get(key, (None, None))
            if before and after is not None and after < (1 - self.tolerance) * before:
                worse.append(f"{key[0]}/{key[1]} delivered {after / 1e6:.2f} Mbit/s after the "
                             f"apply, {before / 1e6:.2f} before")
        return worse
