"""Plan enforcement's driver: performs what :mod:`controller.enforcement` decides.

``PlanEnforcer.apply`` is called from a REST thread. It prepares the plan (what would change,
:meth:`controller.core.ControllerCore.prepare_plan`), starts a
:class:`~controller.enforcement.Transaction` and performs its steps: messages go out through
``send``, tc classes through ``shape``. The os-ken shim reports barrier replies, OpenFlow errors
and meter configuration replies (:meth:`barrier`, :meth:`error`, :meth:`meters_read`); they are
fed to the transaction under a lock and the steps they produce are queued for the applying
thread, so the OpenFlow thread never blocks and never sends. The applying thread wakes at least
every ``TICK_S`` to tell the transaction the time, which is how a switch that never answers
fails the step after ``timeout_s``. Only an ``applied`` outcome records the plan as installed;
every apply, dry run and rollback is written to the audit log (who, when, the diff, the outcome).

The regression watch (``watch_s`` > 0) is a :class:`~controller.enforcement.RegressionWatch`
checked on :meth:`tick`, which the controller's poll thread calls every cycle: once due, it reads
each guaranteed application's delivered rate before and after from the store and, if one fell,
runs a rollback transaction to the previous plan.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from .core import Barrier, ControllerCore, Message
from .enforcement import (
    Done,
    Outcome,
    RegressionWatch,
    Result,
    Send,
    Shape,
    Step,
    Transaction,
    rollback,
)
from .tenancy import app_number, meter_id, tenant_number

LOG = logging.getLogger("netshadow.enforcer")


class ApplyError(RuntimeError):
    """A plan cannot be applied now (HTTP ``status``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PlanEnforcer:
    TICK_S = 0.05  # how often a waiting apply tells its transaction the time
    EARLY_MAX = 10_000  # barrier replies remembered before their sender registered them

    def __init__(self, core: ControllerCore, send: Callable[[int, Message], int | None],
                 store=None, wall_clock=time.time, timeout_s: float = 5.0,
                 on_commit: Callable[[object], None] | None = None,
                 shape: Callable[[object], str | None] | None = None,
                 clock=time.monotonic):
        """``send(dpid, message)`` sends one message and returns its xid (None if the switch is
        gone)."""
        self.core = core
        self.send = send
        self.store = store
        self.wall_clock = wall_clock
        self.clock = clock
        self.timeout_s = timeout_s
        self.on_commit = on_commit  # told the compiled network whenever the installed plan changes
        # applies a compiled network's tc classes (switches without meters); why it failed, or None
        self.shape = shape or (lambda compiled: None)
        self.history: list[dict] = []  # used when there is no store
        self._plan_lock = threading.Lock()  # one apply (or watch rollback) at a time
        self._mu = threading.Condition()  # guards the transaction, its queue and the xids below
        self._tx: Transaction | None = None
        self._queue: collections.deque[Step] = collections.deque()
        self._registered: set[int] = set()  # barrier xids the transaction knows
        self._early: set[int] = set()  # replies that beat their registration
        self._watch: tuple | None = None  # (RegressionWatch, plan, previous, old compiled, new)

    # ------------------------------------------------------------------ notifications (shim)
    def _feed(self, fn) -> None:
        with self._mu:
            if self._tx is not None:
                self._queue.extend(fn(self._tx, self.clock()))
                self._mu.notify_all()

    def barrier(self, xid: int) -> None:
        with self._mu:
            if self._tx is None or xid not in self._registered:
                if len(self._early) > self.EARLY_MAX:
                    self._early.clear()
                self._early.add(xid)
                return
        self._feed(lambda tx, now: tx.barrier_replied(xid, now))

    def error(self, dpid: int, text: str) -> None:
        self._feed(lambda tx, now: tx.error(dpid, text, now))

    def meters_read(self, dpid: int, rates_kbps: dict[int, int]) -> None:
        self._feed(lambda tx, now: tx.meters_read(dpid, rates_kbps, now))

    # ------------------------------------------------------------------ running a transaction
    def _run(self, tx: Transaction) -> Result:
        with self._mu:
            self._tx = tx
            self._registered.clear()
            self._queue = collections.deque(tx.start(self.clock()))
        try:
            while True:
                with self._mu:
                    while not self._queue:
                        self._mu.wait(self.TICK_S)
                        if not self._queue:
                            self._queue.extend(tx.tick(self.clock()))
                    step = self._queue.popleft()
                if isinstance(step, Done):
                    return step.result
                if isinstance(step, Shape):
                    why = self.shape(step.compiled)
                    self._feed(lambda t, now, why=why: t.shaped(why, now))
                elif isinstance(step, Send):
                    self._send(tx, step)
        finally:
            with self._mu:
                self._tx = None
                self._queue.clear()
                self._registered.clear()

    def _send(self, tx: Transaction, step: Send) -> None:
        if not tx.current(step):
            return  # a message of a phase the transaction has turned away from
        xid = self.send(step.dpid, step.message)
        if not isinstance(step.message, Barrier):
            if xid is None:
                self._feed(lambda t, now: t.not_connected(step, now))
            return
        with self._mu:
            self._queue.extend(tx.barrier_sent(step, xid, self.clock()))
            if xid is not None:
                self._registered.add(xid)
                if xid in self._early:
                    self._early.discard(xid)
                    self._queue.extend(tx.barrier_replied(xid, self.clock()))

    def _transaction(self, old, new) -> Transaction:
        return Transaction(old, new, frozenset(s.dpid for s in self.core.spec.switches),
                           frozenset(self.core.meterless), self.timeout_s)

    # ------------------------------------------------------------------ apply
    def apply(self, plan, actor: str, dry_run: bool = False, watch_s: float = 0.0) -> dict:
        """Apply ``plan``; returns ``{"plan", "dry_run", "diff", "outcome", "reason", ...}`` with
        ``outcome`` one of :class:`~controller.enforcement.Outcome`'s values. With ``watch_s``
        > 0 (and a store) the regression watch is armed (see the module docstring)."""
        if not self._plan_lock.acquire(blocking=False):
            raise ApplyError(409, "another plan is being applied")
        try:
            if not dry_run and not self.core.all_ready():
                raise ApplyError(409, "not every switch is connected and programmed")
            previous = self.core.plan
            old_compiled = self.core.compiled
            new, msgs, summary = self.core.prepare_plan(plan)
            if dry_run:
                result = Result(Outcome.DRY_RUN)
            elif not msgs and new.shapes == old_compiled.shapes:
                self._commit(plan, new)
                result = Result(Outcome.UNCHANGED)
            else:
                result = self._run(self._transaction(old_compiled, new))
                if result.outcome is Outcome.APPLIED:
                    self._commit(plan, new)
            out = {"plan": plan.name, "dry_run": dry_run, "diff": summary,
                   "outcome": result.outcome.value, "reason": result.reason}
            if result.outcome in (Outcome.ROLLED_BACK, Outcome.ROLLBACK_FAILED):
                out["restored"] = previous.name if previous else None
            if result.outcome is Outcome.APPLIED and watch_s > 0 and self.store is not None:
                keys = tuple((a.tenant, a.app) for a in plan.allocations)
                self._watch = (RegressionWatch(plan.name, keys, self.wall_clock(), watch_s),
                               plan, previous, old_compiled, new)
                out["watch_s"] = watch_s
            self._record(plan, actor, "dry_run" if dry_run else "apply", summary, result)
            return out
        finally:
            self._plan_lock.release()

    # ------------------------------------------------------------------ regression watch
    def tick(self) -> Result | None:
        """Check a due regression watch (called every poll cycle); the rollback's result if it
        rolled back, else None."""
        armed = self._watch
        if armed is None or not armed[0].due(self.wall_clock()):
            return None
        if not self._plan_lock.acquire(blocking=False):
            return None  # an apply is running: the next tick checks again
        try:
            watch, plan, previous, old_compiled, new = armed
            self._watch = None
            if self.core.plan is not plan:
                LOG.info("regression watch for plan %s: superseded, nothing to check", plan.name)
                return None
            worse = watch.regressions({k: (self._delivered(k, *watch.before),
                                           self._delivered(k, *watch.after)) for k in watch.keys})
            if not worse:
                LOG.info("regression watch for plan %s: no application got worse", plan.name)
                return None
            tx = rollback(new, old_compiled, frozenset(s.dpid for s in self.core.spec.switches),
                          frozenset(self.core.meterless), "regression: " + "; ".join(worse),
                          self.timeout_s)
            result = self._run(tx)
            if result.outcome is Outcome.ROLLED_BACK:
                self._commit(previous, old_compiled)
            self._record(plan, "regression-watch", "rollback", tx.summary, result)
            return result
        finally:
            self._plan_lock.release()

    def _mean(self, name: str, lo: float, hi: float) -> float | None:
        pts = [v for _, v in self.store.query([name], lo, hi)[name] if v is not None]
        return sum(pts) / len(pts) if pts else None

    def _delivered(self, key: tuple[str, str], lo: float, hi: float) -> float | None:
        """Admitted at the ingress switch (counted before any meter) minus what the
        application's meters dropped, bit/s, mean over [lo, hi]."""
        tenant, app = key
        offered = self._mean(f"app/{tenant}/{app}/fwd/bps", lo, hi)
        if offered is None:
            return None
        mid = meter_id(tenant_number(self.core.spec, tenant), app_number(self.core.spec, tenant, app))
        drops = [n for n in self.store.series_names()
                 if n.startswith("meter/") and n.endswith(f"/{mid}/drop_bps")]
        return offered - sum(self._mean(n, lo, hi) or 0.0 for n in drops)

    # ------------------------------------------------------------------ records
    def _commit(self, plan, compiled) -> None:
        self.core.commit_plan(plan, compiled)
        if self.on_commit is not None:
            self.on_commit(compiled)

    def _record(self, plan, actor: str, action: str, detail: dict, result: Result) -> None:
        entry = {"t": self.wall_clock(), "actor": actor, "action": action, "plan": plan.to_dict(),
                 "detail": detail, "outcome": result.text()}
        if self.store is not None:
            self.store.record_audit(entry["t"], actor, action, entry["plan"], detail, entry["outcome"])
        else:
            self.history.insert(0, entry)
            del self.history[1000:]  # bounded without a store

    def audit(self, limit: int = 100) -> list[dict]:
        return self.store.audit(limit) if self.store is not None else self.history[:limit]
