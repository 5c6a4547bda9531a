"""The controller's pure core: switch lifecycle and the messages to send, with explicit time.

The os-ken app calls these methods from its event handlers and sends what they return; nothing
here touches a socket, so the whole lifecycle is unit-tested without a switch. Times are seconds
on any monotonic clock, passed in by the caller.

Lifecycle of a switch: ``probing`` (connected; we asked for its meter features) -> ``installing``
(the reply said whether it has meters; we clear its tables and send every rule, then a barrier)
-> ``ready`` (the barrier reply arrived: every rule before it was processed) -> ``disconnected``.
A reconnecting switch is fully re-programmed: the tables are cleared first, so state from an
earlier controller run never lingers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from topologies import NetworkSpec

from .rules import FlowRule, MeterRule
from .shaping import realize
from .tenancy import CompiledNetwork, compile_network, plan_meters


@dataclass(frozen=True)
class ClearFlows:
    """Delete every flow in every table of the switch."""

    dpid: int


@dataclass(frozen=True)
class AddFlow:
    rule: FlowRule


@dataclass(frozen=True)
class ClearMeters:
    """Delete every meter of the switch."""

    dpid: int


@dataclass(frozen=True)
class AddMeter:
    meter: MeterRule


@dataclass(frozen=True)
class Barrier:
    dpid: int


@dataclass(frozen=True)
class ProbeMeters:
    """Ask the switch for its meter features (the reply says whether it has meters)."""

    dpid: int


@dataclass(frozen=True)
class ReadMeters:
    """Ask the switch for its meter configuration (the reply: meter id -> rate in kbit/s)."""

    dpid: int


@dataclass(frozen=True)
class ModifyMeter:
    """Change a meter's band in place (OFPMC_MODIFY): traffic through it is not interrupted."""

    meter: MeterRule


@dataclass(frozen=True)
class DeleteMeter:
    dpid: int
    meter_id: int


@dataclass(frozen=True)
class ModifyFlow:
    """Replace a flow's instructions in place (OFPFC_MODIFY_STRICT): counters are kept."""

    rule: FlowRule


@dataclass(frozen=True)
class DeleteFlow:
    rule: FlowRule


Message = (ClearFlows | ClearMeters | AddMeter | ModifyMeter | DeleteMeter | AddFlow | ModifyFlow
           | DeleteFlow | Barrier | ProbeMeters | ReadMeters)


Phase = dict[int, list[Message]]


def structure(plan) -> tuple:
    """What of ``plan`` the flow rules depend on: which applications it allocates, with their
    DSCP marks and paths, and its policy additions (not the rates, bursts or name)."""
    if plan is None:
        return ()
    return (tuple((a.tenant, a.app, a.dscp, a.path) for a in plan.allocations),
            plan.extra_policies)


def diff_networks(old: CompiledNetwork, new: CompiledNetwork) -> tuple[list[Phase], dict]:
    """Only the changes from ``old`` to ``new``, in phases; each phase is a set of messages per
    switch, each list ending with a barrier, and a phase is sent only once every barrier of the
    previous one has been answered. The order makes changes safe:

    * meters are added or modified (in place) before any flow uses them;
    * new flows go in by ``stage``: the last hop of a new path first, its first hop last, so a
      path is complete before traffic enters it (make before break); then flows are modified;
    * old flows go by ``stage`` the other way round (the first hop stops sending before the rest
      of the old path disappears); meters are deleted last, when nothing uses them.

    Returns (phases, summary)."""
    summary = {"meters_added": [], "meters_modified": [], "meters_deleted": [], "flows_added": 0,
               "flows_modified": 0, "flows_deleted": 0}
    meter_up: Phase = {}
    adds: dict[int, Phase] = {}
    mods: Phase = {}
    dels: dict[int, Phase] = {}
    meter_down: Phase = {}
    for dpid in sorted(set(old.rules) | set(new.rules) | set(old.meters) | set(new.meters)):
        om = {m.meter_id: m for m in old.meters.get(dpid, ())}
        nm = {m.meter_id: m for m in new.meters.get(dpid, ())}
        same = old.rules.get(dpid) is new.rules.get(dpid)  # one compile's rules (see compile)
        orl = {} if same else {r.key: r for r in old.rules.get(dpid, ())}
        nrl = {} if same else {r.key: r for r in new.rules.get(dpid, ())}
        for mid, m in sorted(nm.items()):
            if mid not in om:
                meter_up.setdefault(dpid, []).append(AddMeter(m))
                summary["meters_added"].append(m.to_json())
            elif om[mid] != m:
                meter_up.setdefault(dpid, []).append(ModifyMeter(m))
                summary["meters_modified"].append({**m.to_json(), "old_rate_kbps": om[mid].rate_kbps})
        for k, r in nrl.items():
            if k not in orl:
                adds.setdefault(r.stage, {}).setdefault(dpid, []).append(AddFlow(r))
                summary["flows_added"] += 1
            elif orl[k] != r:
                mods.setdefault(dpid, []).append(ModifyFlow(r))
                summary["flows_modified"] += 1
        for k, r in orl.items():
            if k not in nrl:
                dels.setdefault(r.stage, {}).setdefault(dpid, []).append(DeleteFlow(r))
                summary["flows_deleted"] += 1
        for mid, m in sorted(om.items()):
            if mid not in nm:
                meter_down.setdefault(dpid, []).append(DeleteMeter(dpid, mid))
                summary["meters_deleted"].append(m.to_json())
    ordered = [meter_up] + [adds[s] for s in sorted(adds)] + [mods] + \
        [dels[s] for s in sorted(dels, reverse=True)] + [meter_down]
    phases = [{d: msgs + [Barrier(d)] for d, msgs in ph.items()} for ph in ordered if ph]
    summary["switches"] = len({d for ph in phases for d in ph})
    summary["phases"] = len(phases)
    return phases, summary


@dataclass
class SwitchState:
    name: str
    dpid: int
    state: str = "disconnected"  # disconnected | probing | installing | ready
    # how per-application rates are enforced: "meters", "tc-htb: <why>", or None before the probe
    enforcement: str | None = None
    connected_at: float | None = None
    ready_at: float | None = None
    programmed: int = 0  # how often the switch was (re)programmed: connects and resyncs
    errors: list[str] = field(default_factory=list)


class ControllerCore:
    """Holds the compiled network and each switch's state. Thread-safe: REST reads snapshots
    while OpenFlow handlers update it."""

    def __init__(self, spec: NetworkSpec, now: float, plan=None, no_meters: frozenset[str] = frozenset()):
        """``no_meters``: switch names that must use the tc HTB fallback whatever they report."""
        unknown = sorted(set(no_meters) - {s.name for s in spec.switches})
        if unknown:
            raise ValueError(f"no_meters: {unknown[0]!r} is not a switch of spec {spec.name}")
        self.spec = spec
        self.plan = plan
        self.started_at = now
        self.forced_meterless = {s.dpid for s in spec.switches if s.name in no_meters}
        self.meterless: set[int] = set(self.forced_meterless)
        self._last_compiled: tuple[tuple, CompiledNetwork] | None = None  # see compile()
        self.compiled: CompiledNetwork = self.compile(plan)
        self.switches = {s.dpid: SwitchState(s.name, s.dpid) for s in spec.switches}
        self.unknown_dpids: set[int] = set()
        self.all_ready_at: float | None = None
        self._lock = threading.Lock()

    def compile(self, plan) -> CompiledNetwork:
        """``plan`` compiled for the switches as they are: meters become tc HTB classes on the
        switches without meter support.

        A plan of the same structure as the one compiled last (the same applications allocated,
        with the same DSCP marks and paths, the same policy additions: :func:`structure`) has
        the same rules; only its meters are computed anew. A planner's plans change rates every
        step and their structure rarely, and compiling every rule of a 12-switch network took
        about 70 ms of the controller's time per apply."""
        key = structure(plan)
        last = self._last_compiled
        if last is not None and last[0] == key:
            c = CompiledNetwork(last[1].rules, last[1].paths,
                                plan_meters(self.spec, plan) if plan is not None else {})
        else:
            c = compile_network(self.spec, plan)
        self._last_compiled = (key, c)
        rules, meters, shapes = realize(c.rules, c.meters, frozenset(self.meterless))
        return CompiledNetwork(rules, c.paths, meters, shapes)

    # ---------------------------------------------------------------- OpenFlow events
    def switch_connected(self, dpid: int, now: float) -> list[Message]:
        """A switch connected: ask for its meter features; it is programmed when they arrive
        (:meth:`meter_features`)."""
        with self._lock:
            sw = self.switches.get(dpid)
            if sw is None:
                self.unknown_dpids.add(dpid)
                return []
            sw.state, sw.connected_at, sw.ready_at = "probing", now, None
            sw.programmed += 1
            sw.errors.clear()
            self.all_ready_at = None
            return [ProbeMeters(dpid)]

    def meter_features(self, dpid: int, supported: bool, now: float) -> list[Message]:
        """The switch's meter features arrived: record how it enforces rates and program it."""
        with self._lock:
            sw = self.switches.get(dpid)
            if sw is None or sw.state != "probing":
                return []
            if dpid in self.forced_meterless:
                sw.enforcement = "tc-htb: named in no_meters"
            elif supported:
                sw.enforcement = "meters"
            else:
                sw.enforcement = "tc-htb: the switch reports no meter support"
            changed = (dpid in self.meterless) != sw.enforcement.startswith("tc-htb")
            if changed:
                if sw.enforcement.startswith("tc-htb"):
                    self.meterless.add(dpid)
                else:
                    self.meterless.discard(dpid)
                self.compiled = self.compile(self.plan)
            return self._program(sw, dpid)

    def _program(self, sw: SwitchState, dpid: int) -> list[Message]:
        sw.state = "installing"
        msgs: list[Message] = [ClearFlows(dpid)]
        if dpid not in self.meterless:
            msgs.append(ClearMeters(dpid))
        msgs += [AddMeter(m) for m in self.compiled.meters.get(dpid, ())]
        msgs += [AddFlow(r) for r in self.compiled.rules.get(dpid, ())]
        msgs.append(Barrier(dpid))
        return msgs

    def barrier_replied(self, dpid: int, now: float) -> bool:
        """True when this reply completed the switch's programming (it became ready now)."""
        with self._lock:
            sw = self.switches.get(dpid)
            if sw is None or sw.state != "installing":
                return False
            sw.state, sw.ready_at = "ready", now
            if all(s.state == "ready" for s in self.switches.values()):
                self.all_ready_at = now
            return True

    def switch_disconnected(self, dpid: int, now: float) -> None:
        with self._lock:
            sw = self.switches.get(dpid)
            if sw is not None:
                sw.state = "disconnected"
                self.all_ready_at = None

    def switch_error(self, dpid: int, description: str, now: float) -> None:
        with self._lock:
            sw = self.switches.get(dpid)
            if sw is not None:
                sw.errors.append(description)

    # ---------------------------------------------------------------- plans
    def prepare_plan(self, plan) -> tuple[CompiledNetwork, list[Phase], dict]:
        """What installing ``plan`` would change (nothing is changed yet)."""
        new = self.compile(plan)
        with self._lock:
            msgs, summary = diff_networks(self.compiled, new)
            old_shapes = {r.key: r for r in self.compiled.shapes}
        new_shapes = {r.key: r for r in new.shapes}
        if old_shapes or new_shapes:
            summary["tc_classes_added"] = [r.to_json() for k, r in new_shapes.items() if k not in old_shapes]
            summary["tc_classes_modified"] = [r.to_json() for k, r in new_shapes.items()
                                              if k in old_shapes and old_shapes[k] != r]
            summary["tc_classes_deleted"] = [r.to_json() for k, r in old_shapes.items()
                                             if k not in new_shapes]
        return new, msgs, summary

    def commit_plan(self, plan, compiled: CompiledNetwork) -> None:
        """Record ``plan`` as installed (after its messages were confirmed)."""
        with self._lock:
            self.plan = plan
            self.compiled = compiled

    def all_ready(self) -> bool:
        with self._lock:
            return all(s.state == "ready" for s in self.switches.values())

    # ---------------------------------------------------------------- views
    def health(self, now: float) -> dict:
        with self._lock:
            sws = {
                s.name: {
                    "dpid": s.dpid,
                    "state": s.state,
                    "flows": len(self.compiled.rules.get(s.dpid, ())),
                    "enforcement": s.enforcement,
                    "programmed": s.programmed,
                    "errors": list(s.errors),
                    "install_s": (round(s.ready_at - s.connected_at, 4)
                                  if s.ready_at is not None and s.connected_at is not None else None),
                }
                for s in self.switches.values()
            }
            ready = all(s.state == "ready" for s in self.switches.values())
            errors = sum(len(s.errors) for s in self.switches.values())
            status = "ok" if ready and not errors else ("degraded" if errors else "starting")
            return {
                "status": status,
                "spec": self.spec.name,
                "uptime_s": round(now - self.started_at, 3),
                "all_ready_after_s": (round(self.all_ready_at - self.started_at, 4)
                                      if self.all_ready_at is not None else None),
                "switches": sws,
                "unknown_dpids": sorted(self.unknown_dpids),
            }

    def rules(self, dpid: int | None = None, tenant: int | None = None) -> list[FlowRule]:
        from .cookies import Cookie
        out = []
        for d, rs in sorted(self.compiled.rules.items()):
            if dpid is not None and d != dpid:
                continue
            for r in rs:
                if tenant is not None and Cookie.decode(r.cookie).tenant != tenant:
                    continue
                out.append(r)
        return out
