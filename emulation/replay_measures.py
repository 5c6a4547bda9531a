"""What a replay measured, summarised per policy (pure).

* **violation-seconds**: for every application and step where the meters dropped more than
  :data:`controller.policies.VIOLATION_DROP` of what was offered, the step's length in trace
  seconds (summed over applications);
* **dropped**: bytes the meters dropped;
* **reserved**: the sum over steps of the rates in force times the step's length, in Mbit/s x
  trace seconds (the cost);
* **RTT p95**: of the UDP echo probes that came back, with the share that did not;
* **peaks pre-allocated**: a peak is a run of steps where an application's demand stays above
  the median plus half the distance to its maximum; it is pre-allocated when the rate in force
  at its first step already covered that step's demand.
"""

from __future__ import annotations

import numpy as np

from controller.policies import VIOLATION_DROP


def peak_onsets(demand: np.ndarray) -> list[tuple[int, int]]:
    """(step, flow) of the first step of every peak in ``demand`` (T, N)."""
    out = []
    for j in range(demand.shape[1]):
        d = demand[:, j]
        med = float(np.median(d))
        thr = med + 0.5 * (float(d.max()) - med)
        if not d.max() > med:
            continue
        above = d > thr
        for t in range(len(d)):
            if above[t] and (t == 0 or not above[t - 1]):
                out.append((t, j))
    return out


def summarise(res) -> dict:
    frac = np.where(res.in_bytes > 0, res.drop_bytes / np.maximum(res.in_bytes, 1), 0.0)
    viol = frac > VIOLATION_DROP
    peaks = peak_onsets(res.demand)
    pre = [(t, j) for t, j in peaks if res.allocated[t, j] >= res.demand[t, j] and not viol[t, j]]
    rtts = [r for r in res.rtt_ms if r is not None]
    sent_mbps = [s.get("l2_bps", 0) / 1e6 for s in res.sent]
    return {
        "policy": res.policy,
        "steps": int(res.demand.shape[0]),
        "violation_s": float(viol.sum() * res.step_trace_s),
        "violation_steps": int(viol.sum()),
        "dropped_mbytes": float(res.drop_bytes.sum() / 1e6),
        "reserved_mbit": float((res.allocated * res.step_trace_s).sum()),
        "rtt_p95_ms": float(np.percentile(rtts, 95)) if rtts else None,
        "probe_loss": (1 - len(rtts) / len(res.rtt_ms)) if res.rtt_ms else None,
        "peaks": len(peaks),
        "peaks_preallocated": len(pre),
        "apply_p50_ms": float(np.median(res.apply_s) * 1000) if res.apply_s else None,
        "offered_vs_trace": float(res.offered.sum() / max(res.demand.sum(), 1e-9)),
        "sent_mbps": sent_mbps,
    }


def compare(summaries: dict[str, dict]) -> dict:
    """Ratios the comparison is judged by (predictive against reactive and oracle)."""
    p, r, o = (summaries.get(k) for k in ("predictive", "reactive", "oracle"))
    out = {}
    if p and r:
        rv = r["violation_s"]
        out["violation_ratio_vs_reactive"] = (p["violation_s"] / rv if rv
                                              else (0.0 if not p["violation_s"] else None))
        out["reserved_ratio_vs_reactive"] = p["reserved_mbit"] / r["reserved_mbit"]
    if p and o:
        out["reserved_ratio_vs_oracle"] = p["reserved_mbit"] / o["reserved_mbit"]
    if p:
        out["peaks_preallocated_share"] = (p["peaks_preallocated"] / p["peaks"]) if p["peaks"] else None
    return out
