"""The policy comparison report: a console table, PNG plots, a self-contained HTML page, JSON."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from .replay_measures import compare, summarise

COLOURS = {"static": "#7f7f7f", "reactive": "#d62728", "predictive": "#1f77b4", "oracle": "#2ca02c"}


def table(summaries: dict[str, dict], title: str):
    from rich.table import Table

    t = Table(title=title)
    for col in ("policy", "violation-s", "dropped MB", "reserved Mbit/s*s", "RTT p95 ms", "probe loss",
                "peaks pre-allocated", "apply p50 ms", "decide p90 ms", "late steps"):
        t.add_column(col, justify="right" if col != "policy" else "left")
    for name, s in summaries.items():
        t.add_row(name, f"{s['violation_s']:.0f}", f"{s['dropped_mbytes']:.3f}", f"{s['reserved_mbit']:.0f}",
                  f"{s['rtt_p95_ms']:.2f}" if s["rtt_p95_ms"] is not None else "-",
                  f"{s['probe_loss']:.1%}" if s["probe_loss"] is not None else "-",
                  f"{s['peaks_preallocated']}/{s['peaks']}",
                  f"{s['apply_p50_ms']:.0f}" if s["apply_p50_ms"] is not None else "-",
                  f"{s['decide_p90_ms']:.0f}" if s["decide_p90_ms"] is not None else "-",
                  str(s["late_steps"]))
    return t


def compute_table(summaries: dict[str, dict], title: str):
    """The compute replay's table: CPU in cores, so a step's cost is CPU-seconds reserved and its
    shortfall the CPU-seconds the load asked for beyond the quota."""
    from rich.table import Table

    t = Table(title=title)
    for col in ("policy", "violation-s", "violated steps", "CPU-s short", "reserved CPU-s",
                "peaks pre-allocated"):
        t.add_column(col, justify="right" if col != "policy" else "left")
    for name, s in summaries.items():
        t.add_row(name, f"{s['violation_s']:.0f}", str(s["violation_steps"]),
                  f"{s['dropped_mbytes'] * 8:.1f}", f"{s['reserved_mbit']:.1f}",
                  f"{s['peaks_preallocated']}/{s['peaks']}")
    return t


def _plots(results: dict, out: Path, times, quantile: float = 0.9) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    any_res = next(iter(results.values()))
    for j, key in enumerate(any_res.keys):
        fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
        ax.step(times, any_res.demand[:, j], where="post", color="black", lw=2, label="demand (trace)")
        pred = results.get("predictive")
        if pred is not None and pred.band:
            ts = sorted(pred.band)
            med = [pred.band[t][0][j] for t in ts]
            up = [pred.band[t][1][j] for t in ts]
            tt = [times[t] for t in ts]
            ax.fill_between(tt, med, up, step="post", color=COLOURS["predictive"], alpha=0.18,
                            label=f"forecast median - {quantile:.0%}")
        for name, r in results.items():
            ax.step(times, r.allocated[:, j], where="post", color=COLOURS.get(name, None), lw=1.2,
                    label=f"{name} allocation")
        ax.set_ylabel("Mbit/s (L2)")
        ax.set_title(f"{key[0]}/{key[1]}: demand, forecast band and allocations")
        ax.legend(fontsize=7, ncol=3, loc="upper left")
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        f = out / f"allocation_{key[0]}_{key[1]}.png"
        fig.savefig(f)
        plt.close(fig)
        files.append(f)
    summaries = {k: summarise(r) for k, r in results.items()}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
    names = list(summaries)
    cols = [COLOURS.get(n, "#333333") for n in names]
    axes[0].bar(names, [summaries[n]["violation_s"] / 3600 for n in names], color=cols)
    axes[0].set_title("violation (application-hours of trace time)")
    axes[1].bar(names, [summaries[n]["reserved_mbit"] / 3600 for n in names], color=cols)
    axes[1].set_title("reserved bandwidth (Mbit/s x hours)")
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    f = out / "policies_cost_vs_violations.png"
    fig.savefig(f)
    plt.close(fig)
    files.append(f)
    return files


def write_report(results: dict, out: str | Path, title: str, times, meta: dict) -> Path:
    """Write ``index.html`` (plots embedded), the PNGs and ``replay.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {k: summarise(r) for k, r in results.items()}
    doc = to_json(results, meta)
    (out / "replay.json").write_text(json.dumps(doc, indent=1))
    pngs = _plots(results, out, times, float(meta.get("quantile") or 0.9))
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            n, f"{s['violation_s']:.0f}", f"{s['dropped_mbytes']:.3f}", f"{s['reserved_mbit']:.0f}",
            "-" if s["rtt_p95_ms"] is None else f"{s['rtt_p95_ms']:.2f}",
            f"{s['peaks_preallocated']}/{s['peaks']}")) + "</tr>"
        for n, s in summaries.items())
    ratios = compare(summaries)
    imgs = "".join(f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
                   f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{html.escape(p.name)}'
                   "</figcaption></figure>" for p in pngs)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
td:first-child{{text-align:left}}img{{max-width:100%}}code{{background:#f4f4f4}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{html.escape(meta.get("description", ""))}</p>
<table><tr><th>policy</th><th>violation-seconds</th><th>dropped MB</th><th>reserved Mbit/s&middot;s</th>
<th>RTT p95 ms</th><th>peaks pre-allocated</th></tr>{rows}</table>
<p>{html.escape(", ".join(f"{k} = {v:.3f}" for k, v in ratios.items() if v is not None))}</p>
{imgs}
<p>All figures are measured at the switches (meter statistics) during the replay; times are trace
time. Raw data: <code>replay.json</code>.</p></body></html>"""
    (out / "index.html").write_text(page)
    return out / "index.html"


def to_json(results: dict, meta: dict) -> dict:
    summaries = {k: summarise(r) for k, r in results.items()}
    return {
        "meta": meta,
        "summary": summaries,
        "comparison": compare(summaries),
        "runs": {k: {"keys": [list(x) for x in r.keys], "demand": np.round(r.demand, 4).tolist(),
                     "allocated": np.round(r.allocated, 4).tolist(),
                     "offered": np.round(r.offered, 4).tolist(),
                     "drop_bytes": r.drop_bytes.tolist(), "in_bytes": r.in_bytes.tolist(),
                     "apply_s": r.apply_s, "late_s": r.late_s, "read_s": r.read_s,
                     "decide_s": r.decide_s,
                     "notes": {str(t): n for t, n in r.notes.items()},
                     "band": {str(t): b for t, b in r.band.items()}}
                 for k, r in results.items()},
    }
