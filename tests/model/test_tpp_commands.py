"""`netshadow tpp train` then `tpp forecast` with the saved model, end to end."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.forecast import Forecast
from netshadow.cli import main


def test_train_then_forecast(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = pd.date_range("2024-01-01", periods=700, freq="10min")
    k = np.arange(len(t))
    df = pd.DataFrame({"time": t.strftime("%Y-%m-%dT%H:%M"),
                       "app/red/web/fwd/bps": 5e6 + 2e6 * np.sin(2 * np.pi * k / 144)
                       + rng.normal(0, 2e5, len(t)),
                       "app/red/db/fwd/bps": 1e6 + rng.normal(0, 1e5, len(t))})
    csv = tmp_path / "tel.csv"
    df.to_csv(csv, index=False)
    model = tmp_path / "model"
    assert main(["tpp", "train", "--csv", str(csv), "--out", str(model), "--horizon", "4",
                 "--window", "12", "--epochs", "3", "--test-fraction", "0.1"]) == 0
    meta = json.loads((model / "meta.json").read_text())
    assert meta["horizon"] == 4 and meta["data_end"].startswith("2024-01-05")  # training part only
    assert (model / "best.weights.h5").exists()  # the best epoch's checkpoint is kept
    out = tmp_path / "f.json"
    assert main(["tpp", "forecast", "--model", str(model), "--csv", str(csv), "--json", str(out)]) == 0
    f = Forecast.from_json(out.read_text())
    web = f.get("app/red/web/fwd/bps")
    assert len(web.times) == 4 and web.times[0].startswith("2024-01-05T20:40")
    assert all(lo <= m <= hi for lo, m, hi in zip(web.quantile(0.1), web.median, web.quantile(0.9)))
    assert 1e6 < web.median[0] < 1e7
    # a CSV with other series than the model's is refused with a clear message
    df.rename(columns={"app/red/db/fwd/bps": "other"}).to_csv(tmp_path / "x.csv", index=False)
    assert main(["tpp", "forecast", "--model", str(model), "--csv", str(tmp_path / "x.csv"),
                 "--json", str(out)]) == 2
    assert "series differ" in capsys.readouterr().err
