"""Does the predictive core hold on traffic it was never tuned on? One command over a suite of
scenarios built at run time from ``../shared/data``, each scored the same way:

* **forecast table**: every candidate forecaster (the LSTM, the gradient-boosted model and the
  baselines) fitted on the history before the scenario's test day and scored on that day: MAE
  per horizon (1, 3, 12 steps), the candidate's ratio to the best baseline, and the coverage of
  its 10-90 % interval overall and inside demand peaks (steps above the series' median plus
  half the way to its maximum; and over the peaks the replay counts, runs of two such steps or
  more), and over the steps where a peak is *forecast* (each series' top decile of the
  candidate's own forecasts: chosen by what was known before the step, unlike the peaks, which
  are chosen by their outcome; ``benchmarks/peak_coverage.py`` measures what that difference
  costs an exact interval);
* **allocation table**: the idealised replay (:mod:`emulation.replay_ideal`) of every policy
  (static, reactive, predictive on the selection at quantile 0.9, the same without its spend cap,
  oracle) over the test day, the predictive policy warmed up over the day before (see
  :mod:`planner.replay`): violated steps, violation-seconds, reserve x reactive's and x the
  oracle's, peaks pre-allocated;

then the median and the worst scenario of each figure.

* **lab table** (``--lab``, as root with Open vSwitch; two scenarios by default): the first
  ``--lab-days`` of the scenario's test day replayed on a real lab (its spec, its own controller,
  every policy through the controller's API, 1 s per trace step), the predictive policy on the
  same fitted selection; violation-seconds, reserve x reactive's and x the oracle's, peaks, as
  ``netshadow replay`` measures them, with the late steps and the 90th percentiles of each
  round's meter read, decision and apply.

Scenarios: Abilene March 2004 (5-minute traffic matrix; four disjoint sets of four
origin-destination pairs by mean rank, the last day, and the top set on two earlier days too),
each pair an application between the hosts of its PoPs on ``topologies/abilene.yaml``, scaled by
0.1 (backbone Mbit/s to lab Mbit/s); and the NAB series (network-in, request counts, CPU, taxi and
tweet volumes) on ``topologies/default.yaml`` as red/video h1 -> h2, scaled so that the history's
maximum is 40 Mbit/s, with at most 14 days of history (one scenario with only two). The Abilene
data is academic-licensed: it is read where it lies and nothing of it is written.

    python benchmarks/generalisation.py                 # every scenario, two on the lab (about
                                                        # an hour; the lab needs root)
    python benchmarks/generalisation.py --no-lstm --lab ''  # without the LSTM (the selection of
                                                        # the rest), no lab (about 25 minutes)
    python benchmarks/generalisation.py --only nab      # scenarios whose name contains 'nab'
    python benchmarks/generalisation.py --lab ''        # no lab replays
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_policies import abilene_inputs  # noqa: E402
from emulation.replay_ideal import simulate  # noqa: E402
from emulation.replay_measures import (  # noqa: E402
    above_peak_level,
    forecast_peak_steps,
    peak_steps,
    summarise,
)
from models.baselines import all_baselines  # noqa: E402
from models.evaluate import evaluate  # noqa: E402
from models.gbm import GradientBoosting  # noqa: E402
from models.selection import Selection  # noqa: E402
from models.series import SeriesKey, SeriesSet  # noqa: E402
from netshadow.replaycmd import make_policy, prepare  # noqa: E402
from planner.forecasters import BASELINES, ForecasterChoice, fit  # noqa: E402
from topologies import load_spec  # noqa: E402

DATA = ROOT.parent / "shared/data"
ABILENE_FILE = "abilene/abilene_tm_5min_20040301T0000_20040314T2355.csv"
HORIZONS = (1, 3, 12)
POLICIES = ("static", "reactive", "predictive", "oracle")
UNCAPPED = "predictive-uncapped"  # the predictive policy without its spend cap (idealised only)
QUANTILE = 0.9
LAB_SCENARIOS = "abilene-od5-8-last,nab-elb_request_count_8c0756"  # replayed on the lab too
FEW_FRAMES = 50  # an application sending fewer 1514-byte frames than this per lab step is noted
LAB_DAYS = 0.25


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: str
    trace: str
    mapping: str
    compress: str
    start: str | None  # first test step (None: the last day)


# ---------------------------------------------------------------------- scenarios
def abilene_scenario(data: Path, out: Path, ranks: range, start: str | None) -> Scenario:
    day = (start or "last")[:10]
    name = f"abilene-od{ranks.start + 1}-{ranks.stop}-{day}"
    spec, trace, mapping, compress = abilene_inputs(out / name, len(ranks), 0.1, ranks.start,
                                                    data / ABILENE_FILE)
    return Scenario(name, spec, trace, mapping, compress, start)


def nab_scenario(data: Path, out: Path, file: str, history_days: float = 14.0) -> Scenario:
    raw = pd.read_csv(data / "nab" / file)
    t = pd.to_datetime(raw["timestamp"])
    step = float(pd.Series(t).diff().dt.total_seconds().mode().iloc[0])
    keep = int(round((history_days + 1) * 86400 / step))
    frame = pd.DataFrame({"time": t.dt.strftime("%Y-%m-%dT%H:%M:%S"), "series": raw["value"]}).tail(keep)
    test_rows = int(round(86400 / step))
    scale = 40.0 / max(float(frame["series"].iloc[:-test_rows].max()), 1e-9)
    name = f"nab-{Path(file).stem}" + ("" if history_days >= 14 else f"-{history_days:g}d-history")
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    frame.to_csv(d / "trace.csv", index=False)
    (d / "map.yaml").write_text(yaml.safe_dump({"scale": scale, "flows": [
        {"column": "series", "tenant": "red", "app": "video", "src": "h1", "dst": "h2"}]}))
    return Scenario(name, str(ROOT / "topologies/default.yaml"), str(d / "trace.csv"),
                    str(d / "map.yaml"), f"{step:g}=1", None)


def scenarios(data: Path, out: Path) -> list[Scenario]:
    out_s = [abilene_scenario(data, out, range(k, k + 4), None) for k in (0, 4, 8, 12)]
    out_s += [abilene_scenario(data, out, range(0, 4), day)
              for day in ("2004-03-10T00:00", "2004-03-07T00:00")]
    out_s += [nab_scenario(data, out, f) for f in (
        "ec2_network_in_257a54.csv", "ec2_network_in_5abac7.csv", "elb_request_count_8c0756.csv",
        "ec2_cpu_utilization_5f5533.csv", "rds_cpu_utilization_cc0c53.csv", "nyc_taxi.csv",
        "Twitter_volume_AMZN.csv", "Twitter_volume_GOOG.csv")]
    out_s.append(nab_scenario(data, out, "ec2_network_in_257a54.csv", history_days=2))
    return out_s


# ---------------------------------------------------------------------- one scenario
def forecast_table(setup, candidates: list[str]) -> dict:
    names = tuple(SeriesKey(f.tenant, f.app).name for f in setup.mapping.flows)
    hist = SeriesSet(setup.start, setup.step_trace_s, names, setup.history)
    full = SeriesSet(setup.start, setup.step_trace_s, names, np.vstack([setup.history, setup.demand]))
    models = [fit(ForecasterChoice(c, QUANTILE, max(HORIZONS), epochs=20), hist)[0] for c in candidates]
    if "lstm" in candidates:
        sel = fit(ForecasterChoice("selection", QUANTILE, max(HORIZONS), epochs=20), hist)[0]
    else:  # the same selection without the LSTM
        q = ForecasterChoice("selection", QUANTILE).quantiles
        sel = Selection(all_baselines(quantiles=q) + [GradientBoosting(quantiles=q)],
                        horizon=max(HORIZONS), quantiles=models[0].quantiles).fit(hist)
    models.append(sel)
    scores, preds = evaluate(models, full, len(setup.history), list(HORIZONS), trained=tuple(models))
    y = setup.demand
    # every step above the peak level (spikes included), and the steps of the peaks the replay
    # counts (runs of two or more)
    peaks, runs = above_peak_level(y), peak_steps(y)
    out: dict = {}
    for s in scores:
        med, lo, hi = preds[(s.model, s.horizon)]
        inside = (y >= lo) & (y <= hi)
        expected = forecast_peak_steps(med)
        out.setdefault(s.model, {})[s.horizon] = {
            "mae": s.mae, "coverage": s.coverage,
            "coverage_peaks": float(inside[peaks].mean()) if peaks.any() else None,
            "coverage_peak_runs": float(inside[runs].mean()) if runs.any() else None,
            "coverage_forecast_peaks": float(inside[expected].mean()) if expected.any() else None}
    for h in HORIZONS:
        best = min(out[b][h]["mae"] for b in BASELINES if b in out)
        for m in out:
            out[m][h]["x_best_baseline"] = out[m][h]["mae"] / best if best > 0 else None
    picked = {}
    for name, by_h in sel.choice().items():
        picked[name] = {h: by_h[h]["pool"] for h in HORIZONS}
    return out, sel, picked


def allocation_table(setup, model) -> dict:
    keys = [f.key for f in setup.mapping.flows]
    rows = {}
    for p in (*POLICIES, UNCAPPED):
        kind = "predictive" if p == UNCAPPED else p
        res = simulate(make_policy(kind, setup, model if kind == "predictive" else None,
                                   quantile=QUANTILE, spend_cap=p != UNCAPPED),
                       setup.demand, setup.step_trace_s, keys)
        rows[p] = summarise(res)
    for s in rows.values():
        s["x_reactive"] = s["reserved_mbit"] / max(rows["reactive"]["reserved_mbit"], 1e-9)
        s["x_oracle"] = s["reserved_mbit"] / max(rows["oracle"]["reserved_mbit"], 1e-9)
    return rows


def _round_ms(s: dict) -> str:
    """A lab row's read / decide / apply 90th percentiles, ms (what makes a step late)."""
    return " / ".join("-" if s.get(k) is None else f"{s[k]:.0f}"
                      for k in ("read_p90_ms", "decide_p90_ms", "apply_p90_ms"))


def lab_table(sc: Scenario, setup, model, days: float, out: Path, console: Console) -> dict:
    """The first ``days`` of the scenario's test window replayed on the lab, every policy; the
    predictive one on ``model`` (fitted on the same history)."""
    from netshadow.replaycmd import LabSession, run_all

    lab_setup = prepare(load_spec(sc.spec), sc.trace, sc.mapping, sc.compress,
                        setup.times[0].strftime("%Y-%m-%dT%H:%M:%S"), days)
    with LabSession(sc.spec, "ngl", out / sc.name / "lab", console) as s:
        results = run_all(lab_setup, list(POLICIES), s.lab, s.ctl.url, s.token, console, model,
                          quantile=QUANTILE)
    # a step of a few frames is measured in whole frames: one frame more or less than the rate
    # allows is a violation the policy did not cause
    frames = np.median(lab_setup.demand, axis=0) * 1e6 * lab_setup.step_wall_s / (1514 * 8)
    rows: dict = {"_few_frames": {"/".join(f.key): round(float(n), 1) for f, n in
                                  zip(lab_setup.mapping.flows, frames, strict=True) if n < FEW_FRAMES}}
    for p, r in results.items():
        m = summarise(r)
        rows[p] = {k: m[k] for k in ("steps", "violation_steps", "violation_s", "reserved_mbit",
                                     "peaks", "peaks_preallocated", "late_steps", "read_p90_ms",
                                     "decide_p90_ms", "apply_p90_ms")}
    for p in POLICIES:
        r = rows[p]
        r["x_reactive"] = r["reserved_mbit"] / max(rows["reactive"]["reserved_mbit"], 1e-9)
        r["x_oracle"] = r["reserved_mbit"] / max(rows["oracle"]["reserved_mbit"], 1e-9)
        r["violation_s_x_reactive"] = (r["violation_s"] / rows["reactive"]["violation_s"]
                                       if rows["reactive"]["violation_s"] else None)
    return rows


def run_scenario(sc: Scenario, lstm: bool, console: Console, lab_days: float | None = None,
                 out: Path | None = None) -> dict:
    t0 = time.monotonic()
    setup = prepare(load_spec(sc.spec), sc.trace, sc.mapping, sc.compress, sc.start, 1.0)
    candidates = (["lstm"] if lstm else []) + ["gbm"] + list(BASELINES)
    ft, model, picked = forecast_table(setup, candidates)
    at = allocation_table(setup, model)  # the selection fitted for the table serves one step too
    doc = {"scenario": sc.name, "steps": int(setup.demand.shape[0]), "history_steps": int(len(setup.history)),
           "applications": len(setup.mapping.flows), "predictor": "selection", "picked": picked,
           "forecast": ft, "allocation": at}
    if lab_days:
        doc["lab"] = lab_table(sc, setup, model, lab_days, out, console)
        doc["lab_days"] = lab_days
    doc["seconds"] = round(time.monotonic() - t0, 1)
    show(doc, console)
    return doc


# ---------------------------------------------------------------------- output
def show(doc: dict, console: Console) -> None:
    t = Table(title=f"{doc['scenario']}: {doc['steps']} test steps after {doc['history_steps']}, "
                    f"{doc['applications']} applications ({doc['seconds']} s)")
    t.add_column("forecaster")
    for h in HORIZONS:
        t.add_column(f"MAE h={h}", justify="right")
        t.add_column("x best", justify="right")
    t.add_column("cov h=1", justify="right")
    t.add_column("cov peaks", justify="right")
    t.add_column("cov peak runs", justify="right")
    t.add_column("cov peak forecast", justify="right")
    for m, by_h in doc["forecast"].items():
        cells = []
        for h in HORIZONS:
            cells += [f"{by_h[h]['mae']:.3f}", f"{by_h[h]['x_best_baseline']:.2f}"]
        cp, cr, cf = (by_h[1].get(k) for k in ("coverage_peaks", "coverage_peak_runs",
                                                "coverage_forecast_peaks"))
        t.add_row(m, *cells, f"{by_h[1]['coverage']:.0%}",
                  *("-" if c is None else f"{c:.0%}" for c in (cp, cr, cf)))
    console.print(t)
    a = Table(title=f"{doc['scenario']}: idealised allocation (predictive on {doc['predictor']})")
    for c in ("policy", "violated steps", "violation-s", "reserve x reactive", "x oracle", "peaks"):
        a.add_column(c, justify="right")
    for p, s in doc["allocation"].items():
        a.add_row(p, str(s["violation_steps"]), f"{s['violation_s']:.0f}", f"{s['x_reactive']:.3f}",
                  f"{s['x_oracle']:.3f}", f"{s['peaks_preallocated']}/{s['peaks']}")
    console.print(a)
    if "lab" in doc:
        b = Table(title=f"{doc['scenario']}: on the lab, the first {doc['lab_days']:g} day of the test day")
        for c in ("policy", "violated steps", "violation-s", "x reactive's violation-s",
                  "reserve x reactive", "x oracle", "peaks", "late steps", "read / decide / apply p90 ms"):
            b.add_column(c, justify="right")
        for p in POLICIES:
            s = doc["lab"][p]
            vx = s["violation_s_x_reactive"]
            b.add_row(p, f"{s['violation_steps']}/{s['steps']}", f"{s['violation_s']:.0f}",
                      "-" if vx is None else f"{vx:.2f}", f"{s['x_reactive']:.3f}",
                      f"{s['x_oracle']:.3f}", f"{s['peaks_preallocated']}/{s['peaks']}",
                      str(s["late_steps"]), _round_ms(s))
        console.print(b)
        for key, n in doc["lab"]["_few_frames"].items():
            console.print(f"[yellow]note: {key} sends a median {n:g} frames per lab step: whole frames "
                          f"quantise its rate by up to {100 / max(n, 1):.0f} %[/]")


def summary(docs: list[dict]) -> dict:
    """Median and worst scenario of the figures the profiler and the planner are judged by."""
    figs: dict[str, list[tuple[float, str]]] = {}

    def add(key: str, value: float | None, name: str) -> None:
        if value is not None and np.isfinite(value):
            figs.setdefault(key, []).append((float(value), name))

    for d in docs:
        n = d["scenario"]
        model = d["predictor"]
        for h in HORIZONS:
            add(f"{model} MAE x best baseline, h={h}", d["forecast"][model][h]["x_best_baseline"], n)
        add(f"{model} 10-90% coverage, h=1", d["forecast"][model][1]["coverage"], n)
        add(f"{model} 10-90% coverage in peaks, h=1", d["forecast"][model][1]["coverage_peaks"], n)
        add(f"{model} 10-90% coverage in peak runs (2+ steps), h=1",
            d["forecast"][model][1].get("coverage_peak_runs"), n)
        add(f"{model} 10-90% coverage where a peak is forecast, h=1",
            d["forecast"][model][1].get("coverage_forecast_peaks"), n)
        pr, re_ = d["allocation"]["predictive"], d["allocation"]["reactive"]
        add("predictive violated-step share", pr["violation_steps"] / d["steps"] / d["applications"], n)
        add("predictive - reactive violated steps", pr["violation_steps"] - re_["violation_steps"], n)
        add("predictive reserve x reactive", pr["x_reactive"], n)
        add("predictive reserve x oracle", pr["x_oracle"], n)
        un = d["allocation"][UNCAPPED]
        add("uncapped: violated-step share", un["violation_steps"] / d["steps"] / d["applications"], n)
        add("uncapped: reserve x reactive", un["x_reactive"], n)
        if "lab" in d:
            lp, lr = d["lab"]["predictive"], d["lab"]["reactive"]
            add("lab: predictive - reactive violated steps", lp["violation_steps"] - lr["violation_steps"], n)
            add("lab: predictive reserve x reactive", lp["x_reactive"], n)
            add("lab: predictive reserve x oracle", lp["x_oracle"], n)
    # worst: the highest value, except for coverage, where the lowest is worst
    out = {}
    for k, vals in figs.items():
        arr = np.array([v for v, _ in vals])
        worst = min(vals) if "coverage" in k else max(vals)
        out[k] = {"median": float(np.median(arr)), "worst": worst[0], "worst_scenario": worst[1],
                  "scenarios": len(vals)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "out" / "generalisation"))
    ap.add_argument("--no-lstm", action="store_true", help="without the LSTM (no TensorFlow)")
    ap.add_argument("--only", help="run the scenarios whose name contains this (comma-separated: "
                                   "any of these)")
    ap.add_argument("--data", default=str(DATA), help="the shared data directory (default %(default)s)")
    ap.add_argument("--lab", default=LAB_SCENARIOS,
                    help="scenarios (names, comma-separated) also replayed on a lab; '' for none "
                         "(default %(default)s)")
    ap.add_argument("--lab-days", type=float, default=LAB_DAYS,
                    help="days of the test day replayed on the lab, at 1 s per step (default %(default)s)")
    a = ap.parse_args()
    out, data = Path(a.out), Path(a.data)
    console = Console(width=140)
    if not (data / ABILENE_FILE).exists() or not (data / "nab").is_dir():
        console.print(f"needs {data / ABILENE_FILE} and {data / 'nab'}")
        return 2
    every = scenarios(data, out)
    only = [x for x in (a.only or "").split(",") if x]
    suite = [s for s in every if not only or any(x in s.name for x in only)]
    console.print(f"{len(suite)} scenarios: {', '.join(s.name for s in suite)}")
    on_lab = {n for n in a.lab.split(",") if n}
    unknown = on_lab - {s.name for s in every}
    if unknown:
        console.print(f"--lab: no such scenario: {sorted(unknown)}")
        return 2
    if on_lab and (os.geteuid() != 0 or not shutil.which("ovs-vsctl")):
        console.print("--lab: lab replays need root and Open vSwitch; skipped (--lab '' to say so)")
        on_lab = set()
    docs = [run_scenario(s, not a.no_lstm, console, a.lab_days if s.name in on_lab else None, out)
            for s in suite]
    summ = summary(docs)
    t = Table(title=f"median and worst over {len(docs)} scenarios")
    for c in ("figure", "median", "worst", "worst scenario"):
        t.add_column(c)
    for k, v in summ.items():
        t.add_row(k, f"{v['median']:.3f}", f"{v['worst']:.3f}", v["worst_scenario"])
    console.print(t)
    (out / "generalisation.json").write_text(json.dumps({"scenarios": docs, "summary": summ},
                                                        indent=1, default=float))
    console.print(f"wrote {out / 'generalisation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
