"""Anomaly detector on the labelled NAB series in ../shared/data/nab/ (read at run time).

    .venv/bin/python benchmarks/nab_anomalies.py [--data ../shared/data/nab]

The first 15 % of each series is the reference (NAB's probationary period); events after it are
scored against NAB's labelled windows: precision (events inside a window / events), recall
(windows with an event / windows) and the mean delay from window start to the first event. The
default detector (persistence forecast, 0.5 %-99.5 % interval, threshold 0.5) is reported first;
the grid below it shows how sensitive the result is to the model and threshold (chosen before
looking: the default is not tuned on these labels).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models.anomaly import DetectorSettings, IntervalDetector, score_against_windows
from models.baselines import HoltWinters, MovingAverage, Persistence
from models.series import load_wide_csv


def run(data: Path, model_cls, threshold: float) -> list:
    labels = json.loads((data / "anomaly_windows_from_NAB_labels_combined_windows.json").read_text())
    out = []
    for key, windows in labels.items():
        s, _ = load_wide_csv(data / Path(key).name)
        ref = int(s.rows * 0.15)
        det = IntervalDetector(model_cls(), DetectorSettings(threshold=threshold)).fit(s.slice(0, ref))
        out.append((Path(key).stem, score_against_windows(det.detect(s, ref), windows, s.names[0])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"))
    a = ap.parse_args()
    data = Path(a.data)
    print("default detector (persistence, threshold 0.5):")
    print(f"{'series':36s} {'events':>6} {'windows':>7} {'precision':>9} {'recall':>6} {'delay h':>8}")
    for name, sc in run(data, Persistence, 0.5):
        d = f"{sc.mean_delay_s / 3600:.1f}" if sc.mean_delay_s is not None else "-"
        print(f"{name:36s} {sc.events:>6} {sc.windows:>7} {sc.precision:>9.2f} {sc.recall:>6.2f} {d:>8}")
    print("\nsensitivity (precision / recall per series):")
    for cls in (Persistence, MovingAverage, HoltWinters):
        for thr in (0.25, 0.5, 1.0):
            cells = [f"{sc.precision:.2f}/{sc.recall:.2f}" for _, sc in run(data, cls, thr)]
            print(f"{cls.name:15s} threshold {thr:<4} " + "  ".join(cells))


if __name__ == "__main__":
    main()
