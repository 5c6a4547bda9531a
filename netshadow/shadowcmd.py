"""``netshadow shadow run``: forecast-shaped traffic in a shadow replica, one report per plan."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .errors import error


def run_shadow(a) -> int:
    import requests

    from controller.plan import PlanError, load_plan
    from emulation.shadow import Shadow, demands_from_forecast, evaluate_plans
    from models.forecast import Forecast, ForecastError
    from topologies import load_spec, parse_spec

    console = Console(width=120)
    if a.controller:
        try:
            data = requests.get(a.controller.rstrip("/") + "/api/v1/spec", timeout=10).json()
        except (requests.RequestException, ValueError) as e:
            error(f"netshadow shadow run: --controller: cannot read the live spec: {e}")
            return 1
        spec = parse_spec(data, a.controller)
    else:
        spec = load_spec(a.spec)
    try:
        forecast = Forecast.from_json(Path(a.forecast).read_text())
    except (OSError, ForecastError) as e:
        error(f"netshadow shadow run: --forecast: {e}")
        return 2
    if not 0 < a.quantile < 1:
        error(f"netshadow shadow run: --quantile: must be in (0, 1) (got {a.quantile})")
        return 2
    try:
        plans = [load_plan(p, spec) for p in a.plan] or [None]
    except PlanError as e:
        error(f"netshadow shadow run: --plan: {e}")
        return 2
    tenants = a.tenants.split(",") if a.tenants else None
    shadow = Shadow(spec, prefix=a.prefix, tenants=tenants, rtt_bound_ms=a.rtt_bound_ms)
    demands = demands_from_forecast(shadow.spec, forecast, a.quantile)
    if not demands:
        error("netshadow shadow run: --forecast: no app/<tenant>/<app>/fwd/bps series matches the "
              "spec's applications")
        return 2
    with shadow:
        console.print(f"shadow {a.prefix}: {len(shadow.spec.hosts)} hosts built in {shadow.build_s:.2f} s; "
                      f"{len(demands)} flows, {a.duration:g} s per plan")
        reports, best = evaluate_plans(shadow, plans, demands, a.duration)
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
    if a.json:
        Path(a.json).write_text(json.dumps({"reports": [r.to_dict() for r in reports],
                                            "best": best.plan if best else None}, indent=1))
    return 0 if best else 1
