"""``netshadow replay``: drive the lab with a demand trace under each allocation policy and
compare them (see :mod:`emulation.replay` for how a run is measured)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from controller.plan import MAX_CPU_QUOTA, MIN_CPU_QUOTA
from controller.reactive import ReactiveSettings
from emulation.policies import POLICIES, Capped, OraclePolicy, ReactivePolicy, StaticPolicy
from emulation.trace import (
    ReplayError,
    ReplayMap,
    compute_demand,
    demand,
    load_mapping,
    parse_compress,
)
from planner.core import PlannerError, PlannerSettings
from planner.forecasters import ForecasterChoice
from planner.replay import PredictivePolicy, noise, shift_peaks
from topologies import NetworkSpec


@dataclass
class ReplaySetup:
    spec: NetworkSpec
    mapping: ReplayMap
    start: pd.Timestamp  # of the history
    step_trace_s: float
    step_wall_s: float
    history: np.ndarray  # (H, N) lab Mbit/s before the replayed window
    demand: np.ndarray  # (T, N) lab Mbit/s, the replayed window
    times: pd.DatetimeIndex  # of the replayed steps
    repairs: object = None  # models.series.LoadReport: what loading the trace had to repair
    compute_history: np.ndarray | None = None  # (H, M) cores the mapped hosts asked for before
    compute_demand: np.ndarray | None = None  # (T, M) cores, the replayed window

    @property
    def before(self) -> np.ndarray:
        """(N,) Mbit/s of the step before the window (its first step's, without history)."""
        return self.history[-1] if len(self.history) else self.demand[0]


def prepare(spec: NetworkSpec, trace: str, mapping_path: str, compress: str, start: str | None,
            days: float) -> ReplaySetup:
    from models.series import SeriesError, load_wide_csv

    try:
        series, repairs = load_wide_csv(trace)
    except (SeriesError, OSError) as e:
        msg = str(e)
        raise ReplayError(f"trace: {msg if str(trace) in msg else f'{trace}: {msg}'}") from None
    mapping = load_mapping(mapping_path, spec, list(series.names))
    trace_step, wall = parse_compress(compress)
    if abs(trace_step - series.step_s) > 1e-6 * series.step_s:
        raise ReplayError(f"compress: STEP must be the trace's step, {series.step_s:g} s (got {compress!r})")
    if not (isinstance(days, (int, float)) and 0 < days <= 366):
        raise ReplayError(f"days: must be > 0 and at most 366 (got {days!r})")
    try:
        d = demand(series.values, mapping, series.names, series.times())
        c = compute_demand(series.values, mapping, series.names, series.times())
    except ReplayError as e:
        raise ReplayError(f"trace: {trace}: {e}") from None
    n = int(round(days * 86400 / series.step_s))
    if start is None:
        lo = series.rows - n
    else:
        try:
            lo = series.index_of(start)
        except (SeriesError, ValueError) as e:
            msg = str(e).replace("test_start", "start")
            if not isinstance(e, SeriesError):
                msg = f"start: not a time (ISO 8601, e.g. 2026-01-12T00:00): {start[:60]!r}"
            raise ReplayError(msg) from None
    if lo < 2 or lo + n > series.rows:
        raise ReplayError(f"days: {days:g} days from {series.time(max(lo, 0))} do not fit the trace {trace} "
                          f"({series.time(0)} to {series.time(series.rows - 1)}) with history before them")
    return ReplaySetup(spec, mapping, series.start, series.step_s, wall, d[:lo], d[lo:lo + n],
                       pd.date_range(series.time(lo), periods=n, freq=pd.Timedelta(seconds=series.step_s)),
                       repairs, c[:lo], c[lo:lo + n])


def describe_repairs(r) -> str:
    """What :func:`models.series.load_wide_csv` changed in the trace, in words ('' for nothing)."""
    parts = [f"{n} {what}" for n, what in (
        (r.duplicates_dropped, "rows with a duplicated time dropped (the first kept)"),
        (r.snapped_to_grid, "times moved to the nearest step"),
        (r.missing_steps, "missing steps"),
        (r.gaps_filled, "gap cells filled by interpolation"),
        (r.gap_cells_left, "gap cells left (carried forward during the replay)"),
        (getattr(r, "reordered", 0), "rows out of time order (sorted)")) if n]
    return "; ".join(parts)


def forecaster_choice(kind: str, quantile: float = 0.9, epochs: int = 20,
                      seed: int = 0) -> ForecasterChoice:
    """What the predictive policy's model must serve: ``quantile`` one step ahead (each step's
    plan is applied just before the step)."""
    try:
        return ForecasterChoice(kind, quantile=quantile, horizon=1, epochs=epochs, seed=seed)
    except PlannerError as e:
        raise ReplayError(str(e)) from None


def make_forecaster(setup: ReplaySetup, kind: str, console: Console, epochs: int = 20, seed: int = 0,
                    quantile: float = 0.9, metric: str = "bandwidth"):
    """The profiler model for the predictive policy (:func:`planner.forecasters.fit`, the factory
    ``netshadow run`` uses too), trained on the history before the window: of the mapped flows'
    bandwidth, or with ``metric="cpu"`` of the mapped hosts' CPU."""
    from models.series import SeriesKey, SeriesSet
    from planner.forecasters import fit

    choice = forecaster_choice(kind, quantile, epochs, seed)
    if metric == "cpu":
        names = tuple(SeriesKey(c.tenant, c.host, "cpu").name for c in setup.mapping.compute)
        history = setup.compute_history
    else:
        names = tuple(SeriesKey(f.tenant, f.app).name for f in setup.mapping.flows)
        history = setup.history
    hist = SeriesSet(setup.start, setup.step_trace_s, names, history)
    t0 = time.monotonic()
    m, note = fit(choice, hist)
    console.print(f"profiler: {note} fitted on {history.shape[0]} steps of {metric} history in "
                  f"{time.monotonic() - t0:.1f} s")
    return m


def parse_corrupt(corrupt: str | None):
    """``shift[:STEPS]`` (STEPS >= 1, default 2) or ``noise[:SIGMA]`` (0 < SIGMA <= 10, default
    0.3) as the damage function for the predictive policy's forecasts; None for none."""
    if not corrupt:
        return None
    kind, _, amount = corrupt.partition(":")
    try:
        if kind == "shift":
            steps = int(amount or 2)
            if not 1 <= steps <= 1000:
                raise ValueError
            return shift_peaks(steps)
        if kind == "noise":
            sigma = float(amount or 0.3)
            if not 0 < sigma <= 10:
                raise ValueError
            return noise(sigma)
    except ValueError:
        pass
    raise ReplayError(f"corrupt: must be shift[:STEPS] with STEPS 1-1000 or noise[:SIGMA] with "
                      f"SIGMA in (0, 10] (got {corrupt[:60]!r})")


def default_reactive_settings(setup: ReplaySetup, **changes) -> ReactiveSettings:
    """The replay's threshold allocator: the planner's reactive reference (raise at 90 % use,
    lower after two steps under 50 %), in the trace's seconds."""
    return replace(PlannerSettings().reactive_for(setup.step_trace_s), **changes)


def make_policy(name: str, setup: ReplaySetup, forecaster=None, corrupt: str | None = None,
                headroom: float | None = None, quantile: float = 0.9,
                reactive_settings: ReactiveSettings | None = None,
                settings: PlannerSettings | None = None, budget: float = 0.01,
                warmup: int | None = None, spend_cap: bool = True):
    """``quantile``: the forecast quantile the predictive policy allocates (the forecaster must
    serve it); ``budget``: its violation budget (a share of steps); ``spend_cap``: whether it
    spends at most what reacting would (:mod:`planner.reference`); ``warmup``: history steps the
    predictive policy runs over before the window (default: a day, see
    :mod:`planner.replay`); ``settings``: the planner's
    (default: ``netshadow run``'s defaults at that quantile and budget); ``headroom``: the
    static and oracle policies' margin (default the planner's);
    ``reactive_settings``: the threshold allocator's (default: the planner's reactive reference)."""
    keys = [f.key for f in setup.mapping.flows]
    try:
        settings = settings or PlannerSettings(quantile=quantile, budget=budget, spend_cap=spend_cap)
    except PlannerError as e:
        raise ReplayError(str(e)) from None
    headroom = settings.headroom if headroom is None else headroom
    initial = setup.before
    reactive_settings = reactive_settings or default_reactive_settings(setup)

    def reactive():
        return ReactivePolicy(keys, initial * settings.reactive_start, reactive_settings)
    if name == "static":
        return StaticPolicy(keys, setup.demand, headroom)
    if name == "oracle":
        return OraclePolicy(keys, setup.demand, headroom)
    if name == "reactive":
        return reactive()
    if name == "predictive":
        choice = forecaster_choice(getattr(forecaster, "name", "lstm"), settings.quantile)
        return PredictivePolicy(keys, setup.spec, forecaster, choice, setup.history, setup.start,
                                setup.step_trace_s, settings, corrupt=parse_corrupt(corrupt),
                                warmup=a_day(setup) if warmup is None else warmup)
    raise ReplayError(f"policy: must be one of {', '.join(POLICIES)} (got {name!r})")


def compute_reactive_settings(setup: ReplaySetup) -> ReactiveSettings:
    """The threshold allocator on CPU: the bandwidth reference's thresholds and cooldown, with
    steps and a floor in cores (0.02 and the smallest quota a plan sets) instead of Mbit/s."""
    return default_reactive_settings(setup, min_step_mbps=0.02, floor_mbps=MIN_CPU_QUOTA)


def a_day(setup: ReplaySetup) -> int:
    """Trace steps in a day (at least one)."""
    return max(1, int(round(86400 / setup.step_trace_s)))


def make_compute_policy(name: str, setup: ReplaySetup, forecaster=None, quantile: float = 0.9,
                        budget: float = 0.01):
    """A policy over the mapped hosts' CPU (cores), held to the quotas a plan can set: the
    same four policies, the predictive one the planner's compute decision."""
    keys = [c.key for c in setup.mapping.compute]
    try:
        settings = PlannerSettings(quantile=quantile, budget=budget)
    except PlannerError as e:
        raise ReplayError(str(e)) from None
    before = setup.compute_history[-1] if len(setup.compute_history) else setup.compute_demand[0]
    if name == "static":
        inner = StaticPolicy(keys, setup.compute_demand, settings.headroom)
    elif name == "oracle":
        inner = OraclePolicy(keys, setup.compute_demand, settings.headroom)
    elif name == "reactive":
        inner = ReactivePolicy(keys, before * settings.reactive_start, compute_reactive_settings(setup))
    elif name == "predictive":
        choice = forecaster_choice(getattr(forecaster, "name", "lstm"), settings.quantile)
        inner = PredictivePolicy(keys, setup.spec, forecaster, choice, setup.compute_history,
                                 setup.start, setup.step_trace_s, settings, metric="cpu",
                                 warmup=a_day(setup))
    else:
        raise ReplayError(f"policy: must be one of {', '.join(POLICIES)} (got {name!r})")
    return Capped(inner, MIN_CPU_QUOTA, MAX_CPU_QUOTA)


def run_all(setup: ReplaySetup, policies: list[str], lab, url: str, token: str, console: Console,
            forecaster=None, corrupt: str | None = None, quantile: float = 0.9,
            budget: float = 0.01, spend_cap: bool = True) -> dict:
    from rich.progress import Progress

    from emulation.replay import replay
    from emulation.replay_measures import LATE_FRACTION

    results = {}
    T = setup.demand.shape[0]
    for name in policies:
        policy = make_policy(name, setup, forecaster, corrupt, quantile=quantile, budget=budget,
                             spend_cap=spend_cap)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{name}: {T} steps x {setup.step_wall_s:g} s", total=T)
            results[name] = replay(lab, setup.spec, url, token, setup.mapping, setup.demand, policy,
                                   setup.step_trace_s, setup.step_wall_s,
                                   progress=lambda t, task=task: bar.update(task, completed=t))
        from emulation.replay_measures import summarise

        s = summarise(results[name])
        console.print(f"{name}: {s['violation_s']:.0f} violation-s, {s['reserved_mbit']:.0f} Mbit/s*s "
                      f"reserved, {s['peaks_preallocated']}/{s['peaks']} peaks pre-allocated")
        if s["late_steps"] > 0.05 * T:
            console.print(f"[yellow]warning: {name}: {s['late_steps']} of {T} steps' rates were "
                          f"confirmed more than {LATE_FRACTION:.0%} of a step late (applies took up "
                          f"to {max(results[name].apply_s) * 1000:.0f} ms); a slower --compress "
                          f"measures more faithfully")
    return results


def run_compute(setup: ReplaySetup, policies: list[str], lab, console: Console, forecaster=None,
                quantile: float = 0.9, budget: float = 0.01) -> dict:
    """Every policy's compute replay on the lab (:mod:`emulation.replay_compute`)."""
    from rich.progress import Progress

    from emulation.replay_compute import replay_compute
    from emulation.replay_measures import summarise

    out = {}
    T = setup.compute_demand.shape[0]
    for name in policies:
        policy = make_compute_policy(name, setup, forecaster, quantile, budget)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{name} (CPU): {T} steps x {setup.step_wall_s:g} s", total=T)
            out[name] = replay_compute(lab, setup.mapping, setup.compute_demand, policy,
                                       setup.step_trace_s, setup.step_wall_s,
                                       progress=lambda t, task=task: bar.update(task, completed=t))
        s = summarise(out[name])
        console.print(f"{name} (CPU): {s['violation_s']:.0f} violation-s, {s['reserved_mbit']:.1f} "
                      f"CPU-s reserved, {s['peaks_preallocated']}/{s['peaks']} peaks pre-allocated")
        busy = [n for n in out[name].notes.values() if n.startswith("machine busy")]
        if busy:
            console.print(f"[yellow]warning: {name} (CPU): in {len(busy)} of {T} steps a load got "
                          "less CPU than it asked for without being throttled (the machine was busy)")
    return out


def report(results: dict, setup: ReplaySetup, console: Console, json_out: str | None,
           report_dir: str | None, title: str, meta: dict, compute: dict | None = None) -> dict:
    """The tables (bandwidth, then compute beside it when the mapping drives hosts' CPU), the
    ratios, the JSON and the HTML report."""
    from emulation.replay_measures import compare, summarise
    from emulation.replay_report import compute_table, table, to_json, write_report

    for kind, res in (("bandwidth", results), ("compute", compute or {})):
        if not res or not next(iter(res.values())).keys:
            continue
        summaries = {k: summarise(r) for k, r in res.items()}
        console.print(table(summaries, title) if kind == "bandwidth"
                      else compute_table(summaries, title + ": CPU"))
        ratios = compare(summaries)
        if ratios:
            console.print(f"{kind}: " + ", ".join(f"{k} = {v:.3f}" for k, v in ratios.items()
                                                  if v is not None))
    doc = to_json(results, meta)
    if compute:
        doc["compute"] = to_json(compute, meta)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(doc, indent=1))
        console.print(f"JSON: {json_out}")
    if report_dir and setup.mapping.flows:
        page = write_report(results, report_dir, title, setup.times, meta)
        console.print(f"report: {page.resolve()}")
    return doc


class LabSession:
    """A controller process (with an API token) and a lab for one spec; stopped on exit."""

    def __init__(self, spec_path: str, prefix: str, workdir: Path, console: Console):
        self.spec_path, self.prefix, self.workdir, self.console = spec_path, prefix, Path(workdir), console
        self.ctl = self.lab = None

    def __enter__(self):
        import secrets

        from emulation.controller_proc import ControllerProcess, free_port
        from emulation.lab import Lab
        from topologies import load_spec

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.token = secrets.token_hex(16)
        tf = self.workdir / "api-token"
        tf.write_text(self.token)
        tf.chmod(0o600)
        self.spec = load_spec(self.spec_path)
        of_port, rest_port = free_port(), free_port()
        self.ctl = ControllerProcess(self.spec_path, of_port, rest_port,
                                     log_path=self.workdir / "controller.log",
                                     extra_args=["--token-file", str(tf)])
        try:
            self.ctl.start()
            self.lab = Lab(self.spec, prefix=self.prefix, controller_port=of_port)
            self.lab.start()
            health = self.ctl.wait_ready()
            self.console.print(f"lab [bold]{self.spec.name}[/] up ({len(self.spec.switches)} switches, "
                               f"{len(self.spec.hosts)} hosts), all switches programmed "
                               f"{health['all_ready_after_s']:.2f} s after controller start")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            if self.lab is not None:
                self.lab.stop()
        finally:
            if self.ctl is not None:
                self.ctl.stop()
            (self.workdir / "api-token").unlink(missing_ok=True)
        return False


@dataclass(frozen=True)
class ReplaySettings:
    """One ``netshadow replay`` run, checked once: a bad value raises :class:`ReplayError`
    naming the field (the trace, the mapping and the window are checked by :func:`prepare`)."""

    spec_path: str
    trace: str
    mapping: str
    compress: str
    policies: tuple[str, ...]
    start: str | None = None
    days: float = 1.0
    forecaster: str = "lstm"
    corrupt: str | None = None
    prefix: str = "nsr"
    workdir: Path = Path("out/replay")
    json_out: str | None = None
    report_dir: str | None = None
    title: str = "netshadow replay"
    description: str = ""
    quantile: float = 0.9
    ideal: bool = False
    budget: float = 0.01
    spend_cap: bool = True

    def __post_init__(self):
        unknown = [p for p in self.policies if p not in POLICIES]
        if unknown or not self.policies:
            raise ReplayError(f"policy: must be one of {', '.join(POLICIES)} "
                              f"(got {unknown[0] if unknown else 'none'!r})")
        parse_corrupt(self.corrupt)
        if "predictive" in self.policies:
            forecaster_choice(self.forecaster, self.quantile)  # refused now, not after training
        try:
            PlannerSettings(quantile=self.quantile, budget=self.budget, spend_cap=self.spend_cap)
        except PlannerError as e:
            raise ReplayError(str(e)) from None


def run_replay(rs: ReplaySettings, console: Console | None = None) -> dict:
    """Replay in the lab, or with ``ideal`` without it (:mod:`emulation.replay_ideal`)."""
    from topologies import load_spec

    console = console or Console(width=max(110, Console().width))
    policies = list(rs.policies)
    setup = prepare(load_spec(rs.spec_path), rs.trace, rs.mapping, rs.compress, rs.start, rs.days)
    if setup.repairs is not None and describe_repairs(setup.repairs):
        console.print(f"trace {rs.trace}: repaired while loading: {describe_repairs(setup.repairs)}")
    console.print(f"trace {rs.trace}: replaying {setup.demand.shape[0]} steps of {setup.step_trace_s:g} s "
                  f"({setup.times[0]} to {setup.times[-1]}) "
                  f"{'idealised' if rs.ideal else f'at {setup.step_wall_s:g} s per step'}, "
                  f"{len(setup.mapping.flows)} applications, policies {', '.join(policies)}")
    predictive = "predictive" in policies
    model = (make_forecaster(setup, rs.forecaster, console, quantile=rs.quantile)
             if predictive and setup.mapping.flows else None)
    title = rs.title
    compute = None
    cmodel = (make_forecaster(setup, rs.forecaster, console, quantile=rs.quantile, metric="cpu")
              if predictive and setup.mapping.compute else None)
    if setup.mapping.compute and rs.ideal:
        from emulation.replay_ideal import simulate

        compute = {name: simulate(make_compute_policy(name, setup, cmodel, rs.quantile, rs.budget),
                                  setup.compute_demand, setup.step_trace_s,
                                  [c.key for c in setup.mapping.compute]) for name in policies}
    if rs.ideal:
        from emulation.replay_ideal import simulate

        keys = [f.key for f in setup.mapping.flows]
        results = {name: simulate(make_policy(name, setup, model, rs.corrupt, quantile=rs.quantile,
                                              budget=rs.budget, spend_cap=rs.spend_cap),
                                  setup.demand, setup.step_trace_s, keys)
                   for name in policies} if keys else {}
        title += " (idealised, without the lab)"
    else:
        with LabSession(rs.spec_path, rs.prefix, rs.workdir, console) as s:
            results = run_all(setup, policies, s.lab, s.ctl.url, s.token, console, model, rs.corrupt,
                              rs.quantile, budget=rs.budget, spend_cap=rs.spend_cap) \
                if setup.mapping.flows else {}
            if setup.mapping.compute:
                compute = run_compute(setup, policies, s.lab, console, cmodel, rs.quantile, rs.budget)
    meta = {"spec": rs.spec_path, "trace": str(rs.trace), "mapping": str(rs.mapping),
            "compress": rs.compress, "start": str(setup.times[0]), "steps": int(setup.demand.shape[0]),
            "forecaster": rs.forecaster, "quantile": rs.quantile, "budget": rs.budget,
            "spend_cap": rs.spend_cap,
            "corrupt": rs.corrupt,
            "ideal": rs.ideal, "description": rs.description}
    return report(results, setup, console, rs.json_out, rs.report_dir, title, meta, compute)


def run_replay_pcap(spec_path: str, pcap: str, tenant: str, app: str, src: str, dst: str, speed: float,
                    local_ip: str | None, prefix: str, workdir: Path, console: Console | None = None) -> dict:
    """Rewrite ``pcap`` onto one tenant application and replay it in a fresh lab; what was sent and
    what the application's admission rules counted."""
    from emulation.meters import settled
    from emulation.pcap import admitted, replay, rewrite
    from topologies import load_spec

    console = console or Console(width=max(110, Console().width))
    spec = load_spec(spec_path)
    rw = rewrite(pcap, Path(workdir) / "rewritten", spec, tenant, app, src, dst, local_ip)
    console.print(f"{pcap}: local address {rw.local_ip} -> {src}, every other -> {dst}; "
                  f"{rw.forward_packets} packets {src}->{dst}, {rw.reverse_packets} {dst}->{src}; "
                  f"left out {rw.skipped or 'nothing'}")
    with LabSession(spec_path, prefix, workdir, console) as s:
        before = admitted(s.lab, spec, tenant, app, src, dst)
        sent = replay(s.lab, rw, src, dst, speed)
        after = settled(lambda: admitted(s.lab, spec, tenant, app, src, dst))
    result = {"rewritten": {"forward": rw.forward_packets, "reverse": rw.reverse_packets,
                            "skipped": rw.skipped, "local_ip": rw.local_ip},
              "sent": sent, "admitted": {"forward": after[0] - before[0], "reverse": after[1] - before[1]}}
    console.print(f"sent {sent}; admitted by {tenant}/{app}'s rules: {result['admitted']}")
    return result
