"""Batch inference for 500 series: the tf.function path against ``model.predict``, same batch,
same run. Uses a saved model (``--model DIR``) or a freshly built one of the default size
(timing does not depend on the weights).

    .venv/bin/python benchmarks/lstm_inference.py [--model DIR] [--series 500] [--repeat 50]
        [--patch 3]   # --patch 1: every window step is a recurrent step (about 3x slower)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--units", type=int, default=32, help="hidden units of a freshly built model")
    ap.add_argument("--patch", type=int, default=3,
                    help="window steps per recurrent step of a freshly built model (tpp's default)")
    a = ap.parse_args()
    from models.lstm import FEATURES, LSTMForecaster, _build

    if a.model:
        m = LSTMForecaster.load(a.model)
    else:
        m = LSTMForecaster(units=a.units, patch=a.patch)
        m.model = _build(m.window, m.horizon, 1, 1, m.units, m.patch)
    x = np.random.default_rng(0).normal(size=(a.series, m.window, FEATURES)).astype("float32")
    m.predict_batch(x)  # trace once
    m.model.predict(x, verbose=0)  # build the predict function once

    def timed(fn):
        out = []
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return statistics.median(out)

    fast = timed(lambda: m.predict_batch(x))
    slow = timed(lambda: m.model.predict(x, verbose=0))
    same = np.allclose(m.predict_batch(x), m.model.predict(x, verbose=0), atol=1e-5)
    print(f"{a.series} series, window {m.window} (patch {m.patch}), horizon {m.horizon}, "
          f"LSTM({m.units}); "
          f"median of {a.repeat}")
    print(f"tf.function batch : {fast * 1000:8.2f} ms")
    print(f"model.predict     : {slow * 1000:8.2f} ms")
    print(f"speed-up          : {slow / fast:8.1f} x   (outputs equal: {same})")


if __name__ == "__main__":
    main()
