"""Shadow fidelity: how well a shadow run predicted what production did under the same plan and
the same load (pure logic over two :class:`~emulation.report.ShadowReport`).

Per application: delivered rate (relative error), loss (difference in percentage points) and
p95 RTT (relative error, or the absolute difference where that is smaller than
``RTT_ABS_MS``); per link direction that carries a measured flow: carried utilisation (relative
error). Each figure is divided by its tolerance; the run's **score** is the largest of those
ratios, so a score <= 1 means every figure is within tolerance. The shadow's verdict must be
production's: a plan the shadow passes must not hurt in production, one it fails must.

A run is scored only when both sides were trusted: if either was CPU-bound (its report's
``disturbances``, verdict ``untrusted``), the comparison says why and gives no score - the
machine, not the shadow, was measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .report import ShadowReport

RATE_TOL = 0.05  # relative, delivered rate and link utilisation
LOSS_TOL_PP = 1.0  # percentage points
RTT_TOL = 0.10  # relative p95 RTT ...
RTT_ABS_MS = 0.5  # ... or this many ms, whichever is larger
UTIL_FLOOR = 0.01  # utilisation below this is compared as if it were this (ARP and probes)
RATE_FLOOR_MBPS = 0.1  # likewise for a delivered rate


@dataclass(frozen=True)
class AppFidelity:
    tenant: str
    app: str
    shadow_delivered_mbps: float
    production_delivered_mbps: float
    delivered_error: float  # |shadow - production| / production
    shadow_loss: float | None
    production_loss: float | None
    loss_error_pp: float | None
    shadow_rtt_p95_ms: float | None
    production_rtt_p95_ms: float | None
    rtt_error_ms: float | None
    worst: float  # the largest error / tolerance of this application's figures
    # shadow's p50 RTT less production's, ms: where it moved as far as the p95, the RTT error is
    # a constant of the path in one network (the datapath's), not queueing mispredicted
    rtt_p50_shift_ms: float | None = None


@dataclass(frozen=True)
class LinkFidelity:
    direction: str
    shadow_util: float
    production_util: float
    error: float  # relative
    worst: float  # error / tolerance


@dataclass(frozen=True)
class Fidelity:
    plan: str
    shadow_verdict: str
    production_verdict: str
    scored: bool  # both runs trusted
    untrusted: tuple[str, ...]  # why not scored: each side's disturbances
    apps: tuple[AppFidelity, ...]
    links: tuple[LinkFidelity, ...]
    score: float | None  # the worst error / tolerance over every figure; None when not scored
    missing: tuple[str, ...] = ()  # applications measured on one side only

    @property
    def verdicts_agree(self) -> bool:
        return self.shadow_verdict == self.production_verdict

    @property
    def faithful(self) -> bool | None:
        """Every figure within tolerance and the same verdict; None when not scored."""
        if not self.scored:
            return None
        return self.score is not None and self.score <= 1.0 and self.verdicts_agree \
            and not self.missing

    def to_dict(self) -> dict:
        return {**asdict(self), "verdicts_agree": self.verdicts_agree, "faithful": self.faithful}


def _rel(s: float, p: float, floor: float) -> float:
    return abs(s - p) / max(abs(p), floor)


def _rtt_ratio(s: float | None, p: float | None) -> tuple[float | None, float]:
    if s is None or p is None:
        return None, 0.0
    diff = abs(s - p)
    return round(diff, 3), diff / max(RTT_TOL * p, RTT_ABS_MS)


def compare(shadow: ShadowReport, production: ShadowReport) -> Fidelity:
    """The shadow's report against production's for the same plan and load."""
    untrusted = tuple(f"shadow: {d}" for d in shadow.disturbances) + \
        tuple(f"production: {d}" for d in production.disturbances)
    prod = {(f.tenant, f.app): f for f in production.flows}
    apps, missing = [], []
    for f in shadow.flows:
        p = prod.pop((f.tenant, f.app), None)
        if p is None:
            missing.append(f"{f.tenant}/{f.app}: not measured in production")
            continue
        d_err = _rel(f.delivered_mbps, p.delivered_mbps, RATE_FLOOR_MBPS)
        loss_pp = None if f.loss is None or p.loss is None else abs(f.loss - p.loss) * 100
        rtt_ms, rtt_ratio = _rtt_ratio(f.rtt_p95_ms, p.rtt_p95_ms)
        worst = max(d_err / RATE_TOL, (loss_pp or 0.0) / LOSS_TOL_PP, rtt_ratio)
        p50 = None if f.rtt_p50_ms is None or p.rtt_p50_ms is None \
            else round(f.rtt_p50_ms - p.rtt_p50_ms, 3)
        apps.append(AppFidelity(f.tenant, f.app, f.delivered_mbps, p.delivered_mbps,
                                round(d_err, 4), f.loss, p.loss,
                                None if loss_pp is None else round(loss_pp, 3),
                                f.rtt_p95_ms, p.rtt_p95_ms, rtt_ms, round(worst, 3), p50))
    missing += [f"{t}/{a}: not measured in the shadow" for t, a in prod]
    prod_links = {lk.direction: lk for lk in production.links}
    links = []
    for lk in shadow.links:
        p = prod_links.get(lk.direction)
        if p is None or not (lk.flows or p.flows):
            continue
        err = _rel(lk.mean_util, p.mean_util, UTIL_FLOOR)
        links.append(LinkFidelity(lk.direction, lk.mean_util, p.mean_util, round(err, 4),
                                  round(err / RATE_TOL, 3)))
    scored = not untrusted
    score = max([a.worst for a in apps] + [lk.worst for lk in links], default=0.0) if scored else None
    return Fidelity(shadow.plan, shadow.verdict, production.verdict, scored, untrusted,
                    tuple(apps), tuple(links), score, tuple(missing))
