"""Time series input: the wide layout (a time column, one column per series) as a ``SeriesSet``.

``SeriesSet`` invariants (checked in the constructor):

* a regular time index: ``start`` (UTC) plus ``i * step_s`` for row ``i``, ``step_s > 0``;
* ``values`` is a read-only float64 array of shape (rows, series), rows >= 2;
* every value is finite and >= 0, or NaN (a gap); names are unique and non-empty.

How :func:`load_wide_csv` treats imperfect input (each treatment is counted in the
:class:`LoadReport`, never silent):

* the time column is ``time`` or ``timestamp``: ISO 8601 text (UTC unless it has an offset) or,
  when every value is a number, seconds since the epoch; rows are sorted by time;
* the step is the median difference between consecutive times; a time off the grid is moved to
  the nearest grid point; when two rows land on one point (duplicate timestamps) the first is kept;
* grid points without a row become gaps (NaN); gaps of at most ``fill_limit`` steps are filled by
  linear interpolation, longer gaps stay NaN (models skip windows that touch them);
* an empty cell is a gap; a value that is not a number, infinite or negative is an error naming
  the series, the time and the value;
* a constant series is valid (models scale it with a unit scale);
* the file may be at most :data:`MAX_CSV_BYTES` and the regular grid at most :data:`MAX_CELLS`
  cells (rows x series): two rows decades apart at a one-second step would otherwise ask for
  billions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MAX_CELLS = 20_000_000  # 160 MB of float64
MAX_CSV_BYTES = 128 * 1024 * 1024


class SeriesError(ValueError):
    """Invalid series input; the message names the series (or file), the time and the value."""


# the metrics a tenant application's series measure, and the one unit each is kept in
UNITS = {"bandwidth": "Mbit/s", "cpu": "cores", "memory": "MiB"}


@dataclass(frozen=True, order=True)
class SeriesKey:
    """One tenant application's series: (tenant, application, metric), metric one of
    :data:`UNITS`. ``name`` is the one spelling used everywhere a series is named by a string
    (``SeriesSet.names``, ``Forecast`` series, the loop's records): ``tenant/app/metric``."""

    tenant: str
    app: str
    metric: str = "bandwidth"

    def __post_init__(self):
        for fld in ("tenant", "app"):
            v = getattr(self, fld)
            if not isinstance(v, str) or not v or "/" in v:
                raise SeriesError(f"{fld}: must be a non-empty name without '/' (got {v!r})")
        if self.metric not in UNITS:
            raise SeriesError(f"metric: must be one of {', '.join(UNITS)} (got {self.metric!r})")

    @property
    def name(self) -> str:
        return f"{self.tenant}/{self.app}/{self.metric}"

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def app_key(self) -> tuple[str, str]:
        """(tenant, app): how plans and the allocator name the application."""
        return (self.tenant, self.app)

    @classmethod
    def parse(cls, name: str) -> SeriesKey:
        parts = name.split("/") if isinstance(name, str) else []
        if len(parts) != 3:
            raise SeriesError(f"series: a name is tenant/app/metric (got {str(name)[:80]!r})")
        return cls(*parts)


@dataclass(frozen=True)
class LoadReport:
    rows_read: int = 0
    reordered: int = 0
    duplicates_dropped: int = 0
    snapped_to_grid: int = 0
    missing_steps: int = 0
    gaps_filled: int = 0
    gap_cells_left: int = 0


@dataclass(frozen=True)
class SeriesSet:
    start: pd.Timestamp
    step_s: float
    names: tuple[str, ...]
    values: np.ndarray = field(repr=False)

    def __post_init__(self):
        v = np.asarray(self.values, dtype="float64")
        if v.ndim != 2 or v.shape[0] < 2 or v.shape[1] != len(self.names) or not self.names:
            raise SeriesError(f"values: shape {v.shape} does not match {len(self.names)} names "
                              "with at least 2 rows")
        if not self.step_s > 0:
            raise SeriesError(f"step_s: must be > 0 (got {self.step_s!r})")
        if len(set(self.names)) != len(self.names) or any(not n for n in self.names):
            raise SeriesError(f"names: must be unique and non-empty (got {self.names!r})")
        bad = ~np.isnan(v) & ((v < 0) | ~np.isfinite(v))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise SeriesError(f"{self.names[c]}: value {float(v[r, c])!r} at {self.time(r)} is negative "
                              "or infinite")
        v = v.copy()
        v.flags.writeable = False
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "start", pd.Timestamp(self.start).tz_localize("UTC")
                           if pd.Timestamp(self.start).tzinfo is None else pd.Timestamp(self.start))

    @property
    def rows(self) -> int:
        return self.values.shape[0]

    def time(self, i: int) -> pd.Timestamp:
        return self.start + pd.Timedelta(seconds=self.step_s * i)

    def times(self) -> pd.DatetimeIndex:
        return pd.date_range(self.start, periods=self.rows, freq=pd.Timedelta(seconds=self.step_s))

    def index_of(self, when: str | pd.Timestamp) -> int:
        """Row of the first time >= ``when``."""
        t = pd.Timestamp(when)
        if t.tzinfo is None:
            t = t.tz_localize("UTC")
        i = int(np.ceil((t - self.start).total_seconds() / self.step_s))
        if not 0 < i < self.rows:
            raise SeriesError(f"test_start: {when} is outside the data ({self.time(0)} to "
                              f"{self.time(self.rows - 1)})")
        return i

    def slice(self, lo: int, hi: int) -> SeriesSet:
        return SeriesSet(self.time(lo), self.step_s, self.names, self.values[lo:hi])

    def select(self, names: list[str]) -> SeriesSet:
        idx = [self.names.index(n) for n in names]
        return SeriesSet(self.start, self.step_s, tuple(names), self.values[:, idx])


def _fill_short_gaps(v: np.ndarray, limit: int) -> tuple[np.ndarray, int]:
    """Linear interpolation inside gaps of at most ``limit`` rows (not at the edges)."""
    out = v.copy()
    filled = 0
    for c in range(v.shape[1]):
        col = out[:, c]
        nan = np.isnan(col)
        if not nan.any():
            continue
        i = 0
        while i < len(col):
            if nan[i]:
                j = i
                while j < len(col) and nan[j]:
                    j += 1
                if i > 0 and j < len(col) and j - i <= limit:
                    col[i:j] = np.interp(np.arange(i, j), [i - 1, j], [col[i - 1], col[j]])
                    filled += j - i
                i = j
            else:
                i += 1
    return out, filled


def from_frame(df: pd.DataFrame, source: str = "<frame>",
               fill_limit: int = 3) -> tuple[SeriesSet, LoadReport]:
    tcol = "time" if "time" in df.columns else "timestamp" if "timestamp" in df.columns else None
    if tcol is None:
        raise SeriesError(f"{source}: time: no 'time' (or 'timestamp') column; columns are "
                          f"{[str(c)[:40] for c in list(df.columns)[:5]]}")
    names = [c for c in df.columns if c != tcol]
    if not names:
        raise SeriesError(f"{source}: columns: no series columns besides {tcol!r}")
    epoch = pd.api.types.is_numeric_dtype(df[tcol]) and not pd.api.types.is_bool_dtype(df[tcol])
    try:
        if epoch:
            times = pd.to_datetime(df[tcol], unit="s", utc=True)
        else:
            try:
                times = pd.to_datetime(df[tcol], utc=True, format="ISO8601")
            except ValueError:  # other layouts, parsed one by one (no format guessing warning)
                times = pd.to_datetime(df[tcol], utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError) as e:
        raise SeriesError(f"{source}: {tcol}: holds a value that is not a time: "
                          f"{str(e)[:120]}") from None
    if times.isna().any():
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise SeriesError(f"{source}: {tcol}: row {i + 2} has no time")
    reordered = int((times.diff() < pd.Timedelta(0)).sum())
    data = {}
    for n in names:
        col = pd.to_numeric(df[n], errors="coerce")
        bad = col.isna() & df[n].notna() & (df[n].astype(str).str.strip() != "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SeriesError(f"{n}: value {df[n].iloc[i]!r} at {times.iloc[i]} is not a number")
        data[n] = col.to_numpy(dtype="float64")
        if np.isnan(data[n]).all():
            raise SeriesError(f"{source}: {str(n)[:60]}: no values at all (every cell is empty, or "
                              "the rows have fewer fields than the header)")
    frame = pd.DataFrame(data, index=times).sort_index()
    if len(frame) < 2:
        raise SeriesError(f"{source}: rows: needs at least 2 rows (got {len(frame)})")
    start = frame.index[0]
    offsets = (frame.index - start).total_seconds().to_numpy()  # seconds, whatever the resolution
    diffs = np.diff(offsets)
    step = float(np.median(diffs[diffs > 0])) if (diffs > 0).any() else 0.0
    if step <= 0:
        raise SeriesError(f"{source}: {tcol}: all rows have the same time")
    if (offsets[-1] / step + 1) * len(names) > MAX_CELLS:
        raise SeriesError(f"{source}: {tcol}: {frame.index[0]} to {frame.index[-1]} at a {step:g} s step is "
                          f"{offsets[-1] / step + 1:.0f} rows, more than {MAX_CELLS} cells in all")
    pos = np.round(offsets / step).astype(int)
    snapped = int(np.sum(np.abs(offsets - pos * step) > 1e-6))
    keep = ~pd.Series(pos).duplicated(keep="first").to_numpy()
    rows = pos[-1] + 1
    values = np.full((rows, len(names)), np.nan)
    values[pos[keep]] = frame.to_numpy()[keep]
    for c, n in enumerate(names):
        col = values[:, c]
        bad = ~np.isnan(col) & ((col < 0) | ~np.isfinite(col))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise SeriesError(f"{n}: value {float(col[r])!r} at {start + pd.Timedelta(seconds=r * step)} is "
                              "negative or infinite; bandwidth, CPU and memory cannot be")
    missing = int(rows - keep.sum())
    values, filled = _fill_short_gaps(values, fill_limit)
    report = LoadReport(len(df), reordered, int((~keep).sum()), snapped, missing, filled,
                        int(np.isnan(values).sum()))
    return SeriesSet(start, step, tuple(names), values), report


def load_wide_csv(path: str | Path, fill_limit: int = 3) -> tuple[SeriesSet, LoadReport]:
    """Read a wide CSV (``time`` + one column per series) of at most :data:`MAX_CSV_BYTES`; see the
    module docstring."""
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        raise SeriesError(f"csv: no such file: {path}") from None
    except OSError as e:
        raise SeriesError(f"{path}: file: cannot be read: {e.strerror}") from None
    if size > MAX_CSV_BYTES:
        raise SeriesError(f"{path}: file: {size} bytes, more than the limit of {MAX_CSV_BYTES}")
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise SeriesError(f"csv: no such file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise SeriesError(f"{path}: not a readable CSV: {e}") from None
    return from_frame(df, str(path), fill_limit)
