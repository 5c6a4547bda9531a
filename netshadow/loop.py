"""``netshadow run``: the closed loop against a running controller (lab or real OVS).

Every ``interval`` seconds: read the applications' offered load from the controller's telemetry
(``GET /api/v1/series``, averaged over ``step`` -second buckets), score the last forecasts against
it, refit or update the profiler model every ``retrain_every`` cycles, forecast far enough ahead
to cover a shadow run plus an apply (as measured in earlier cycles), decide a plan
(:class:`controller.loop.LoopCore`), optionally verify it in a shadow network, apply it
(``POST /api/v1/plans``), and record the cycle. Each cycle is stored in SQLite (``--db``), so a
restarted loop continues the numbering and its forecasts are scored from what it stored; the
plan in force is read back from the controller. Status: ``GET /api/v1/loop`` and ``/metrics``
on ``--status-port``.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sqlite3
import threading
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from controller.loop import LoopCore, LoopSettings
from controller.plan import PlanError, parse_plan
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
        c.execute("CREATE TABLE IF NOT EXISTS pending (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        c.commit()
        self.conn = c

    def last(self) -> dict | None:
        row = self.conn.execute("SELECT record FROM cycles ORDER BY cycle DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def add(self, record: dict, pending: dict) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO cycles VALUES (?, ?, ?)",
                              (record["cycle"], record["t"], json.dumps(record)))
            self.conn.execute("DELETE FROM pending")
            self.conn.executemany("INSERT INTO pending VALUES (?, ?)",
                                  [(json.dumps([list(k), t]), json.dumps(v))
                                   for (k, t), v in pending.items()])

    def pending(self) -> dict:
        out = {}
        for k, v in self.conn.execute("SELECT k, v FROM pending"):
            key, t = json.loads(k)
            out[(tuple(key), float(t))] = tuple(json.loads(v))
        return out


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
        self.anomalies = Counter("netshadow_loop_anomalies", "Anomalous surges seen", registry=r)
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
            keys.append((s["tenant"], s["app"]))
            cols.append(col)
    allowed = {(t.id, a) for t in spec.tenants for s, d, a in spec.allowed() if s in t.hosts}
    pick = [i for i, k in enumerate(keys) if k in allowed]
    vals = np.stack([cols[i] for i in pick], axis=1) if pick else np.zeros((len(times), 0))
    # the newest buckets may not have reached the store yet (it writes once a second)
    while len(vals) and pick and np.isnan(vals[-1]).all():
        vals, times = vals[:-1], times[:-1]
    return [keys[i] for i in pick], times, vals


def make_model(kind: str, keys, times, values, step_s: float, previous=None, retrain: bool = True,
               quantile: float = 0.9, horizon: int = 6):
    """A fitted forecaster over the series that serves ``quantile`` (with the default interval
    quantiles) ``horizon`` steps ahead, and a note on what it is. A previous LSTM is updated only
    if it serves both; otherwise a new one is trained."""
    import pandas as pd

    from models.baselines import Persistence, all_baselines
    from models.forecast import DEFAULT_QUANTILES
    from models.series import SeriesSet

    quantiles = tuple(sorted(set(DEFAULT_QUANTILES) | {float(quantile)}))

    filled = pd.DataFrame(values).ffill().bfill().fillna(0.0).to_numpy()
    names = tuple(f"{t}/{a}" for t, a in keys)
    series = SeriesSet(pd.Timestamp(float(times[0]), unit="s", tz="UTC"), step_s, names, filled)
    if kind == "lstm":
        from models.lstm import LSTMForecaster

        window = 12
        if len(filled) < 6 * window:
            return (Persistence(quantiles=quantiles).fit(series),
                    f"persistence (lstm needs {6 * window} steps, have {len(filled)})")
        if previous is not None and getattr(previous, "name", "") == "lstm" and \
                previous.series is not None and previous.series.names == names and \
                tuple(previous.quantiles) == quantiles and previous.horizon >= horizon:
            m = previous.update(series, epochs=3) if retrain else previous.bind(series)
            return m, "lstm (updated)" if retrain else "lstm"
        return (LSTMForecaster(window=window, horizon=max(6, horizon), epochs=15, verbose=0, batch=128,
                               quantiles=quantiles).fit(series), "lstm (trained)")
    by = {b.name: b for b in all_baselines(quantiles=quantiles)}
    if kind not in by:
        raise LoopRunError(f"forecaster: must be lstm or one of {sorted(by)} (got {kind!r})")
    return by[kind].fit(series), kind


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

    class Quiet(WSGIRequestHandler):
        def log_message(self, *a):
            pass

    server = make_server(host, port, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="netshadow-loop-status", daemon=True).start()
    return server


def run_loop(spec: NetworkSpec, url: str, token: str | None, settings: LoopSettings, interval_s: float,
             history_s: float, forecaster: str, retrain_every: int, verify: str, shadow_duration_s: float,
             db_path: str, status_host: str, status_port: int, cycles: int | None = None,
             watch_s: float = 0.0, shadow_prefix: str = "nsv") -> int:
    store = CycleStore(db_path)
    last = store.last()
    cycle = (last["cycle"] + 1) if last else 1
    core = LoopCore(spec, settings)
    core.pending = store.pending()
    current = requests.get(f"{url}/plans/current", timeout=10).json().get("plan")
    if current:
        try:
            core.committed(parse_plan(current, spec))
        except PlanError as e:
            LOG.warning("the controller's current plan does not parse (%s); starting without it", e)
    metrics = Metrics()
    state: dict = {"status": "starting", "cycle": cycle - 1, "settings": {
        "step_s": settings.step_s, "interval_s": interval_s, "quantile": settings.quantile,
        "anomaly_policy": settings.anomaly_policy, "forecaster": forecaster, "verify": verify},
        "resumed_from": last["cycle"] if last else None, "last": last}
    server = _serve_status(status_host, status_port, state, metrics)
    LOG.info("loop status on http://%s:%d/api/v1/loop; %s", status_host, server.server_port,
             f"resuming after cycle {last['cycle']}" if last else "first cycle")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    model, shadow = None, None
    shadow_s, apply_s = (shadow_duration_s + 5.0 if verify == "shadow" else 0.0), 0.5
    done = 0
    try:
        while not stop.is_set() and (cycles is None or done < cycles):
            t0 = time.time()
            keys, times, values = fetch(url, spec, t0 - history_s, t0, settings.step_s)
            if len(keys) == 0 or np.isfinite(values).sum(axis=0).min() < 3:
                state.update(status="waiting for telemetry", waiting_since=state.get("waiting_since", t0))
                stop.wait(interval_s)
                continue
            state["status"] = "running"
            retrain = model is None or (cycle % retrain_every == 0)
            # the forecast must cover a shadow run and an apply: the model is built for it
            horizon = max(1, math.ceil((shadow_s + apply_s) / settings.step_s) + 1)
            model, model_note = make_model(forecaster, keys, times, values, settings.step_s,
                                           previous=model, retrain=retrain, quantile=settings.quantile,
                                           horizon=horizon)
            d = core.decide(t0, keys, times, values, model, horizon, name=f"loop-{cycle}")
            record = {"cycle": cycle, "t": t0, "model": model_note, "horizon_steps": horizon,
                      "keys": [f"{t}/{a}" for t, a in keys], "actual_last": values[-1].round(4).tolist(),
                      "forecast": d.forecast, "scored": d.scored, "anomalies": list(d.anomalies),
                      "fallback": list(d.fallback), "plan": d.plan.to_dict()}
            verdict = None
            if verify == "shadow":
                t1 = time.monotonic()
                shadow, verdict = _verify(spec, shadow, shadow_prefix, d, keys, shadow_duration_s)
                shadow_s = time.monotonic() - t1
                record["shadow"] = {"verdict": verdict.verdict, "reasons": list(verdict.reasons),
                                    "seconds": round(shadow_s, 2)}
            if verdict is not None and verdict.verdict != "pass":
                record["outcome"] = "rejected by the shadow network: " + "; ".join(verdict.reasons)
            else:
                t2 = time.monotonic()
                r = requests.post(f"{url}/plans", params={"watch_s": watch_s} if watch_s else None,
                                  json=d.plan.to_dict(), timeout=60,
                                  headers={"Authorization": f"Bearer {token}"} if token else {})
                apply_s = time.monotonic() - t2
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                record["outcome"] = body.get("outcome") or f"HTTP {r.status_code}: {r.text[:200]}"
                record["apply_s"] = round(apply_s, 3)
                if r.status_code == 200 and str(record["outcome"]).startswith(("applied", "unchanged")):
                    core.committed(d.plan)
                elif r.status_code in (401, 403):
                    raise LoopRunError(f"POST /plans: HTTP {r.status_code}: the token was refused")
            record["seconds"] = round(time.time() - t0, 3)
            store.add(record, core.pending)
            _observe(metrics, record, d)
            state.update(cycle=cycle, last=record)
            LOG.info("cycle %d: %s; %s", cycle, model_note, record["outcome"])
            cycle += 1
            done += 1
            stop.wait(max(0.0, interval_s - (time.time() - t0)))
    finally:
        if shadow is not None:
            shadow.stop()
        server.shutdown()
        state["status"] = "stopped"
    return 0


def _observe(m: Metrics, record: dict, d) -> None:
    m.cycles.inc()
    m.cycle_seconds.set(record["seconds"])
    m.horizon.set(record["horizon_steps"])
    m.anomalies.inc(len(d.anomalies))
    m.outcomes.labels(str(record["outcome"]).split(":")[0]).inc()
    for a in d.plan.allocations:
        m.allocated.labels(a.tenant, a.app).set(a.rate_mbps)
    for name, f in d.forecast.items():
        t, a = name.split("/")
        m.forecast.labels(t, a).set(max(f["upper"]))
    for name, s in d.scored.items():
        t, a = name.split("/")
        m.mae.labels(t, a).set(s["mae_mbps"])
        m.coverage.labels(t, a).set(s["coverage"])


def _verify(spec, shadow, prefix, d, keys, duration_s):
    """Run the decision's plan in a (warm) shadow network with the forecast's upper rates."""
    from emulation.shadow import Shadow, demand_for

    if shadow is None:
        shadow = Shadow(spec, prefix=prefix).start(d.plan)
    else:
        shadow.apply(d.plan)
    demands = [x for x in (demand_for(spec, t, a, d.forecast[f"{t}/{a}"]["upper"]) for t, a in keys)
               if x is not None]
    return shadow, shadow.run(demands, duration_s)
