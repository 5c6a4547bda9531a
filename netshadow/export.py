"""``netshadow telemetry export``: the store as one wide table, the layout the profiler reads.

Columns: ``time`` (ISO 8601, UTC), then one column per series (its name, see
:mod:`controller.telemetry.samples`), resampled to ``step`` seconds by the mean of each bucket.
Gaps are empty cells (NaN); buckets with no sample at all are present and empty too, so the time
index is regular.
"""

from __future__ import annotations

from pathlib import Path


class ExportError(ValueError):
    """Bad export arguments or an unusable store."""


def export(db: str | Path, out: str | Path, step_s: float = 1.0, prefix: str = "",
           since: float | None = None, until: float | None = None) -> tuple[int, int]:
    """Write the wide table; returns (rows, series columns)."""
    try:
        import pandas as pd
    except ImportError:
        raise ExportError("export needs pandas: pip install 'netshadow[models]'") from None
    from controller.store import Store, StoreError

    out = Path(out)
    if out.suffix not in (".csv", ".parquet"):
        raise ExportError(f"out: must end in .csv or .parquet (got {str(out)!r})")
    if not step_s > 0:
        raise ExportError(f"step: must be > 0 seconds (got {step_s!r})")
    if not Path(db).exists():
        raise ExportError(f"db: no such file: {db}")
    try:
        store = Store(db)
    except StoreError as e:
        raise ExportError(str(e)) from None
    names = [n for n in store.series_names() if n.startswith(prefix)]
    if not names:
        raise ExportError(f"db: no series starting with {prefix!r} in {db}")
    data = store.query(names, since, until, step_s)
    store.close()
    cols = {n: pd.Series({t: v for t, v in pts}, dtype="float64") for n, pts in data.items()}
    frame = pd.DataFrame(cols)
    if frame.empty:
        raise ExportError("since/until: no samples in the requested window")
    index = pd.Index(frame.index.astype("float64"))
    full = pd.Index([index.min() + i * step_s
                     for i in range(int(round((index.max() - index.min()) / step_s)) + 1)])
    frame = frame.reindex(full)
    frame.insert(0, "time", pd.to_datetime(full, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S"))
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame), len(names)
