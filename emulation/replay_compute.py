"""Compute replay on the lab: a CPU-limited host's CPU load following a trace while a policy sets
its CPU quota, measured by the host's cgroup.

For one policy, :func:`replay_compute` starts, per mapped host, the calibrated CPU load
(:mod:`emulation.cpuload`) with the whole schedule of shares from one shared wall-clock instant.
Before each step ``t`` begins - earlier by what such a round took so far, as the bandwidth
replay does (:func:`emulation.replay.actuation_lead`) - it reads every host's cgroup counters (CPU time
used, time throttled), asks the policy for step ``t``'s quotas - seeing what each host asked for
in the steps so far as an agent reports it, CPU used plus time throttled - and writes them to the
cgroups; a quota that goes down is written just after the boundary, so the previous step's load
never meets it. The quota is written by this process, as a host's agent writes it at its next
poll (``netshadow run`` goes through the agents; their poll is the delay this leaves out, and
the loop's lab test measures it).

Each step's window runs from boundary to boundary. Its shortfall is the CPU the load asked for
(its schedule) beyond what its cgroup used, counted only when the cgroup was throttled in the
window (the quota's doing); a shortfall without throttling is the machine's, kept in the notes.
The result is an :class:`emulation.replay.ReplayResult` in the compute replay's units (cores for
rates; the shortfall as "bytes" of ``cores * 1e6 / 8 * step`` like the idealised replay's), so
:func:`emulation.replay_measures.summarise` scores it like every other run.
"""

from __future__ import annotations

import time

import numpy as np

from . import hostcompute
from .loadrun import end_processes
from .policies import Policy, StepInput
from .replay import ReplayResult, ReplayRunError, _sleep_until, actuation_lead, keep_bands
from .trace import ReplayMap

AFTER_S = 0.02  # a lowered one this long after
THROTTLED_EVIDENCE = 0.01  # of a step's window: throttled longer, the quota bit in that step


def _units(cores: np.ndarray, step_trace_s: float) -> np.ndarray:
    """Cores over a step as the replay's 'bytes' (what summarise reads), as the idealised replay."""
    return cores * 1e6 / 8 * step_trace_s


def replay_compute(lab, mapping: ReplayMap, demand: np.ndarray, policy: Policy, step_trace_s: float,
                   step_wall_s: float, progress=None) -> ReplayResult:
    """Run ``policy`` over ``demand`` (T, hosts) cores on the running ``lab``'s CPU-limited hosts."""
    T, M = demand.shape
    hosts = [c.host for c in mapping.compute]
    groups = [f"{lab.prefix}{h}" for h in hosts]
    res = ReplayResult(policy.name, step_trace_s, step_wall_s, [c.key for c in mapping.compute],
                       demand, np.zeros((T, M)), np.zeros((T, M)), np.zeros((T, M)), np.zeros((T, M)))
    base = [hostcompute.quota(g) for g in groups]
    asked_seen, short_seen = np.zeros((T, M)), np.zeros((T, M))
    procs = []
    try:
        first = np.asarray(policy.decide(StepInput(0, 0.0, np.zeros((0, M)), np.zeros((0, M)))), float)
        _write(groups, first)
        res.allocated[0] = first
        t0 = time.time() + 1.0
        for j, c in enumerate(mapping.compute):
            d = hostcompute.ComputeDemand(c.tenant, c.host, tuple(float(x) for x in demand[:, j]))
            procs.append(hostcompute.start_load(lab.host(c.host), d, step_wall_s, t0))
        _sleep_until(t0)
        last = [hostcompute.counts(g) for g in groups]
        work: list[float] = []  # seconds each read + decide + write round took
        for t in range(1, T + 1):
            _sleep_until(t0 + t * step_wall_s - actuation_lead(work, step_wall_s))
            began = time.monotonic()
            rates = None
            if t < T:
                seen = StepInput(t, t * step_trace_s, asked_seen[:t - 1].copy(), short_seen[:t - 1].copy())
                rates = np.asarray(policy.decide(_with_partial(seen, last, groups, t0, t, step_wall_s)),
                                   float)
                res.decide_s.append(time.monotonic() - began)
                res.allocated[t] = rates
                _write(groups, np.maximum(rates, res.allocated[t - 1]))
                res.late_s.append(time.time() - (t0 + t * step_wall_s))
                work.append(time.monotonic() - began)
            _sleep_until(t0 + t * step_wall_s)
            now = [hostcompute.counts(g) for g in groups]
            used = np.array([(b[0] - a[0]) / step_wall_s for a, b in zip(last, now, strict=True)])
            throttled = np.array([(b[1] - a[1]) for a, b in zip(last, now, strict=True)])
            last = now
            asked = demand[t - 1]
            bit = throttled > THROTTLED_EVIDENCE * step_wall_s
            short = np.where(bit, np.maximum(asked - used, 0.0), 0.0)
            asked_seen[t - 1] = used + throttled / step_wall_s  # what an agent reports
            short_seen[t - 1] = np.where(asked > 0, short / np.maximum(asked, 1e-9), 0.0)
            res.offered[t - 1] = used
            res.in_bytes[t - 1] = _units(asked, step_trace_s)
            res.drop_bytes[t - 1] = _units(short, step_trace_s)
            host_short = (~bit) & (used < hostcompute.DELIVERY_OBJECTIVE * asked - hostcompute.SLACK_CORES)
            if host_short.any():
                res.notes[t - 1] = "machine busy: " + ", ".join(
                    f"{h} got {u:.2f} of {a:.2f} unthrottled"
                    for h, u, a, s in zip(hosts, used, asked, host_short, strict=True) if s)
            if rates is not None and (rates < res.allocated[t - 1]).any():
                _sleep_until(t0 + t * step_wall_s + AFTER_S)
                _write(groups, rates)
            if progress is not None:
                progress(t)
        for p in procs:
            _, err = p.communicate(timeout=60)
            if p.returncode != 0:
                raise ReplayRunError(f"a CPU load exited {p.returncode}: {err[-300:]}")
        keep_bands(res, policy)
        return res
    finally:
        end_processes(procs)
        for g, q in zip(groups, base, strict=True):
            hostcompute.set_quota(g, q)


def _write(groups: list[str], cores: np.ndarray) -> None:
    for g, c in zip(groups, cores, strict=True):
        hostcompute.set_quota(g, float(c))


def _with_partial(seen: StepInput, last, groups, t0, t, step_wall_s) -> StepInput:
    """``seen`` with the step before ``t`` as measured so far (the bandwidth replay's policy sees
    the open step the same way)."""
    now = [hostcompute.counts(g) for g in groups]
    span = max(time.time() - (t0 + (t - 1) * step_wall_s), 1e-3)
    partial = np.array([((b[0] - a[0]) + (b[1] - a[1])) / span for a, b in zip(last, now, strict=True)])
    return StepInput(seen.t, seen.now_s, np.vstack([seen.offered_mbps, partial[None, :]]),
                     np.vstack([seen.dropped, np.zeros((1, len(groups)))]))
