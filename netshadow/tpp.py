"""``netshadow tpp``: the Traffic Pattern Profiler's commands (baselines; the LSTM joins them)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table


def run_evaluate(csv: str, horizons: list[int], test_fraction: float | None, test_start: str | None,
                 json_out: str | None, plot_out: str | None, season: int | None) -> int:
    from models.baselines import all_baselines
    from models.evaluate import evaluate, test_start_row
    from models.series import load_wide_csv

    console = Console(width=110)
    series, report = load_wide_csv(csv)
    ts = test_start_row(series, test_fraction, test_start)
    console.print(f"{csv}: {len(series.names)} series x {series.rows} steps of {series.step_s:g} s; "
                  f"test from {series.time(ts)} ({series.rows - ts} steps)")
    if report.duplicates_dropped or report.missing_steps or report.snapped_to_grid:
        console.print(f"input: {report}")
    models = all_baselines(season)
    scores, preds = evaluate(models, series, ts, horizons)
    table = Table(title="Forecast error on the test part (series units; lower is better)")
    for col in ("h", "model", "MAE", "RMSE", "MASE", "pinball q_lo", "pinball q_hi", "coverage"):
        table.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for h in horizons:
        best = min((s for s in scores if s.horizon == h), key=lambda s: s.mae)
        for s in (x for x in scores if x.horizon == h):
            mark = "[bold]" if s is best else ""
            table.add_row(str(h), f"{mark}{s.model}", f"{mark}{s.mae:.3f}", f"{s.rmse:.3f}",
                          f"{s.mase:.3f}", f"{s.pinball_lo:.3f}", f"{s.pinball_hi:.3f}",
                          f"{s.coverage:.1%}")
    console.print(table)
    q = models[0].quantiles
    console.print(f"interval: {q[0]:g}-{q[-1]:g} quantiles (nominal coverage {q[-1] - q[0]:.0%})")
    if json_out:
        Path(json_out).write_text(json.dumps({
            "csv": csv, "test_start": series.time(ts).isoformat(), "horizons": horizons,
            "quantiles": list(q), "scores": [s.to_dict() for s in scores]}, indent=1))
        console.print(f"scores written to {json_out}")
    if plot_out:
        plot(series, ts, preds, horizons[0], plot_out)
        console.print(f"plot written to {plot_out}")
    return 0


def plot(series, test_start: int, preds: dict, horizon: int, out: str, max_series: int = 4) -> None:
    """Forecast vs actual with the interval band, for the series with the most traffic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y = series.values[test_start:]
    order = np.argsort(-np.nanmean(y, axis=0))[:max_series]
    models = sorted({m for m, h in preds if h == horizon})
    times = series.times()[test_start:]
    fig, axes = plt.subplots(len(order), 1, figsize=(11, 2.6 * len(order)), squeeze=False)
    for ax, j in zip(axes[:, 0], order):
        ax.plot(times, y[:, j], color="black", lw=0.8, label="actual")
        for m in models:
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
