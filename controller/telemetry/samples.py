"""Sample and series naming shared by the poller, the store, the REST API and the exporter.

A series name is slash-separated, kind first and metric last::

    app/<tenant>/<app>/<direction>/<metric>    direction fwd (client->server) | rev; metric bps | pps
    link/<a>-<b>/<from>><to>/<metric>          metric bps | util (fraction of capacity)
    switch/<switch>/<metric>                   metric rx_bps | tx_bps | flows | denied_pps
    meter/<switch>/<meter id>/<metric>         metric in_bps | drop_bps
    host/<tenant>/<host>/<metric>              metric cpu (cores) | memory_bytes | rx_bps | tx_bps

Rates are in bit/s of L2 frames (what OpenFlow counters count) or packets/s. ``value is None``
marks a gap: the interval had no trustworthy measurement, and nothing is interpolated.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("app", "link", "switch", "meter", "host")


@dataclass(frozen=True)
class Sample:
    t: float  # wall-clock seconds since the epoch
    series: str
    value: float | None  # None = gap
    note: str = ""


def app_series(tenant: str, app: str, direction: str, metric: str) -> str:
    return f"app/{tenant}/{app}/{direction}/{metric}"


def link_series(a: str, b: str, src: str, dst: str, metric: str) -> str:
    return f"link/{a}-{b}/{src}>{dst}/{metric}"


def switch_series(switch: str, metric: str) -> str:
    return f"switch/{switch}/{metric}"


def meter_series(switch: str, meter_id: int, metric: str) -> str:
    return f"meter/{switch}/{meter_id}/{metric}"


def host_series(tenant: str, host: str, metric: str) -> str:
    return f"host/{tenant}/{host}/{metric}"


def parse_series(name: str) -> dict[str, str]:
    """The fields of a series name, e.g. ``{"kind": "app", "tenant": "red", ...}``."""
    parts = name.split("/")
    kind = parts[0]
    layout = {
        "app": ("tenant", "app", "direction", "metric"),
        "link": ("link", "direction", "metric"),
        "switch": ("switch", "metric"),
        "meter": ("switch", "meter", "metric"),
        "host": ("tenant", "host", "metric"),
    }.get(kind)
    if layout is None or len(parts) != len(layout) + 1:
        raise ValueError(f"series: not a netshadow series name (got {name!r})")
    return {"kind": kind, **dict(zip(layout, parts[1:]))}
