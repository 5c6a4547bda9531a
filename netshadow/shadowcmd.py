"""``netshadow shadow run``: forecast-shaped traffic in a shadow replica, one report per plan;
with ``--compare-production``, the same plan and load in production too, and the shadow's
fidelity (:mod:`emulation.fidelity`)."""

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
    production_url: str | None = None  # compare with the production behind this controller
    production_prefix: str = "nsl"
    token: str | None = None

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
    production_url = token = None
    if a.compare_production:
        from controller.rest import load_token

        if not a.controller:
            raise ShadowArgError("--compare-production: needs --controller URL (the production "
                                 "controller whose lab the plans are compared in)")
        if a.production_prefix == a.prefix:
            raise ShadowArgError(f"--production-prefix: {a.production_prefix!r} is the shadow's "
                                 f"--prefix too")
        try:
            token = load_token(a.token_file)
        except (OSError, ValueError) as e:
            raise ShadowArgError(f"--token-file: {e}") from None
        production_url = a.controller
    try:
        return ShadowRunSettings(spec, forecast, plans, a.quantile, a.duration,
                                 tuple(a.tenants.split(",")) if a.tenants else None, a.prefix,
                                 a.rtt_bound_ms, a.json, production_url, a.production_prefix, token)
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
    from emulation.production import Production, ProductionError
    from emulation.shadow import Shadow, ShadowError, demands_from_forecast, evaluate_plans

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
    production = None
    if ss.production_url:
        try:  # before anything is built: an unreachable production is refused at once
            production = Production(ss.production_url, ss.token, ss.production_prefix,
                                    rtt_bound_ms=ss.rtt_bound_ms)
        except ProductionError as e:
            error(f"netshadow shadow run: {e}")
            return 1
    compared = []
    with shadow:
        console.print(f"shadow {ss.prefix}: {len(shadow.spec.hosts)} hosts built in "
                      f"{shadow.build_s:.2f} s; {len(demands)} flows, {ss.duration_s:g} s per plan")
        try:
            if production is None:
                reports, best = evaluate_plans(shadow, list(ss.plans), demands, ss.duration_s)
            else:
                compared = _compare(shadow, production, list(ss.plans), demands, ss.duration_s)
        except (ProductionError, ShadowError) as e:
            error(f"netshadow shadow run: {e}")
            return 1
        if production is not None:
            reports = [s for s, _, _ in compared]
            passing = [r for r in reports if r.verdict == "pass"]
            best = min(passing, key=lambda r: r.plan_cost_mbps) if passing else None
    for r in reports:
        _show(console, r)
    for _, p, f in compared:
        _show(console, p, "production: ")
        _show_fidelity(console, f)
    console.print(f"cheapest passing plan: {best.plan if best else 'none passed'}")
    if ss.json_out:
        out = {"reports": [r.to_dict() for r in reports], "best": best.plan if best else None}
        if compared:
            out["production"] = [p.to_dict() for _, p, _ in compared]
            out["fidelity"] = [f.to_dict() for _, _, f in compared]
        Path(ss.json_out).write_text(json.dumps(out, indent=1))
    return 0 if best else 1


def _compare(shadow, production, plans, demands, duration_s):
    """Every plan in the shadow, then in production; production's plan put back in the end."""
    from emulation.production import side_by_side

    try:
        return [side_by_side(shadow, production, plan, demands, duration_s) for plan in plans]
    finally:
        production.restore()


def _show(console: Console, r, where: str = "") -> None:
    t = Table(title=f"{where}plan {r.plan} (reserves {r.plan_cost_mbps:g} Mbit/s): {r.verdict.upper()}")
    for col in ("tenant/app", "flow", "offered Mbit/s", "delivered Mbit/s", "loss", "p95 RTT ms",
                "guaranteed"):
        t.add_column(col, no_wrap=True)
    for f in r.flows:
        t.add_row(f"{f.tenant}/{f.app}", f"{f.src}>{f.dst} {f.protocol}", f"{f.offered_mbps:.2f}",
                  f"{f.delivered_mbps:.2f}", "-" if f.loss is None else f"{f.loss:.1%}",
                  "-" if f.rtt_p95_ms is None else f"{f.rtt_p95_ms:.2f}",
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
        console.print(f"  [yellow]CPU-bound[/]: {line}")
    p95 = [p.rtt_p95_ms for p in r.paths if p.rtt_p95_ms is not None]
    if p95:
        console.print(f"  probes: {len(r.paths)} paths, worst p95 RTT {max(p95):.2f} ms")


def _show_fidelity(console: Console, f) -> None:
    from emulation.fidelity import LOSS_TOL_PP, RATE_TOL, RTT_ABS_MS, RTT_TOL

    head = (f"fidelity of plan {f.plan}: shadow {f.shadow_verdict.upper()}, production "
            f"{f.production_verdict.upper()}")
    if not f.scored:
        console.print(f"{head}; not scored, a run was CPU-bound:")
        for line in f.untrusted:
            console.print(f"  [yellow]{line}[/]")
        return
    t = Table(title=f"{head}; score {f.score:.2f} ({'faithful' if f.faithful else 'NOT faithful'}; "
                    f"<= 1: every figure within tolerance)")
    for col in ("tenant/app", "delivered Mbit/s shadow | prod", "error",
                "loss shadow | prod", "pp", "p95 RTT ms shadow | prod", "ms", "p50 shift ms"):
        t.add_column(col, no_wrap=True)
    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    ms = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for a in f.apps:
        t.add_row(f"{a.tenant}/{a.app}",
                  f"{a.shadow_delivered_mbps:.2f} | {a.production_delivered_mbps:.2f}",
                  f"{a.delivered_error:.1%}", f"{pct(a.shadow_loss)} | {pct(a.production_loss)}",
                  ms(a.loss_error_pp), f"{ms(a.shadow_rtt_p95_ms)} | {ms(a.production_rtt_p95_ms)}",
                  ms(a.rtt_error_ms),
                  "-" if a.rtt_p50_shift_ms is None else f"{a.rtt_p50_shift_ms:+.2f}")
    console.print(t)
    for lk in f.links:
        console.print(f"  link {lk.direction}: utilisation {lk.shadow_util:.1%} | "
                      f"{lk.production_util:.1%} (error {lk.error:.1%})")
    for line in f.missing:
        console.print(f"  [yellow]{line}[/]")
    console.print(f"  tolerances: rate and utilisation {RATE_TOL:.0%}, loss {LOSS_TOL_PP:g} pp, "
                  f"p95 RTT {RTT_TOL:.0%} or {RTT_ABS_MS:g} ms (a p50 shift as large as the p95 "
                  f"error: the path's latency differs between the two networks, not its queueing)")
