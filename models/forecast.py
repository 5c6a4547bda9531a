"""The ``Forecast`` contract (importable without TensorFlow): what the profiler hands on.

Per series: the horizon's timestamps, the median, the interval quantiles (default 0.1 and 0.9),
the model that made it and a note (e.g. a fallback to a baseline); plus the anomalies found.
Invariants, checked on construction: quantiles strictly inside (0, 1) and sorted, every array of
horizon length, lower quantiles <= median <= upper quantiles, values finite.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

DEFAULT_QUANTILES = (0.1, 0.9)


class ForecastError(ValueError):
    """An invalid forecast; the message names the series and field."""


@dataclass(frozen=True)
class Anomaly:
    series: str
    start: str  # ISO 8601
    end: str
    score: float


@dataclass(frozen=True)
class SeriesForecast:
    name: str
    times: tuple[str, ...]
    median: tuple[float, ...]
    quantiles: tuple[tuple[float, tuple[float, ...]], ...]  # ((q, values), ...), sorted by q
    model: str
    note: str = ""

    def __post_init__(self):
        h = len(self.times)
        if h == 0 or len(self.median) != h:
            raise ForecastError(f"{self.name}: median: needs one value per time ({h})")
        qs = [q for q, _ in self.quantiles]
        if qs != sorted(qs) or any(not 0 < q < 1 or q == 0.5 for q in qs):
            raise ForecastError(f"{self.name}: quantiles: must be sorted, in (0, 1), not 0.5 (got {qs})")
        for q, vals in self.quantiles:
            if len(vals) != h or any(not math.isfinite(v) for v in vals):
                raise ForecastError(f"{self.name}: quantile {q}: needs {h} finite values")
            for i, (v, m) in enumerate(zip(vals, self.median)):
                if (q < 0.5 and v > m + 1e-9) or (q > 0.5 and v < m - 1e-9):
                    raise ForecastError(f"{self.name}: quantile {q} at {self.times[i]}: {v} is on the "
                                        f"wrong side of the median {m}")
        if any(not math.isfinite(v) for v in self.median):
            raise ForecastError(f"{self.name}: median: values must be finite")

    def quantile(self, q: float) -> tuple[float, ...]:
        if q == 0.5:
            return self.median
        for qq, vals in self.quantiles:
            if abs(qq - q) < 1e-9:
                return vals
        raise KeyError(q)


@dataclass(frozen=True)
class Forecast:
    created: str  # ISO 8601: the last observed time
    step_s: float
    series: tuple[SeriesForecast, ...]
    anomalies: tuple[Anomaly, ...] = ()

    def get(self, name: str) -> SeriesForecast:
        for s in self.series:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_json(self) -> str:
        return json.dumps({
            "created": self.created, "step_s": self.step_s,
            "series": [{"name": s.name, "times": list(s.times), "median": list(s.median),
                        "quantiles": {str(q): list(v) for q, v in s.quantiles}, "model": s.model,
                        "note": s.note} for s in self.series],
            "anomalies": [a.__dict__ for a in self.anomalies],
        }, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Forecast:
        try:
            d = json.loads(text)
            series = tuple(SeriesForecast(
                s["name"], tuple(s["times"]), tuple(float(x) for x in s["median"]),
                tuple(sorted((float(q), tuple(float(x) for x in v)) for q, v in s["quantiles"].items())),
                s["model"], s.get("note", "")) for s in d["series"])
            return cls(d["created"], float(d["step_s"]), series,
                       tuple(Anomaly(**a) for a in d.get("anomalies", [])))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ForecastError):
                raise
            raise ForecastError(f"forecast JSON: missing or malformed field: {e}") from None
