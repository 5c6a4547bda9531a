from __future__ import annotations

import pytest

from controller.store import Store
from controller.telemetry.samples import Sample
from netshadow.cli import main
from netshadow.export import ExportError, export

pd = pytest.importorskip("pandas", reason="export needs pandas (the [models] extra)")


@pytest.fixture
def db(tmp_path):
    s = Store(tmp_path / "t.db")
    s.write([Sample(1000.0 + i, "app/red/web/fwd/bps", float(i)) for i in range(10) if i != 4])
    s.write([Sample(1004.0, "app/red/web/fwd/bps", None, "gap")])
    s.write([Sample(1000.0 + 2 * i, "host/red/h1/cpu", 0.5) for i in range(5)])
    s.close()
    return tmp_path / "t.db"


def test_wide_csv_regular_index_with_gaps(db, tmp_path):
    rows, cols = export(db, tmp_path / "w.csv", step_s=1.0)
    assert (rows, cols) == (10, 2)
    df = pd.read_csv(tmp_path / "w.csv")
    assert list(df.columns) == ["time", "app/red/web/fwd/bps", "host/red/h1/cpu"]
    assert df["time"][0] == "1970-01-01T00:16:40"
    assert pd.isna(df["app/red/web/fwd/bps"][4]) and df["app/red/web/fwd/bps"][5] == 5.0
    assert pd.isna(df["host/red/h1/cpu"][1]) and df["host/red/h1/cpu"][2] == 0.5


def test_parquet_and_prefix(db, tmp_path):
    export(db, tmp_path / "w.parquet", step_s=2.0, prefix="app/")
    df = pd.read_parquet(tmp_path / "w.parquet")
    assert list(df.columns) == ["time", "app/red/web/fwd/bps"] and len(df) == 5


@pytest.mark.parametrize("kwargs,msg", [({"out": "x.txt"}, "out"), ({"step_s": 0}, "step"),
                                        ({"prefix": "zzz"}, "no series")])
def test_bad_arguments(db, tmp_path, kwargs, msg):
    args = {"db": db, "out": tmp_path / "w.csv", **kwargs}
    if not str(args["out"]).startswith("/"):
        args["out"] = tmp_path / args["out"]
    with pytest.raises(ExportError, match=msg):
        export(**args)


def test_cli_exit_codes(db, tmp_path, capsys):
    assert main(["telemetry", "export", "--db", str(db), "--out", str(tmp_path / "o.csv")]) == 0
    assert main(["telemetry", "export", "--db", str(tmp_path / "none.db"), "--out",
                 str(tmp_path / "o.csv")]) == 2
    assert "db: no such file" in capsys.readouterr().err
