"""Should the selection's candidates come from Nixtla's libraries? ``statsforecast``'s AutoETS,
AutoTheta and MSTL (trend by AutoETS), and ``neuralforecast``'s N-HiTS trained locally on the
CPU, against netshadow's own candidates (persistence, seasonal naive, moving average, the
grid-search Holt-Winters and, with ``--lstm``, the LSTM) on the generalisation suite's scenarios
(:mod:`benchmarks.generalisation`, built at run time from ``../shared/data``).

Each model is fitted once on the history before the test day; then, from every ``--stride``-th
step of the test day as origin, it forecasts 1, 3 and 12 steps ahead from all the data up to that
origin without refitting (statsforecast's ``forward``, neuralforecast's ``predict`` on the newer
data, the baselines' and the LSTM's aligned forecasts). Printed per scenario: MAE per horizon for
every model and its ratio to the best of netshadow's baselines; then per model the median and the
worst scenario's ratio, the fitting time and the time of one forecast from one origin.

The ``ets`` row is netshadow's candidate :class:`models.ets.ETS` (statsforecast's AutoETS fitted
per series, forecast by netshadow's one-pass projection); ``sf_autoets`` is the same library model
forecast by the library's ``forward`` from every origin. statsforecast is a netshadow dependency
for that candidate (the ``models`` extra); neuralforecast is not, and this script is the evidence
for that choice. A family
whose library is not installed is left out and said so::

    .venv/bin/pip install statsforecast neuralforecast
    .venv/bin/python benchmarks/library_candidates.py [--stride 12] [--lstm] [--mstl] [--only nab]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.generalisation import ABILENE_FILE, DATA, scenarios  # noqa: E402
from models.baselines import all_baselines, infer_season  # noqa: E402
from models.series import SeriesSet  # noqa: E402
from netshadow.replaycmd import prepare  # noqa: E402
from topologies import load_spec  # noqa: E402

HORIZONS = (1, 3, 12)
OURS = ("persistence", "seasonal_naive", "moving_average", "holt_winters", "autoregression")
MAX_ETS_SEASON = 24  # statsforecast's ETS, like R's ets, fits no season longer than this


NHITS_STEPS = 300  # training steps (batches of windows); the defaults of the library otherwise


def library_models(season: int, mstl: bool) -> dict:
    try:
        from statsforecast.models import MSTL, AutoETS, AutoTheta
    except ImportError:
        return {}
    out = {"sf_autoets": lambda: AutoETS(season_length=season if season <= MAX_ETS_SEASON else 1),
           "sf_autotheta": lambda: AutoTheta(season_length=season)}
    if mstl:  # its forward decomposes the whole series again: about a second per origin
        out["sf_mstl"] = lambda: MSTL(season_length=season)
    return out


def neural(hist: np.ndarray, full: np.ndarray, origins: list[int], season: int, add) -> dict | None:
    """N-HiTS on every series at once (one global model), input window one season (at most two
    days of 5-minute steps); None when neuralforecast is not installed."""
    try:
        import logging

        import pandas as pd
        from neuralforecast import NeuralForecast
        from neuralforecast.models import NHITS
    except ImportError:
        return None
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    def frame(v: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"unique_id": np.repeat(np.arange(v.shape[1]), len(v)),
                             "ds": np.tile(np.arange(len(v)), v.shape[1]),
                             "y": np.nan_to_num(v.T.reshape(-1))})

    h = max(HORIZONS)
    size = int(min(max(season, 2 * h), 576, len(hist) // 3))
    nf = NeuralForecast(models=[NHITS(h=h, input_size=size, max_steps=NHITS_STEPS, random_seed=0,
                                      scaler_type="robust", accelerator="cpu", logger=False,
                                      enable_progress_bar=False, enable_model_summary=False)],
                        freq=1)
    t = time.monotonic()
    nf.fit(frame(hist))
    fit_s = time.monotonic() - t
    fc_s = 0.0
    for o in origins:
        t = time.monotonic()
        p = nf.predict(df=frame(full[: o + 1]))
        fc_s += time.monotonic() - t
        col = [c for c in p.columns if c.startswith("NHITS")][0]
        for j in range(full.shape[1]):
            add("nf_nhits", o, j, np.maximum(p[p["unique_id"] == j][col].to_numpy(), 0.0))
    return {"fit_s": fit_s, "forecast_ms": 1000 * fc_s / max(1, len(origins))}


def score(setup, stride: int, lstm: bool, mstl: bool) -> tuple[dict, dict]:
    """({model: {h: MAE}}, {model: {"fit_s", "forecast_ms"}}) on the test day."""
    hist, test = setup.history, setup.demand
    full = np.vstack([hist, test])
    n0 = len(hist)
    origins = list(range(n0 - 1, len(full) - 1, stride))
    names = tuple(f"s{j}" for j in range(hist.shape[1]))
    hs = SeriesSet(setup.start, setup.step_trace_s, names, hist)
    season = infer_season(hs)
    preds: dict[str, dict[int, list]] = {}
    times: dict[str, dict] = {}

    def add(name, o, j, fc):  # fc[h - 1]: the forecast of step o + h from origin o
        for h in HORIZONS:
            if o + h < len(full):
                preds.setdefault(name, {}).setdefault(h, []).append(abs(fc[h - 1] - full[o + h, j]))

    for b in all_baselines(season):
        t = time.monotonic()
        b.fit(hs)
        fit_s = time.monotonic() - t
        t = time.monotonic()
        ext = np.vstack([full, np.full((max(HORIZONS), full.shape[1]), np.nan)])
        aligned = [b.point(ext, h) for h in range(1, max(HORIZONS) + 1)]  # row i from i - h
        per = (time.monotonic() - t) / (len(full) * full.shape[1])
        for o in origins:
            for j in range(full.shape[1]):
                add(b.name, o, j, [aligned[h - 1][o + h, j] for h in range(1, max(HORIZONS) + 1)])
        times[b.name] = {"fit_s": fit_s, "forecast_ms": 1000 * per}
    if lstm:
        from planner.forecasters import ForecasterChoice, fit

        t = time.monotonic()
        m, _ = fit(ForecasterChoice("lstm", 0.9, max(HORIZONS), epochs=20), hs)
        fit_s = time.monotonic() - t
        ext = np.vstack([full, np.full((max(HORIZONS), full.shape[1]), np.nan)])
        t = time.monotonic()
        aligned = [m.forecast(ext, h, setup.start)[0] for h in range(1, max(HORIZONS) + 1)]
        per = (time.monotonic() - t) / (len(full) * full.shape[1])
        for o in origins:
            for j in range(full.shape[1]):
                add("lstm", o, j, [aligned[h - 1][o + h, j] for h in range(1, max(HORIZONS) + 1)])
        times["lstm"] = {"fit_s": fit_s, "forecast_ms": 1000 * per}
    nt = neural(hist, full, origins, season, add)
    if nt is not None:
        times["nf_nhits"] = nt
    for name, make in library_models(season, mstl).items():
        fit_s, fc_s, n = 0.0, 0.0, 0
        for j in range(full.shape[1]):
            m = make()
            t = time.monotonic()
            m.fit(np.nan_to_num(hist[:, j]).astype(float))
            fit_s += time.monotonic() - t
            for o in origins:
                t = time.monotonic()
                f = m.forward(np.nan_to_num(full[: o + 1, j]).astype(float), h=max(HORIZONS))["mean"]
                fc_s += time.monotonic() - t
                n += 1
                add(name, o, j, np.maximum(f, 0.0))
        times[name] = {"fit_s": fit_s, "forecast_ms": 1000 * fc_s / max(n, 1)}
    mae = {m: {h: float(np.nanmean(v)) for h, v in by.items()} for m, by in preds.items()}
    return mae, times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=12, help="steps between origins (default 12)")
    ap.add_argument("--only", help="the scenarios whose name contains this")
    ap.add_argument("--lstm", action="store_true", help="netshadow's LSTM too (TensorFlow)")
    ap.add_argument("--mstl", action="store_true", help="statsforecast's MSTL too (slow: it "
                    "decomposes the series again for every origin)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(ROOT / "out" / "library_candidates"))
    a = ap.parse_args()
    console = Console(width=140)
    data, out = Path(a.data), Path(a.out)
    if not (data / ABILENE_FILE).exists():
        console.print(f"needs {data / ABILENE_FILE} and {data / 'nab'}")
        return 2
    for lib in ("statsforecast", "neuralforecast"):
        try:
            __import__(lib)
        except ImportError:
            console.print(f"{lib} is not installed: its models are left out")
    if a.stride < 1:
        console.print(f"--stride: must be >= 1 (got {a.stride})")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    suite = [s for s in scenarios(data, out) if not a.only or a.only in s.name]
    docs = []
    for sc in suite:
        setup = prepare(load_spec(sc.spec), sc.trace, sc.mapping, sc.compress, sc.start, 1.0)
        mae, times = score(setup, a.stride, a.lstm, a.mstl)
        ratio = {m: {h: mae[m][h] / min(mae[b][h] for b in OURS) for h in HORIZONS} for m in mae}
        docs.append({"scenario": sc.name, "mae": mae, "x_best_ours": ratio, "times": times})
        t = Table(title=f"{sc.name}: MAE on the test day, origins every {a.stride} steps")
        t.add_column("model")
        for h in HORIZONS:
            t.add_column(f"h={h}", justify="right")
            t.add_column("x best ours", justify="right")
        t.add_column("fit s", justify="right")
        t.add_column("ms/forecast", justify="right")
        for m in mae:
            cells = [c for h in HORIZONS for c in (f"{mae[m][h]:.3f}", f"{ratio[m][h]:.2f}")]
            t.add_row(m, *cells, f"{times[m]['fit_s']:.2f}", f"{times[m]['forecast_ms']:.3f}")
        console.print(t)
    t = Table(title=f"x the best of netshadow's baselines over {len(docs)} scenarios: median / worst")
    t.add_column("model")
    for h in HORIZONS:
        t.add_column(f"h={h}", justify="right")
    t.add_column("fit s (median)", justify="right")
    t.add_column("ms/forecast (median)", justify="right")
    summary = {}
    for m in docs[0]["mae"]:
        row = []
        for h in HORIZONS:
            r = np.array([d["x_best_ours"][m][h] for d in docs])
            worst = docs[int(np.argmax(r))]["scenario"]
            summary.setdefault(m, {})[h] = {"median": float(np.median(r)), "worst": float(r.max()),
                                            "worst_scenario": worst}
            row.append(f"{np.median(r):.3f} / {r.max():.3f}")
        fit_s = float(np.median([d["times"][m]["fit_s"] for d in docs]))
        ms = float(np.median([d["times"][m]["forecast_ms"] for d in docs]))
        t.add_row(m, *row, f"{fit_s:.2f}", f"{ms:.3f}")
    console.print(t)
    (out / "candidates.json").write_text(json.dumps({"scenarios": docs, "summary": summary}, indent=1))
    console.print(f"wrote {out / 'candidates.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
