"""``netshadow run``: the closed loop against a running controller (lab or real OVS).

Every ``interval`` seconds: read the applications' offered load from the controller's telemetry
(``GET /api/v1/series``, averaged over ``step`` -second buckets) and, for every CPU-limited host
(one with a ``cpu`` share in the spec, whose agent applies a plan's compute), what its agent
measured: the CPU it asked for (``cpu`` plus ``cpu_throttled``: its use cannot exceed its quota,
the time it waited out the quota is the rest) and, with ``compute`` naming ``memory``, its
memory in MiB; score the last forecasts against
it, refit or update the profiler model every ``retrain_every`` cycles, forecast far enough ahead
to cover a shadow run plus an apply (as measured in earlier cycles), decide a plan
(:meth:`planner.core.Planner.decide`, the decision the replay benchmarks measure), optionally
verify it in a shadow network, apply it (``POST /api/v1/plans``), and record the cycle. Each
cycle is stored in SQLite (``--db``) with the planner's memory, so a restarted loop continues the
numbering and scores its forecasts from what it stored; the plan in force is read back from the
controller every cycle (a plan the controller rolled back is not taken for the one in force).
A loop that starts with nothing stored first **warms up** (:func:`warm_up`): the planner decides
every step of the telemetry it read that lies beyond what the model needs to read (at most a
day), as the replay's predictive policy does before its window, so its budget margins start
from its own outcomes instead of a guess.
Status: ``GET /api/v1/loop`` and ``/metrics`` on ``--status-port``.

With ``scan_prefix`` (the production lab's name prefix) every ``scan_every`` cycles the loop scans
production at a low rate (:mod:`emulation.scanlab`: one probe per host pair and port, lab
addresses only), stores the results (``POST /api/v1/scans``, as it stores each shadow run's scan),
reports every pair whose latest scans contradict the spec (:func:`planner.scans.drift`) and
hands the planner the links the failing pairs cross and no answering pair does, which it routes
around (:func:`planner.scans.suspect_links`).

When the plan sizes hosts' compute, the horizon also covers the agents: a reading averages the
agent interval before it (so it lands a step late) and an agent applies a new quota at its next
poll - two agent intervals - and one step more, because an agent's interval does not start on a
bucket's boundary: a rise shows in part in the bucket it starts in and in full only in the next,
and the forecast repeats that. With ``policy="reactive"`` the loop runs the threshold baseline
(:mod:`planner.reactive`) instead of forecasting: the same telemetry, apply path and records.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from controller.plan import PlanError, parse_plan
from controller.rest import RestServer
from models.series import SeriesKey, SeriesSet
from planner.budget import DAY_S
from planner.compute import is_compute
from planner.core import Decision, Planner, PlannerError, PlannerSettings
from planner.forecasters import ForecasterChoice, fit, forecast
from planner.reactive import ReactivePlanner
from planner.replay import OBSERVED_MIN
from topologies import NetworkSpec

LOG = logging.getLogger("netshadow.loop")


class LoopRunError(RuntimeError):
    """The loop cannot go on (the controller refused or is unreachable)."""


class CycleStore:
    """Cycles as JSON rows in SQLite (WAL), written once per cycle."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        c = sqlite3.connect(self.path)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE IF NOT EXISTS cycles (cycle INTEGER PRIMARY KEY, t REAL NOT NULL, "
                  "record TEXT NOT NULL)")
        c.execute("CREATE TABLE IF NOT EXISTS planner (id INTEGER PRIMARY KEY CHECK (id = 1), "
                  "memory TEXT NOT NULL)")
        c.commit()
        self.conn = c

    def last(self) -> dict | None:
        row = self.conn.execute("SELECT record FROM cycles ORDER BY cycle DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def add(self, record: dict, memory: dict) -> None:
        """The cycle and the planner's memory after it, in one transaction."""
        with self.conn:
            self.conn.execute("INSERT INTO cycles VALUES (?, ?, ?)",
                              (record["cycle"], record["t"], json.dumps(record)))
            self.conn.execute("INSERT OR REPLACE INTO planner VALUES (1, ?)", (json.dumps(memory),))

    def memory(self) -> dict | None:
        row = self.conn.execute("SELECT memory FROM planner WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycles = Counter("netshadow_loop_cycles", "Loop cycles completed", registry=r)
        self.cycle_seconds = Gauge("netshadow_loop_cycle_seconds", "Duration of the last cycle", registry=r)
        self.horizon = Gauge("netshadow_loop_horizon_steps", "Forecast horizon of the last cycle", registry=r)
        self.allocated = Gauge("netshadow_loop_allocated_mbps", "Rate the last plan allocates",
                               ["tenant", "app"], registry=r)
        self.forecast = Gauge("netshadow_loop_forecast_upper_mbps", "Largest upper-quantile forecast "
                              "over the horizon", ["tenant", "app"], registry=r)
        self.mae = Gauge("netshadow_loop_forecast_mae_mbps", "Mean absolute error of recent forecasts",
                         ["tenant", "app"], registry=r)
        self.coverage = Gauge("netshadow_loop_forecast_coverage", "Share of recent actuals under the "
                              "upper quantile", ["tenant", "app"], registry=r)
        self.margin = Gauge("netshadow_loop_budget_margin_mbps", "The violation budget's margin added "
                            "to the forecast quantile", ["tenant", "app"], registry=r)
        self.violation_share = Gauge("netshadow_loop_violation_share", "Share of measured steps whose "
                                     "demand exceeded the rate in force", ["tenant", "app"], registry=r)
        self.anomalies = Counter("netshadow_loop_anomalies", "Anomalous surges seen", registry=r)
        self.cpu_quota = Gauge("netshadow_loop_cpu_quota_cores", "CPU quota the last plan sets",
                               ["host"], registry=r)
        self.memory_limit = Gauge("netshadow_loop_memory_limit_mib", "Memory limit the last plan "
                                  "sets", ["host"], registry=r)
        self.drift = Gauge("netshadow_loop_scan_drift", "Host pairs and ports whose latest production "
                           "scans contradict the spec", registry=r)
        self.suspect = Gauge("netshadow_loop_suspect_links", "Links the planner routes around: the "
                             "failing pairs cross them and no answering pair does", registry=r)
        self.outcomes = Counter("netshadow_loop_plans", "Plans by outcome", ["outcome"], registry=r)


def fetch(url: str, spec: NetworkSpec, since: float, until: float, step_s: float):
    """(keys, bucket start times, values Mbit/s) of every application's offered load."""
    r = requests.get(f"{url}/series", params={"kind": "app", "metric": "bps", "since": f"{since:.3f}",
                                              "until": f"{until:.3f}", "step": f"{step_s:g}"}, timeout=30)
    if r.status_code != 200:
        raise LoopRunError(f"GET /series: HTTP {r.status_code}: {r.text[:200]}")
    first = math.floor(since / step_s) * step_s
    times = np.arange(first, until - step_s + 1e-6, step_s)  # complete buckets only
    keys, cols = [], []
    index = {round(float(t), 6): i for i, t in enumerate(times)}
    for s in r.json()["series"]:
        if s.get("direction") != "fwd":
            continue
        col = np.full(len(times), np.nan)
        for t, v in s["points"]:
            i = index.get(round(float(t), 6))
            if i is not None and v is not None:
                col[i] = v / 1e6
        if np.isfinite(col).any():
            keys.append(SeriesKey(s["tenant"], s["app"]))
            cols.append(col)
    allowed = {(t.id, a) for t in spec.tenants for s, d, a in spec.allowed() if s in t.hosts}
    pick = [i for i, k in enumerate(keys) if k.app_key in allowed]
    vals = np.stack([cols[i] for i in pick], axis=1) if pick else np.zeros((len(times), 0))
    # the newest buckets may not have reached the store yet (it writes once a second)
    while len(vals) and pick and np.isnan(vals[-1]).all():
        vals, times = vals[:-1], times[:-1]
    return [keys[i] for i in pick], times, vals


def fetch_compute(url: str, spec: NetworkSpec, since: float, until: float, step_s: float,
                  times: np.ndarray, metrics: tuple[str, ...] = ("cpu",)):
    """(keys, values) of the CPU-limited hosts' compute on the buckets ``times``: ``cpu`` in
    cores asked for (use plus throttled time), ``memory`` in MiB; keys as the planner names compute
    (:mod:`planner.compute`). A host without readings yet is left out."""
    members = {h for t in spec.tenants for h in t.hosts}
    hosts = [h.name for h in spec.hosts if h.cpu is not None and h.name in members]
    if not hosts or not metrics or not len(times):
        return [], np.zeros((len(times), 0))
    r = requests.get(f"{url}/series", params={"kind": "host", "since": f"{since:.3f}",
                                              "until": f"{until:.3f}", "step": f"{step_s:g}"}, timeout=30)
    if r.status_code != 200:
        raise LoopRunError(f"GET /series: HTTP {r.status_code}: {r.text[:200]}")
    index = {round(float(t), 6): i for i, t in enumerate(times)}
    got: dict[tuple[str, str], np.ndarray] = {}
    for s in r.json()["series"]:
        col = np.full(len(times), np.nan)
        for t, v in s["points"]:
            i = index.get(round(float(t), 6))
            if i is not None and v is not None:
                col[i] = v
        got[(s["host"], s["metric"])] = col
    keys, cols = [], []
    for h in hosts:
        tenant = spec.tenant_of(h).id
        if "cpu" in metrics and (h, "cpu") in got:
            throttled = got.get((h, "cpu_throttled"), np.zeros(len(times)))
            keys.append(SeriesKey(tenant, h, "cpu"))
            cols.append(got[(h, "cpu")] + np.nan_to_num(throttled))
        if "memory" in metrics and (h, "memory_bytes") in got:
            keys.append(SeriesKey(tenant, h, "memory"))
            cols.append(got[(h, "memory_bytes")] / 2**20)
    pick = [i for i, c in enumerate(cols) if np.isfinite(c).any()]
    vals = np.stack([cols[i] for i in pick], axis=1) if pick else np.zeros((len(times), 0))
    return [keys[i] for i in pick], vals


def observed(keys: list[SeriesKey], times: np.ndarray, values: np.ndarray, step_s: float) -> SeriesSet:
    """The measured series as the planner reads them (NaN: a bucket without a measurement)."""
    return SeriesSet(pd.Timestamp(float(times[0]), unit="s", tz="UTC"), step_s,
                     tuple(k.name for k in keys), values)


def model_input(series: SeriesSet) -> SeriesSet:
    """What the forecaster trains on and forecasts from: gaps carry the last measurement
    forward; a series' leading gap takes its first measurement (a 0 there would be a jump that
    never happened, and would widen every interval learned from it)."""
    filled = pd.DataFrame(series.values).ffill().bfill().fillna(0.0).to_numpy()
    return SeriesSet(series.start, series.step_s, series.names, filled)


def current_plan(url: str, spec: NetworkSpec):
    """The plan in force as the controller reports it (None: none, or one that does not parse)."""
    r = requests.get(f"{url}/plans/current", timeout=10)
    if r.status_code != 200:
        raise LoopRunError(f"GET /plans/current: HTTP {r.status_code}: {r.text[:200]}")
    data = r.json().get("plan")
    if not data:
        return None
    try:
        return parse_plan(data, spec)
    except PlanError as e:
        LOG.warning("the controller's current plan does not parse (%s); deciding as if none", e)
        return None


def decide_cycle(planner: Planner, choice: ForecasterChoice, model, keys: list[SeriesKey],
                 times: np.ndarray, values: np.ndarray, step_s: float, current, now: float,
                 name: str, avoid: frozenset = frozenset(), covariate: SeriesSet | None = None
                 ) -> Decision:
    """One cycle's decision: the measured buckets as the planner's observation, the fitted
    model's forecast of the ``choice.horizon`` steps after them (reading ``covariate``, the RTT
    history, where it chose to), the plan in force, the links the scans say are down."""
    seen = observed(keys, times, values, step_s)
    return planner.decide(now, seen, forecast(model, choice, model_input(seen), covariate), current,
                          name=name, avoid=avoid)


def warm_up(planner: Planner, choice: ForecasterChoice, model, keys: list[SeriesKey],
            times: np.ndarray, values: np.ndarray, step_s: float,
            covariate: SeriesSet | None = None) -> tuple[Planner, int]:
    """Before a fresh loop's first cycle: decide each of the last steps of the measured buckets
    (all but the :data:`planner.replay.OBSERVED_MIN` the planner is shown at least, a day at
    most) from the steps before it, each plan taken as applied, and return the planner that goes
    on from there (:meth:`planner.core.Planner.warmed`) and how many steps it decided. The
    decisions are those the replay's predictive policy makes before its window; nothing is
    applied. The model has read these steps (as in the replay's warm-up), so the margins start
    from outcomes a little better than its forecasts will be."""
    steps = max(0, min(len(times) - OBSERVED_MIN, math.floor(DAY_S / step_s)))
    if steps == 0:
        return planner, 0
    current = None
    for i in range(len(times) - steps, len(times)):
        try:
            d = decide_cycle(planner, choice, model, keys, times[:i], values[:i], step_s, current,
                             float(times[i - 1]) + step_s, f"warm-up-{i}", covariate=covariate)
        except ValueError as e:  # PlannerError, SeriesError: a step it cannot decide ends it
            LOG.warning("warm-up: stopped at step %d of %d: %s", i - (len(times) - steps), steps, e)
            return planner.warmed(), i - (len(times) - steps)
        current = d.plan
    return planner.warmed(), steps


def fetch_rtt(url: str, spec: NetworkSpec, keys: list[SeriesKey], times: np.ndarray, step_s: float,
              hold_s: float, now: float) -> SeriesSet | None:
    """The RTT history of each application's paths from the stored production scans over the
    buckets ``times`` (:func:`planner.scans.rtt_covariate`; a value holds ``hold_s`` seconds, the
    time between scans; a scan after the last bucket, by ``now``, counts in it); None when there is
    none or the controller keeps no store."""
    from controller.scans import ScanResult
    from planner.scans import rtt_covariate

    if not len(times):
        return None
    r = requests.get(f"{url}/scans", params={"origin": "production", "since": f"{float(times[0]):.3f}",
                                             "limit": 10000}, timeout=30)
    if r.status_code != 200:
        LOG.warning("GET /scans: HTTP %s: %s; no RTT covariate", r.status_code, r.text[:200])
        return None
    history = [ScanResult.from_dict(x) for x in r.json()["scans"]]
    return rtt_covariate(spec, keys, history, float(times[0]), len(times), step_s,
                         math.ceil(hold_s / step_s), until=now)


def post_scans(url: str, token: str | None, origin: str, t: float, results: list[dict]) -> None:
    """Store a scan's results in the controller (a controller without a store is only logged)."""
    if not results:
        return
    r = requests.post(f"{url}/scans", json={"origin": origin, "t": t, "results": results}, timeout=30,
                      headers={"Authorization": f"Bearer {token}"} if token else {})
    if r.status_code in (401, 403):
        raise LoopRunError(f"POST /scans: HTTP {r.status_code}: the token was refused")
    if r.status_code != 200:
        LOG.warning("POST /scans: HTTP %s: %s", r.status_code, r.text[:200])


def scan_production(spec: NetworkSpec, url: str, token: str | None, rs: RunSettings, current,
                    t: float) -> dict:
    """Scan the production lab, store it, and read the drift and the suspect links from the
    stored history (this scan alone when the controller keeps no store)."""
    from controller.scans import ScanResult, parse_scans
    from emulation.production import AttachedLab, ProductionError
    from emulation.scanlab import production_cases, scan
    from planner.scans import drift, latest, suspect_links

    t0 = time.monotonic()
    try:
        lab = AttachedLab(spec, rs.scan_prefix)
        results = scan(lab, spec, production_cases(spec), lambda h: f"{rs.scan_prefix}{h}-eth0")
    except (ProductionError, RuntimeError) as e:
        raise LoopRunError(f"--scan-prefix: {e}") from None
    post_scans(url, token, "production", t, results)
    mine = parse_scans({"origin": "production", "t": t, "results": results}, spec, t)
    r = requests.get(f"{url}/scans", params={"origin": "production", "since": f"{t - rs.scan_history_s:.3f}",
                                             "limit": 10000}, timeout=30)
    if r.status_code == 200:
        history = [ScanResult.from_dict(x) for x in r.json()["scans"]]
    else:
        history = mine
    drifts = drift(history)
    down = suspect_links(spec, latest(history), current)
    return {"t": t, "results": len(results), "seconds": round(time.monotonic() - t0, 3),
            "drift": [d.to_dict() for d in drifts],
            "suspect_links": sorted("-".join(sorted(e)) for e in down), "avoid": down}



def _covariate_chosen(model) -> dict[str, list[int]]:
    """Per series, the horizons (steps) at which the selection forecasts with the covariate."""
    readers = {c.name for c in getattr(model, "candidates", []) if hasattr(c, "with_covariate")}
    choice = model.choice() if readers else {}
    uses = {n: [h for h, c in by_h.items() if readers & set(c["pool"])] for n, by_h in choice.items()}
    return {n: hs for n, hs in uses.items() if hs}


def decision_record(d: Decision, keys: list[SeriesKey]) -> dict:
    """The JSON view of a decision in a cycle record."""
    return {"keys": [k.name for k in keys],
            "forecast": {k.name: {"unit": k.unit, "median": list(d.forecast.get(k.name).median),
                                  "upper": list(d.forecast.get(k.name).quantile(d.quantile)),
                                  "model": d.forecast.get(k.name).model} for k in keys},
            "quantile": d.quantile,
            "scored": {k.name: {"mae_mbps": s.mae_mbps, "coverage": s.coverage, "n": s.n}
                       for k, s in d.scored.items()},
            "anomalies": list(d.anomalies),
            "margin_mbps": {k.name: v for k, v in d.margin_mbps.items()},
            "floored": [k.name for k in d.floored],
            "spend_capped": [k.name for k in d.capped],
            "behind_reacting": [k.name for k in d.behind],
            "violation_share": {k.name: v for k, v in d.violation_share.items()},
            "plan": d.plan.to_dict()}


def _serve_status(host: str, port: int, state: dict, metrics: Metrics):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(metrics.registry)
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
            return [body]
        if path in ("/api/v1/loop", "/api/v1/loop/"):
            body = json.dumps(state, default=str).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [json.dumps({"error": f"path: no such endpoint {path!r}", "field": "path"}).encode()]

    return RestServer(app, host, port, threads=2).start()


@dataclass(frozen=True)
class RunSettings:
    """``netshadow run``'s settings (validated by the command before the loop starts)."""

    planner: PlannerSettings
    step_s: float = 10.0  # one forecast step: telemetry is averaged over buckets of this length
    interval_s: float = 10.0  # between cycles
    history_s: float = 3600.0  # of telemetry each cycle reads
    forecaster: str = "lstm"
    season: int | None = None  # steps, for the seasonal baselines (None: inferred)
    compute: tuple[str, ...] = ("cpu",)  # the hosts' compute the plan sizes: cpu, memory
    policy: str = "predictive"  # or "reactive": the threshold baseline through the same loop
    agent_interval_s: float = 1.0  # the hosts' agents' reading and polling interval
    scan_prefix: str | None = None  # the production lab's prefix: scan it (None: no scans)
    scan_every: int = 6  # cycles between production scans
    scan_history_s: float = 600.0  # of stored scans read to date a drift
    retrain_every: int = 10  # cycles
    verify: str = "none"  # or "shadow"
    shadow_duration_s: float = 5.0
    shadow_prefix: str = "nsv"
    watch_s: float = 0.0  # the controller's regression watch after each apply (0: off)
    db_path: str = "netshadow-loop.db"
    status_host: str = "127.0.0.1"
    status_port: int = 8081
    cycles: int | None = None  # stop after this many (None: until killed)


def run_loop(spec: NetworkSpec, url: str, token: str | None, rs: RunSettings) -> int:
    settings = rs.planner
    store = CycleStore(rs.db_path)
    last = store.last()
    cycle = (last["cycle"] + 1) if last else 1
    planner = Planner(spec, settings)
    memory = store.memory()
    warm = not memory  # nothing stored: warm up before the first cycle (warm_up)
    if memory:
        try:
            planner.restore(memory)
        except PlannerError as e:
            LOG.warning("%s; scoring starts afresh", e)
    metrics = Metrics()
    state: dict = {"status": "starting", "cycle": cycle - 1, "settings": {
        "step_s": rs.step_s, "interval_s": rs.interval_s, "quantile": settings.quantile,
        "anomaly_policy": settings.anomaly_policy, "forecaster": rs.forecaster, "verify": rs.verify},
        "resumed_from": last["cycle"] if last else None, "last": last}
    server = _serve_status(rs.status_host, rs.status_port, state, metrics)
    LOG.info("loop status on http://%s:%s/api/v1/loop; %s", rs.status_host, server.port,
             f"resuming after cycle {last['cycle']}" if last else "first cycle")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    reactive = ReactivePlanner(settings, rs.step_s)
    model, shadow = None, None
    avoid: frozenset = frozenset()  # the links the latest production scan says are down
    scanned: dict | None = None
    shadow_s, apply_s = (rs.shadow_duration_s + 5.0 if rs.verify == "shadow" else 0.0), 0.5
    done = 0
    try:
        while not stop.is_set() and (rs.cycles is None or done < rs.cycles):
            t0 = time.time()
            keys, times, values = fetch(url, spec, t0 - rs.history_s, t0, rs.step_s)
            ckeys, cvalues = fetch_compute(url, spec, t0 - rs.history_s, t0, rs.step_s, times,
                                           rs.compute)
            keys, values = keys + ckeys, np.hstack([values, cvalues])
            while len(values) and np.isnan(values[-1]).all():  # the newest bucket is not stored yet
                values, times = values[:-1], times[:-1]
            if len(keys) == 0 or np.isfinite(values).sum(axis=0).min() < 3:
                state.update(status="waiting for telemetry", waiting_since=state.get("waiting_since", t0))
                stop.wait(rs.interval_s)
                continue
            state["status"] = "running"
            if rs.scan_prefix and (cycle - 1) % rs.scan_every == 0:
                scanned = scan_production(spec, url, token, rs, current_plan(url, spec), t0)
                avoid = scanned.pop("avoid")
                state["drift"] = scanned["drift"]
                metrics.drift.set(len(scanned["drift"]))
                metrics.suspect.set(len(avoid))
                for dr in scanned["drift"]:
                    LOG.warning("drift: %s", dr["text"])
            if rs.policy == "reactive":
                _reactive_cycle(reactive, spec, url, token, rs, keys, times, values, cycle, t0,
                                store, planner, metrics, state, scanned)
                scanned = None
                cycle += 1
                done += 1
                stop.wait(max(0.0, rs.interval_s - (time.time() - t0)))
                continue
            retrain = model is None or (cycle % rs.retrain_every == 0)
            # the forecast must cover a shadow run and an apply: the model is built for it
            lag = 2 * rs.agent_interval_s + rs.step_s if any(is_compute(k) for k in keys) else 0.0
            horizon = max(1, math.ceil((shadow_s + apply_s + lag) / rs.step_s) + 1)
            choice = ForecasterChoice(rs.forecaster, settings.quantile, horizon, season=rs.season)
            rtt = fetch_rtt(url, spec, keys, times, rs.step_s, rs.scan_every * rs.interval_s,
                            time.time()) if rs.scan_prefix else None
            model, model_note = fit(choice, model_input(observed(keys, times, values, rs.step_s)),
                                    previous=model, retrain=retrain, covariate=rtt)
            warmed = None
            if warm:
                planner, warmed = warm_up(planner, choice, model, keys, times, values, rs.step_s, rtt)
                warm = False
                LOG.info("warm-up: the planner decided %d earlier steps before its first cycle", warmed)
            d = decide_cycle(planner, choice, model, keys, times, values, rs.step_s,
                             current_plan(url, spec), t0, f"loop-{cycle}", avoid, rtt)
            record = {"cycle": cycle, "t": t0, "model": model_note, "horizon_steps": horizon,
                      "actual_last": [None if not np.isfinite(x) else round(float(x), 4)
                                      for x in values[-1]], **decision_record(d, keys)}
            if warmed is not None:
                record["warmed_up_steps"] = warmed
            if rtt is not None:
                record["covariate"] = {"rtt_steps": {n: int(np.isfinite(rtt.values[:, j]).sum())
                                                     for j, n in enumerate(rtt.names)
                                                     if np.isfinite(rtt.values[:, j]).any()},
                                       "chosen": _covariate_chosen(model)}
            if scanned is not None:
                record["scan"], scanned = scanned, None
            verdict = None
            refused = None
            if rs.verify == "shadow":
                from emulation.shadow import ShadowError

                t1, t1_wall = time.monotonic(), time.time()
                try:
                    shadow, verdict = _verify(spec, shadow, rs.shadow_prefix, d, keys,
                                              rs.shadow_duration_s)
                except ShadowError as e:
                    refused = str(e)
                else:
                    shadow_s = time.monotonic() - t1
                    post_scans(url, token, "shadow", t1_wall, [
                        {"src": p.src, "dst": p.dst, "proto": p.proto, "port": p.port,
                         "expected": p.expected, "reachable": p.reachable, "rtt_ms": p.rtt_p50_ms}
                        for p in verdict.paths])
                    record["shadow"] = {"verdict": verdict.verdict, "reasons": list(verdict.reasons),
                                        "attempts": verdict.attempts,
                                        "disturbances": list(verdict.disturbances),
                                        "seconds": round(shadow_s, 2)}
            if refused is not None:
                # the shadow's controller would not hold the plan: production is not asked to
                record["outcome"] = "not verified: the shadow refused the plan"
                record["reason"] = refused
            elif verdict is not None and verdict.verdict == "untrusted":
                # the machine was measured, not the plan: nothing verified, nothing applied
                record["outcome"] = "not verified: the shadow run was CPU-bound"
                record["reason"] = "; ".join(verdict.disturbances)
            elif verdict is not None and verdict.verdict != "pass":
                record["outcome"] = "rejected by the shadow network"
                record["reason"] = "; ".join(verdict.reasons)
            else:
                apply_s = _apply(url, token, d.plan, rs.watch_s, record)
            record["seconds"] = round(time.time() - t0, 3)
            store.add(record, planner.memory())
            _observe(metrics, record, d)
            state.update(cycle=cycle, last=record)
            LOG.info("cycle %d: %s; %s%s", cycle, model_note, record["outcome"],
                     f": {record['reason']}" if record.get("reason") else "")
            cycle += 1
            done += 1
            stop.wait(max(0.0, rs.interval_s - (time.time() - t0)))
    finally:
        if shadow is not None:
            shadow.stop()
        server.shutdown()
        state["status"] = "stopped"
    return 0


def _reactive_cycle(reactive: ReactivePlanner, spec, url, token, rs: RunSettings, keys, times,
                    values, cycle: int, t0: float, store: CycleStore, planner: Planner,
                    metrics: Metrics, state: dict, scanned: dict | None = None) -> None:
    """One cycle of the reactive baseline: the newest measurements, the threshold plan, the apply
    (it reports what a scan found, but does not route around it)."""
    plan = reactive.decide(t0, observed(keys, times, values, rs.step_s), current_plan(url, spec),
                           f"reactive-{cycle}")
    record = {"cycle": cycle, "t": t0, "policy": "reactive", "keys": [k.name for k in keys],
              "actual_last": [None if not np.isfinite(x) else round(float(x), 4) for x in values[-1]],
              "plan": plan.to_dict()}
    if scanned is not None:
        record["scan"] = scanned
    _apply(url, token, plan, rs.watch_s, record)
    record["seconds"] = round(time.time() - t0, 3)
    store.add(record, planner.memory())
    metrics.cycles.inc()
    metrics.outcomes.labels(record["outcome"]).inc()
    _observe_plan(metrics, plan)
    state.update(cycle=cycle, last=record)
    LOG.info("cycle %d: reactive; %s", cycle, record["outcome"])


def _apply(url: str, token: str | None, plan, watch_s: float, record: dict) -> float:
    """POST the plan; the controller's typed outcome and its reason go into ``record``. Returns
    the seconds the apply took (the next horizon must cover it)."""
    t = time.monotonic()
    r = requests.post(f"{url}/plans", params={"watch_s": watch_s} if watch_s else None,
                      json=plan.to_dict(), timeout=60,
                      headers={"Authorization": f"Bearer {token}"} if token else {})
    took = time.monotonic() - t
    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    if body.get("outcome"):
        record["outcome"], record["reason"] = body["outcome"], body.get("reason")
    else:
        record["outcome"] = "controller error"
        record["reason"] = body.get("error") or f"HTTP {r.status_code}: {r.text[:200]}"
    record["apply_s"] = round(took, 3)
    if r.status_code in (401, 403):
        raise LoopRunError(f"POST /plans: HTTP {r.status_code}: the token was refused")
    return took


def _observe(m: Metrics, record: dict, d) -> None:
    m.cycles.inc()
    m.cycle_seconds.set(record["seconds"])
    m.horizon.set(record["horizon_steps"])
    m.anomalies.inc(len(d.anomalies))
    m.outcomes.labels(record["outcome"]).inc()
    _observe_plan(m, d.plan)
    for k, up in d.required_mbps.items():
        m.forecast.labels(k.tenant, k.app).set(up)
    for k, v in d.margin_mbps.items():
        m.margin.labels(k.tenant, k.app).set(v)
    for k, v in d.violation_share.items():
        m.violation_share.labels(k.tenant, k.app).set(v)
    for k, s in d.scored.items():
        m.mae.labels(k.tenant, k.app).set(s.mae_mbps)
        m.coverage.labels(k.tenant, k.app).set(s.coverage)


def _observe_plan(m: Metrics, plan) -> None:
    for a in plan.allocations:
        m.allocated.labels(a.tenant, a.app).set(a.rate_mbps)
    for h, q in plan.cpu_quotas:
        m.cpu_quota.labels(h).set(q)
    for h, v in plan.memory_limits:
        m.memory_limit.labels(h).set(v)


def _verify(spec, shadow, prefix, d, keys, duration_s):
    """Run the decision's plan in a (warm) shadow network with the forecast's upper rates and,
    on the CPU-limited hosts, its upper CPU shares. An application the spend cap holds below its
    forecast is driven at the rate it is granted: the shadow checks that the plan carries what
    it grants, not the demand the planner chose not to pay for."""
    from emulation.shadow import Shadow, demand_for

    if shadow is None:
        shadow = Shadow(spec, prefix=prefix).start(d.plan)
    else:
        shadow.apply(d.plan)
    from emulation.hostcompute import ComputeDemand

    def upper(k):
        q = d.forecast.get(k.name).quantile(d.quantile)
        granted = d.plan.allocation(*k.app_key) if k in d.capped else None
        return tuple(min(v, granted.rate_mbps) for v in q) if granted is not None else q
    demands = [x for x in (demand_for(spec, k.tenant, k.app, upper(k))
                           for k in keys if not is_compute(k)) if x is not None]
    compute = [ComputeDemand(k.tenant, k.app, tuple(min(1.0, max(0.0, float(v))) for v in
                                                    d.forecast.get(k.name).quantile(d.quantile)))
               for k in keys if k.metric == "cpu"]
    return shadow, shadow.run(demands, duration_s, compute=compute)
