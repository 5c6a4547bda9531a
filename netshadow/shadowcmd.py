"""``netshadow shadow run``: forecast-shaped traffic in a shadow replica, one report per plan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from topologies import NetworkSpec

from .errors import error


@dataclass(frozen=True)
class ShadowRunSettings:
    """One ``netshadow shadow run``, its inputs read and checked (:func:`settings`)."""

    spec: NetworkSpec
    forecast: object  # models.forecast.Forecast
    plans: tuple  # controller.plan.Plan or None (no plan)
    quantile: float = 0.5
    duration_s: float = 10.0
    tenants: tuple[str, ...] | None = None
    prefix: str = "sh1"
    rtt_bound_ms: float | None = None
    json_out: str | None = None

    def __post_init__(self):
        if not 0 < self.quantile < 1:
            raise ValueError(f"--quantile: must be in (0, 1) (got {self.quantile})")
        if not 0 < self.duration_s <= 3600:
            raise ValueError(f"--duration: must be in (0, 3600] s (got {self.duration_s})")
        if self.rtt_bound_ms is not None and not self.rtt_bound_ms > 0:
            raise ValueError(f"--rtt-bound-ms: must be > 0 (got {self.rtt_bound_ms})")


class ShadowArgError(Exception):
    """An argument of ``shadow run`` that cannot be used; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def settings(a) -> ShadowRunSettings:
    import requests

    from controller.plan import PlanError, load_plan
    from models.forecast import Forecast, ForecastError
    from topologies import load_spec, parse_spec

    if a.controller:
        try:
            data = requests.get(a.controller.rstrip("/") + "/api/v1/spec", timeout=10).json()
        except (requests.RequestException, ValueError) as e:
            raise ShadowArgError(f"--controller: cannot read the live spec: {e}", 1) from None
        spec = parse_spec(data, a.controller)
    else:
        spec = load_spec(a.spec)
    try:
        forecast = Forecast.from_json(Path(a.forecast).read_text())
    except (OSError, ForecastError) as e:
        raise ShadowArgError(f"--forecast: {e}") from None
    try:
        plans = tuple(load_plan(p, spec) for p in a.plan) or (None,)
    except PlanError as e:
        raise ShadowArgError(f"--plan: {e}") from None
    try:
        return ShadowRunSettings(spec, forecast, plans, a.quantile, a.duration,
                                 tuple(a.tenants.split(",")) if a.tenants else None, a.prefix,
                                 a.rtt_bound_ms, a.json)
    except ValueError as e:
        raise ShadowArgError(str(e)) from None


def run_shadow(a) -> int:
    try:
        ss = settings(a)
    except ShadowArgError as e:
        error(f"netshadow shadow run: {e}")
        return e.code
    return run(ss)


def run(ss: ShadowRunSettings) -> int:
    from emulation.shadow import Shadow, demands_from_forecast, evaluate_plans

    console = Console(width=120)
    try:
        shadow = Shadow(ss.spec, prefix=ss.prefix, tenants=list(ss.tenants) if ss.tenants else None,
                        rtt_bound_ms=ss.rtt_bound_ms)
    except ValueError as e:
        error(f"netshadow shadow run: {e}")
        return 2
    demands = demands_from_forecast(shadow.spec, ss.forecast, ss.quantile)
    if not demands:
        error("netshadow shadow run: --forecast: no app/<tenant>/<app>/fwd/bps series matches the "
              "spec's applications")
        return 2
    with shadow:
        console.print(f"shadow {ss.prefix}: {len(shadow.spec.hosts)} hosts built in "
                      f"{shadow.build_s:.2f} s; {len(demands)} flows, {ss.duration_s:g} s per plan")
        reports, best = evaluate_plans(shadow, list(ss.plans), demands, ss.duration_s)
    for r in reports:
        t = Table(title=f"plan {r.plan} (reserves {r.plan_cost_mbps:g} Mbit/s): {r.verdict.upper()}")
        for col in ("tenant/app", "flow", "offered Mbit/s", "delivered Mbit/s", "loss", "guaranteed"):
            t.add_column(col, no_wrap=True)
        for f in r.flows:
            t.add_row(f"{f.tenant}/{f.app}", f"{f.src}>{f.dst} {f.protocol}", f"{f.offered_mbps:.2f}",
                      f"{f.delivered_mbps:.2f}", "-" if f.loss is None else f"{f.loss:.1%}",
                      "-" if f.guaranteed_mbps is None else f"{f.guaranteed_mbps:g}")
        console.print(t)
        for line in r.bottlenecks:
            console.print(f"  bottleneck: {line}")
        for line in r.violations[:10]:
            console.print(f"  [red]policy violation[/]: {line}")
        for line in r.reasons:
            console.print(f"  reason: {line}")
        if r.attempts > 1:
            console.print(f"  measured {r.attempts} times: the earlier runs were disturbed")
        for line in r.disturbances:
            console.print(f"  [yellow]disturbed[/]: {line}")
        p95 = [p.rtt_p95_ms for p in r.paths if p.rtt_p95_ms is not None]
        if p95:
            console.print(f"  probes: {len(r.paths)} paths, worst p95 RTT {max(p95):.2f} ms")
    console.print(f"cheapest passing plan: {best.plan if best else 'none passed'}")
    if ss.json_out:
        Path(ss.json_out).write_text(json.dumps({"reports": [r.to_dict() for r in reports],
                                            "best": best.plan if best else None}, indent=1))
    return 0 if best else 1
