"""``netshadow tpp``: the Traffic Pattern Profiler's commands (baselines; the LSTM joins them)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_evaluate(csv: str, horizons: list[int], test_fraction: float | None, test_start: str | None,
                 json_out: str | None, plot_out: str | None, season: int | None,
                 lstm: bool = True, model_dir: str | None = None, window: int = 36,
                 epochs: int = 12, seed: int = 0, units: int = 32, patch: int = 3) -> int:
    import time

    from models.baselines import all_baselines
    from models.evaluate import evaluate, split_row
    from models.gbm import GradientBoosting
    from models.series import load_wide_csv

    console = Console(width=110)
    series, report = load_wide_csv(csv)
    ts = split_row(series, test_fraction, test_start)
    console.print(f"{csv}: {len(series.names)} series x {series.rows} steps of {series.step_s:g} s; "
                  f"test from {series.time(ts)} ({series.rows - ts} steps)")
    if report.duplicates_dropped or report.missing_steps or report.snapped_to_grid:
        console.print(f"input: {report}")
    models = all_baselines(season) + [GradientBoosting(season)]
    extra = {}
    trained = []
    if model_dir:
        from models.lstm import LSTMForecaster

        m = LSTMForecaster.load(model_dir).bind(series.slice(0, ts))
        trained.append(m)
        models.insert(0, m)
    elif lstm:
        from models.lstm import LSTMForecaster

        m = LSTMForecaster(window=window, horizon=max(horizons), epochs=epochs, seed=seed, verbose=2,
                           units=units, patch=patch)
        t0 = time.monotonic()
        m.fit(series.slice(0, ts))
        extra["lstm_train_s"] = round(time.monotonic() - t0, 1)
        extra["lstm_validation"] = m.meta.get("validation")
        console.print(f"LSTM trained in {extra['lstm_train_s']} s: {m.meta.get('validation')}")
        trained.append(m)
        models.insert(0, m)
    sel = selection(series.slice(0, ts), max(horizons), season, [m for m in trained if m.name == "lstm"],
                    console)
    if sel is not None:
        trained.append(sel)
        models.append(sel)
        extra["selection"] = sel.choice()
    scores, preds = evaluate(models, series, ts, horizons, trained=tuple(trained))
    table = Table(title="Forecast error on the test part (series units; lower is better)")
    for col in ("h", "model", "MAE", "RMSE", "MASE", "pinball q_lo", "pinball q_hi", "coverage"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    if any(s.model == "lstm" for s in scores):
        from models.evaluate import best_baseline

        for h in horizons:
            lstm_s = next(s for s in scores if s.model == "lstm" and s.horizon == h)
            b = best_baseline(scores, h)
            console.print(f"h={h}: LSTM MAE {lstm_s.mae:.3f} = {lstm_s.mae / b.mae:.3f} x best baseline "
                          f"({b.model}, {b.mae:.3f}); LSTM 10-90 % coverage {lstm_s.coverage:.1%}")
    for h in horizons:
        best = min((s for s in scores if s.horizon == h), key=lambda s: s.mae)
        for s in (x for x in scores if x.horizon == h):
            mark = "[bold]" if s is best else ""
            table.add_row(str(h), f"{mark}{s.model}", f"{mark}{s.mae:.3f}", f"{s.rmse:.3f}",
                          f"{s.mase:.3f}", f"{s.pinball_lo:.3f}", f"{s.pinball_hi:.3f}",
                          f"{s.coverage:.1%}")
    console.print(table)
    if sel is not None:
        show_choice(sel, horizons, console)
    q = models[0].quantiles
    console.print(f"interval: {q[0]:g}-{q[-1]:g} quantiles (nominal coverage {q[-1] - q[0]:.0%})")
    if json_out:
        Path(json_out).write_text(json.dumps({
            "csv": csv, "test_start": series.time(ts).isoformat(), "horizons": horizons,
            "quantiles": list(q), "scores": [s.to_dict() for s in scores], **extra}, indent=1))
        console.print(f"scores written to {json_out}")
    if plot_out:
        plot(series, ts, preds, horizons[0], plot_out)
        console.print(f"plot written to {plot_out}")
    return 0


def selection(train, horizon: int, season: int | None, lstm: list, console: Console):
    """The selection (:mod:`models.selection`) over the baselines, the gradient-boosted model and
    the LSTM evaluated beside
    it, fitted on the training part; None (with a word) when it is too short for a backtest.
    The LSTM candidate keeps the weights it was trained with on the whole training part, so its
    backtest is in-sample there: the choice leans towards it."""
    from models.baselines import all_baselines
    from models.gbm import GradientBoosting
    from models.selection import Selection

    try:
        return Selection(all_baselines(season) + [GradientBoosting(season)] + lstm, horizon=horizon,
                         fitted=tuple(lstm)).fit(train)
    except ValueError as e:
        console.print(f"no selection: {e}")
        return None


def show_choice(sel, horizons: list[int], console: Console, max_series: int = 20) -> None:
    t = Table(title="What the selection pooled on the backtest (last 20 % of the training part): "
                    "its forecast is the median of these, best first (backtest MAE, errors "
                    "clipped at the usual step's 90th percentile)")
    t.add_column("series")
    for h in horizons:
        t.add_column(f"h={h}")
    for name, by_h in list(sel.choice().items())[:max_series]:
        t.add_row(name, *(", ".join(f"{n} ({by_h[h]['rank_mae'][n]:.3g})" for n in by_h[h]["pool"])
                          for h in horizons))
    console.print(t)
    if len(sel.series.names) > max_series:
        console.print(f"... and {len(sel.series.names) - max_series} more series (in --json)")


def plot(series, test_start: int, preds: dict, horizon: int, out: str, max_series: int = 4) -> None:
    """Forecast vs actual with the interval band, for the series with the most traffic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y = series.values[test_start:]
    order = np.argsort(-np.nanmean(y, axis=0))[:max_series]
    ranked = sorted({m for m, h in preds if h == horizon},
                    key=lambda m: np.nanmean(np.abs(preds[(m, horizon)][0] - y)))
    models = ranked[:2]  # the best model (its band shaded, drawn on top) and the runner-up
    times = series.times()[test_start:]
    fig, axes = plt.subplots(len(order), 1, figsize=(11, 2.6 * len(order)), squeeze=False)
    for ax, j in zip(axes[:, 0], order):
        ax.plot(times, y[:, j], color="black", lw=0.8, label="actual")
        for m in reversed(models):
            med, lo, hi = preds[(m, horizon)]
            line, = ax.plot(times, med[:, j], lw=0.8, label=m)
            if m == models[0]:
                ax.fill_between(times, lo[:, j], hi[:, j], color=line.get_color(), alpha=0.2,
                                label=f"{m} interval")
        ax.set_title(f"{series.names[j]} - horizon {horizon}", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def run_train(csv: str, out: str, horizon: int, window: int, test_fraction: float | None,
              test_start: str | None, epochs: int, seed: int, units: int = 32,
              patch: int = 3) -> int:
    import time

    from models.evaluate import split_row
    from models.lstm import LSTMForecaster
    from models.series import load_wide_csv

    console = Console(width=110)
    series, _ = load_wide_csv(csv)
    ts = split_row(series, test_fraction, test_start)
    m = LSTMForecaster(window=window, horizon=horizon, epochs=epochs, seed=seed, verbose=1,
                       checkpoint_dir=out, units=units, patch=patch)
    t0 = time.monotonic()
    m.fit(series.slice(0, ts))
    m.meta["train_s"] = round(time.monotonic() - t0, 1)
    m.save(out)
    console.print(f"trained on {series.time(0)} .. {series.time(ts - 1)} in {m.meta['train_s']} s; "
                  f"validation: {m.meta['validation']}")
    if m.meta["fallback"]:
        console.print(f"{len(m.meta['fallback'])} series use the persistence fallback: "
                      f"{m.meta['fallback'][:10]}")
    console.print(f"model saved to {out}")
    return 0


def run_forecast(model_dir: str, csv: str, json_out: str, horizon: int | None,
                 anomaly_window: int) -> int:
    from models.anomaly import IntervalDetector
    from models.forecast import Forecast
    from models.lstm import LSTMForecaster
    from models.series import load_wide_csv

    series, _ = load_wide_csv(csv)
    m = LSTMForecaster.load(model_dir).bind(series)
    f = m.predict(horizon or m.horizon)
    anomalies = ()
    if series.rows > 2 * anomaly_window:
        det = IntervalDetector().fit(series.slice(0, series.rows - anomaly_window))
        anomalies = tuple(det.detect(series, from_row=series.rows - anomaly_window))
    f = Forecast(f.created, f.step_s, f.series, anomalies)
    Path(json_out).write_text(f.to_json())
    Console(width=110).print(f"{len(f.series)} series x {len(f.series[0].times)} steps from "
                             f"{f.created}; {len(anomalies)} anomalies in the last {anomaly_window} "
                             f"steps; written to {json_out}")
    return 0


def run_anomalies(csv: str, labels: str | None, reference_fraction: float, threshold: float,
                  json_out: str | None) -> int:
    from models.anomaly import DetectorSettings, IntervalDetector, score_against_windows
    from models.series import load_wide_csv

    console = Console(width=110)
    series, _ = load_wide_csv(csv)
    ref = int(series.rows * reference_fraction)
    det = IntervalDetector(settings=DetectorSettings(threshold=threshold)).fit(series.slice(0, ref))
    events = det.detect(series, from_row=ref)
    table = Table(title=f"Anomalies in {csv} after the reference part ({ref} steps)")
    for col in ("series", "start", "end", "score"):
        table.add_column(col)
    for a in events:
        table.add_row(a.series, a.start, a.end, f"{a.score:.2f}")
    console.print(table)
    result = {"events": [a.__dict__ for a in events]}
    if labels:
        windows = json.loads(Path(labels).read_text())
        scores = []
        for name in series.names:
            wins = next((w for k, w in windows.items() if Path(k).stem == Path(csv).stem or k == name), [])
            scores.append(score_against_windows(events, wins, name))
        for sc in scores:
            console.print(f"{sc.series}: precision {sc.precision:.2f}, recall {sc.recall:.2f} "
                          f"({sc.detected_windows}/{sc.windows} windows, {sc.events} events), "
                          f"mean delay {sc.mean_delay_s}")
        result["scores"] = [sc.__dict__ for sc in scores]
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1))
    return 0
