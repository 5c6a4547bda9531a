"""`netshadow tpp evaluate|train|forecast|anomalies`: the traffic pattern profiler."""

from __future__ import annotations

import argparse

from ..errors import error
from .common import EXIT_INVALID


def _horizons(text: str) -> list[int]:
    try:
        hs = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not hs or any(h < 1 for h in hs):
        raise argparse.ArgumentTypeError(f"horizons must be integers >= 1: {text!r}")
    return hs


def cmd_tpp_evaluate(a) -> int:
    from models.series import SeriesError

    from ..tpp import run_evaluate

    try:
        return run_evaluate(a.csv, a.horizons, a.test_fraction, a.test_start, a.json, a.plot,
                            a.season, lstm=not a.no_lstm, model_dir=a.model, window=a.window,
                            epochs=a.epochs, seed=a.seed, units=a.units, patch=a.patch)
    except (SeriesError, ValueError) as e:
        error(f"netshadow tpp evaluate: {e}")
        return EXIT_INVALID


def _tpp(runner, name):
    def cmd(a) -> int:
        from models.series import SeriesError

        try:
            return runner(a)
        except (SeriesError, ValueError) as e:
            error(f"netshadow tpp {name}: {e}")
            return EXIT_INVALID
    return cmd


def _train(a):
    from ..tpp import run_train

    return run_train(a.csv, a.out, a.horizon, a.window, a.test_fraction, a.test_start, a.epochs,
                     a.seed, a.units, a.patch)


def _forecast(a):
    from ..tpp import run_forecast

    return run_forecast(a.model, a.csv, a.json, a.horizon, a.anomaly_window)


def _anomalies(a):
    from ..tpp import run_anomalies

    return run_anomalies(a.csv, a.labels, a.reference_fraction, a.threshold, a.json)


def register(sub) -> None:
    tpp = sub.add_parser("tpp", help="traffic pattern profiler").add_subparsers(dest="tpp_cmd",
                                                                                required=True)
    p = tpp.add_parser("evaluate", help="every model on the chronological test part, side by side")
    p.add_argument("--csv", required=True, help="wide CSV: a time column, one column per series")
    p.add_argument("--horizons", type=_horizons, default=[1, 3, 12])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fraction", type=float, help="last fraction of rows as test (default 0.2)")
    g.add_argument("--test-start", help="first test time (ISO 8601)")
    p.add_argument("--season", type=int, help="season in steps (default: inferred)")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--plot", help="write a PNG of forecast vs actual with the interval band")
    p.add_argument("--no-lstm", action="store_true", help="baselines only (no TensorFlow)")
    p.add_argument("--model", help="evaluate this saved LSTM instead of training one")
    p.add_argument("--window", type=int, default=36, help="LSTM input window in steps")
    p.add_argument("--epochs", type=int, default=12, help="LSTM maximum epochs")
    p.add_argument("--units", type=int, default=32, help="LSTM hidden units")
    p.add_argument("--patch", type=int, default=3,
                   help="window steps per recurrent step (divides the window; 3 makes inference 2-3x "
                        "faster than 1 at equal accuracy on Abilene)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tpp_evaluate)

    p = tpp.add_parser("train", help="train the LSTM on the training part and save it")
    p.add_argument("--csv", required=True)
    p.add_argument("--out", required=True, help="model directory")
    p.add_argument("--horizon", type=int, default=12)
    p.add_argument("--window", type=int, default=36)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fraction", type=float)
    g.add_argument("--test-start")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--units", type=int, default=32, help="LSTM hidden units")
    p.add_argument("--patch", type=int, default=3,
                   help="window steps per recurrent step (divides the window; 3 makes inference 2-3x "
                        "faster than 1 at equal accuracy on Abilene)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tpp(_train, "train"))

    p = tpp.add_parser("forecast", help="forecast the steps after a CSV with a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--json", required=True, help="write the Forecast here")
    p.add_argument("--horizon", type=int, help="steps (default: the model's horizon)")
    p.add_argument("--anomaly-window", type=int, default=288,
                   help="report anomalies among the last this many steps")
    p.set_defaults(func=_tpp(_forecast, "forecast"))

    p = tpp.add_parser("anomalies", help="anomalies against the forecast interval")
    p.add_argument("--csv", required=True)
    p.add_argument("--labels", help="labelled windows (NAB combined_windows layout) to score against")
    p.add_argument("--reference-fraction", type=float, default=0.15,
                   help="first part used as normal reference (NAB's probationary 15 %%)")
    p.add_argument("--threshold", type=float, default=0.5, help="score above which a point is anomalous")
    p.add_argument("--json")
    p.set_defaults(func=_tpp(_anomalies, "anomalies"))
