"""What a replay measured, summarised per policy (pure).

* **violation-seconds**: for every application and step where the meters dropped more than
  :data:`controller.plan.VIOLATION_DROP` of what was offered, the step's length in trace
  seconds (summed over applications);
* **dropped**: bytes the meters dropped;
* **reserved**: the sum over steps of the rates in force times the step's length, in Mbit/s x
  trace seconds (the cost);
* **RTT p95**: of the UDP echo probes that came back, with the share that did not;
* **late steps**: steps whose rates were confirmed more than :data:`LATE_FRACTION` of a step
  after the step had begun (applies slower than the lead the runner allows for them; when they
  are many, the compression is too fast for the machine);
* **peaks pre-allocated**: a peak is a stretch of steps where an application's demand is above
  its median plus half the way to its maximum (stretches fewer than three steps apart are one
  peak, single steps are not peaks); it is pre-allocated when the rate in force at its first step
  covered that step's demand and the step saw no violation.
"""

from __future__ import annotations

import numpy as np

from controller.plan import VIOLATION_DROP

LATE_FRACTION = 0.1  # of a step: a rate confirmed later than this into its step was late


def above_peak_level(demand: np.ndarray) -> np.ndarray:
    """(T, N) the steps of ``demand`` (T, N) above their series' median plus half the way to its
    maximum (every such step, single-step spikes included)."""
    med, top = np.median(demand, axis=0), demand.max(axis=0)
    return demand > med + 0.5 * (top - med)


def peak_runs(demand: np.ndarray, merge_gap: int = 3, min_len: int = 2) -> list[tuple[int, int, int]]:
    """(first step, last step, flow) of every peak in ``demand`` (T, N): stretches of steps
    :func:`above_peak_level`, merged when fewer than ``merge_gap`` steps apart, at least
    ``min_len`` steps long."""
    above = above_peak_level(demand)
    out = []
    for j in range(demand.shape[1]):
        runs: list[list[int]] = []
        for t in np.flatnonzero(above[:, j]):
            if runs and t - runs[-1][1] <= merge_gap:
                runs[-1][1] = int(t)
            else:
                runs.append([int(t), int(t)])
        out += [(a, b, j) for a, b in runs if b - a + 1 >= min_len]
    return sorted(out)


def peak_onsets(demand: np.ndarray, merge_gap: int = 3, min_len: int = 2) -> list[tuple[int, int]]:
    """(step, flow) of the first step of every peak in ``demand`` (T, N) (:func:`peak_runs`)."""
    return sorted((a, j) for a, _, j in peak_runs(demand, merge_gap, min_len))


def peak_steps(demand: np.ndarray) -> np.ndarray:
    """(T, N) the steps of ``demand`` inside a peak (:func:`peak_runs`) and
    :func:`above_peak_level`: single-step spikes are not peaks."""
    above = above_peak_level(demand)
    mask = np.zeros(demand.shape, dtype=bool)
    for a, b, j in peak_runs(demand):
        mask[a:b + 1, j] = above[a:b + 1, j]
    return mask


FORECAST_PEAK_SHARE = 0.1  # the share of a series' steps whose forecast counts as a peak


def forecast_peak_steps(forecast: np.ndarray, share: float = FORECAST_PEAK_SHARE) -> np.ndarray:
    """(T, N) the steps where a peak is *forecast*: the ``share`` of each series' steps of
    ``forecast`` (T, N; NaN never counts) with the highest forecast (ties at the threshold
    included). Unlike :func:`above_peak_level`, chosen by what was known before the step, so an
    interval can be calibrated for them; a step chosen by its outcome was chosen partly for
    exceeding its forecast."""
    if not 0 < share <= 1:
        raise ValueError(f"share: must be in (0, 1] (got {share!r})")
    f = np.asarray(forecast, dtype=float)
    out = np.zeros(f.shape, dtype=bool)
    for j in range(f.shape[1]):
        ok = np.isfinite(f[:, j])
        if ok.any():
            out[:, j] = ok & (f[:, j] >= np.quantile(f[ok, j], 1 - share))
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
        "apply_p50_ms": _ms(res.apply_s, 50),
        "apply_p90_ms": _ms(res.apply_s, 90),
        "read_p90_ms": _ms(res.read_s, 90),
        "decide_p90_ms": _ms(res.decide_s, 90),
        "late_steps": int(sum(x > LATE_FRACTION * res.step_wall_s for x in res.late_s)),
        "offered_vs_trace": float(res.offered.sum() / max(res.demand.sum(), 1e-9)),
        "sent_mbps": sent_mbps,
    }


def _ms(seconds: list[float], q: float) -> float | None:
    """The ``q`` percentile of ``seconds``, in ms (None when nothing was measured)."""
    return float(np.percentile(seconds, q) * 1000) if len(seconds) else None


def _ratio(a: float, b: float) -> float | None:
    """a / b; 1 when both are 0 (equal), None when only b is (no finite ratio)."""
    if b:
        return a / b
    return 1.0 if not a else None


def compare(summaries: dict[str, dict]) -> dict:
    """Ratios the comparison is judged by (predictive against reactive and oracle); None where
    the reference is zero and the ratio has no finite value (a window without demand)."""
    p, r, o = (summaries.get(k) for k in ("predictive", "reactive", "oracle"))
    out = {}
    if p and r:
        rv = r["violation_s"]
        out["violation_ratio_vs_reactive"] = (p["violation_s"] / rv if rv
                                              else (0.0 if not p["violation_s"] else None))
        out["reserved_ratio_vs_reactive"] = _ratio(p["reserved_mbit"], r["reserved_mbit"])
    if p and o:
        out["reserved_ratio_vs_oracle"] = _ratio(p["reserved_mbit"], o["reserved_mbit"])
    if p:
        out["peaks_preallocated_share"] = (p["peaks_preallocated"] / p["peaks"]) if p["peaks"] else None
    return out
