"""Plan enforcement: send only the changes, confirm them, roll back when anything fails.

``PlanEnforcer.apply`` is called from a REST thread. It diffs the plan against what is installed
(:func:`controller.core.diff_networks`), sends each switch its changes ending with a barrier, waits
for every barrier reply, checks that no OpenFlow error arrived meanwhile, and reads the meters
back (meter config statistics) to compare them with the plan. Only then is the plan recorded as
installed. If any step fails, the reverse diff (new -> previous) is sent and confirmed the same
way, so the switches hold the previous plan's flows and meters again. Every apply, dry run and
rollback is written to the audit log (who, when, the diff, the outcome).

The os-ken specifics (sending, replies) come in through the ``send`` callable and the
``barrier``/``error``/``meter_config`` notifications, so the shim stays thin.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .core import Barrier, ControllerCore, Message, diff_networks
from .tenancy import app_number, meter_id, tenant_number

LOG = logging.getLogger("netshadow.enforcer")


class ApplyError(RuntimeError):
    """A plan cannot be applied now (HTTP ``status``)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class PlanEnforcer:
    def __init__(self, core: ControllerCore, send: Callable[[int, Message], int | None],
                 store=None, wall_clock=time.time, timeout_s: float = 5.0,
                 on_commit: Callable[[object], None] | None = None,
                 shape: Callable[[object], str | None] | None = None):
        """``send(dpid, message)`` sends one message and returns its xid (None if the switch is
        gone)."""
        self.core = core
        self.send = send
        self.store = store
        self.wall_clock = wall_clock
        self.timeout_s = timeout_s
        self.on_commit = on_commit  # told the compiled network whenever the installed plan changes
        # applies a compiled network's tc classes (switches without meters); why it failed, or None
        self.shape = shape or (lambda compiled: None)
        self.history: list[dict] = []  # used when there is no store
        self._lock = threading.Lock()
        self._waiting: dict[int, threading.Event] = {}
        self._early: set[int] = set()  # barrier replies that arrived before their waiter
        self._barrier_lock = threading.Lock()
        self._errors: list[str] = []
        self._meter_replies: dict[int, dict[int, int]] = {}
        self._meter_event = threading.Event()
        self._meter_expected: set[int] = set()

    # ------------------------------------------------------------------ notifications (shim)
    def barrier(self, xid: int) -> None:
        with self._barrier_lock:
            ev = self._waiting.get(xid)
            if ev is None:  # not registered yet: the reply can beat the sender's bookkeeping
                if len(self._early) > 10_000:
                    self._early.clear()
                self._early.add(xid)
                return
        ev.set()

    def error(self, dpid: int, text: str) -> None:
        self._errors.append(f"switch {dpid:#x}: {text}")

    def meter_config(self, dpid: int, rates: dict[int, int]) -> None:
        self._meter_replies[dpid] = rates
        if self._meter_expected <= set(self._meter_replies):
            self._meter_event.set()

    # ------------------------------------------------------------------ apply
    def _send_confirm(self, phases: list[dict[int, list[Message]]]) -> str | None:
        """Send phase after phase, each confirmed by its barriers; returns why it failed, or None."""
        for phase in phases:
            why = self._send_phase(phase)
            if why is not None:
                return why
        return None

    def _send_phase(self, msgs: dict[int, list[Message]]) -> str | None:
        events = []
        for dpid, lst in msgs.items():
            for m in lst:
                xid = self.send(dpid, m)
                if xid is None:
                    return f"switch {dpid:#x} is not connected"
                if isinstance(m, Barrier):
                    ev = threading.Event()
                    with self._barrier_lock:
                        self._waiting[xid] = ev
                        if xid in self._early:
                            self._early.discard(xid)
                            ev.set()
                    events.append((dpid, xid, ev))
        deadline = time.monotonic() + self.timeout_s
        try:
            for dpid, _, ev in events:
                if not ev.wait(max(0.0, deadline - time.monotonic())):
                    return f"switch {dpid:#x} did not confirm within {self.timeout_s} s"
        finally:
            for _, xid, _ in events:
                self._waiting.pop(xid, None)
        time.sleep(0.05)  # an error for the last message arrives just before the barrier reply
        return self._errors[0] if self._errors else None

    def _read_back(self, compiled) -> str | None:
        want = {d: {m.meter_id: m.rate_kbps for m in ms} for d, ms in compiled.meters.items() if ms}
        dpids = {s.dpid for s in self.core.spec.switches} - self.core.meterless
        self._meter_replies = {}
        self._meter_expected = dpids
        self._meter_event.clear()
        for d in dpids:
            if self.send(d, "meter_config") is None:
                return f"switch {d:#x} is not connected"
        if not self._meter_event.wait(self.timeout_s):
            return "meter read-back timed out"
        for d in dpids:
            got = self._meter_replies.get(d, {})
            if got != want.get(d, {}):
                return f"switch {d:#x}: meters read back {got}, expected {want.get(d, {})}"
        return None

    def apply(self, plan, actor: str, dry_run: bool = False, watch_s: float = 0.0) -> dict:
        """Apply ``plan``. With ``watch_s`` > 0 (and a store), the delivered throughput of every
        application the plan guarantees is compared, ``watch_s`` after the apply, with the
        ``watch_s`` before it (delivered = admitted at the ingress switch minus what the
        application's meters dropped); if any fell by more than ``REGRESSION_TOLERANCE``, the previous
        plan is restored automatically and the audit log says why."""
        if not self._lock.acquire(blocking=False):
            raise ApplyError(409, "another plan is being applied")
        try:
            if not dry_run and not self.core.all_ready():
                raise ApplyError(409, "not every switch is connected and programmed")
            previous = self.core.plan
            old_compiled = self.core.compiled
            new, msgs, summary = self.core.prepare_plan(plan)
            result = {"plan": plan.name, "dry_run": dry_run, "diff": summary}
            if dry_run:
                result["outcome"] = "dry run"
            elif not msgs and new.shapes == old_compiled.shapes:
                self._commit(plan, new)
                result["outcome"] = "unchanged"
            else:
                self._errors = []
                why = self._send_confirm(msgs) or self.shape(new) or self._read_back(new)
                if why is None:
                    self._commit(plan, new)
                    result["outcome"] = "applied"
                    if watch_s > 0 and self.store is not None:
                        self._watch(plan, previous, old_compiled, new, watch_s)
                        result["watch_s"] = watch_s
                else:
                    back, _ = diff_networks(new, old_compiled)
                    self._errors = []
                    again = (self._send_confirm(back) or self.shape(old_compiled)
                             or self._read_back(old_compiled))
                    result["outcome"] = f"rolled back: {why}"
                    if again:
                        result["outcome"] += f"; rollback also failed: {again}"
                    result["restored"] = previous.name if previous else None
            self._record(plan, actor, result)
            return result
        finally:
            self._lock.release()

    REGRESSION_TOLERANCE = 0.05
    SETTLE_S = 1.0

    def _watch(self, plan, previous, old_compiled, new, watch_s: float) -> None:
        t_apply = self.wall_clock()
        keys = [(a.tenant, a.app) for a in plan.allocations]
        delay = self.SETTLE_S + watch_s + 2.0  # + the store's flush interval
        timer = threading.Timer(delay, self._check_regression,
                                args=(plan, previous, old_compiled, new, t_apply, watch_s, keys))
        timer.daemon = True
        timer.start()

    def _mean(self, name: str, lo: float, hi: float) -> float | None:
        pts = [v for _, v in self.store.query([name], lo, hi)[name] if v is not None]
        return sum(pts) / len(pts) if pts else None

    def _check_regression(self, plan, previous, old_compiled, new, t_apply, watch_s, keys) -> None:
        with self._lock:
            if self.core.plan is not plan:
                LOG.info("regression watch for plan %s: superseded, nothing to check", plan.name)
                return
            worse = []
            names = self.store.series_names()
            for tenant, app in keys:
                # admitted at ingress (counted before any meter) minus what the app's meters dropped
                mid = meter_id(tenant_number(self.core.spec, tenant), app_number(self.core.spec, tenant, app))
                drops = [n for n in names if n.startswith("meter/") and n.endswith(f"/{mid}/drop_bps")]

                def delivered(lo, hi, tenant=tenant, app=app, drops=drops):
                    offered = self._mean(f"app/{tenant}/{app}/fwd/bps", lo, hi)
                    if offered is None:
                        return None
                    return offered - sum(self._mean(n, lo, hi) or 0.0 for n in drops)

                before = delivered(t_apply - watch_s, t_apply)
                after = delivered(t_apply + self.SETTLE_S, t_apply + self.SETTLE_S + watch_s)
                LOG.info("regression watch for plan %s: %s/%s %s bit/s before, %s after", plan.name,
                         tenant, app, before, after)
                if before and after is not None and after < (1 - self.REGRESSION_TOLERANCE) * before:
                    worse.append(f"{tenant}/{app} delivered {after / 1e6:.2f} Mbit/s after the apply, "
                                 f"{before / 1e6:.2f} before")
            if not worse:
                return
            back, summary = diff_networks(new, old_compiled)
            self._errors = []
            failed = self._send_confirm(back) or self.shape(old_compiled) or self._read_back(old_compiled)
            if failed is None:
                self._commit(previous, old_compiled)
            outcome = f"rolled back: regression: {'; '.join(worse)}"
            if failed:
                outcome += f"; rollback failed: {failed}"
            self._record(plan, "regression-watch",
                         {"dry_run": False, "diff": summary, "outcome": outcome}, action="rollback")

    def _commit(self, plan, compiled) -> None:
        self.core.commit_plan(plan, compiled)
        if self.on_commit is not None:
            self.on_commit(compiled)

    def _record(self, plan, actor: str, result: dict, action: str | None = None) -> None:
        entry = {"t": self.wall_clock(), "actor": actor,
                 "action": action or ("dry_run" if result["dry_run"] else "apply"),
                 "plan": plan.to_dict(),
                 "detail": result["diff"], "outcome": result["outcome"]}
        if self.store is not None:
            self.store.record_audit(entry["t"], actor, entry["action"], entry["plan"], entry["detail"],
                                    entry["outcome"])
        else:
            self.history.insert(0, entry)
            del self.history[1000:]  # bounded without a store

    def audit(self, limit: int = 100) -> list[dict]:
        return self.store.audit(limit) if self.store is not None else self.history[:limit]
