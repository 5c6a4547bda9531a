"""Trace replay on the lab: real traffic following a demand trace while a policy allocates.

For one policy, :func:`replay` starts, per mapped flow, a receiver on the destination host, a
scapy UDP sender on the source host with the whole rate schedule (all senders start at one
shared wall-clock instant, so step boundaries line up), and a UDP echo prober from source to
destination (RTT under load). Before each step ``t`` begins - earlier by what such a round took so
far (:func:`actuation_lead`) - it reads the application meters on the switches (``ovs-ofctl meter-stats``:
bytes in and bytes dropped since the last read), asks the policy for step ``t``'s rates and
POSTs them to the controller as a plan - rates that go down only just after the step began, so
the previous step's traffic never meets them - then reads the meters again (Open vSwitch resets a
meter's counters when it is modified) to open the next window. So every number in the result
comes from the switches themselves, and every policy is actuated the same way. The window of
step ``t`` runs from its beginning to its end (less the moments of an apply), so it holds that
step's traffic; the decision for step ``t + 1`` sees step ``t`` as
measured up to the moment it is made.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import requests

from controller.tenancy import app_number, meter_id, tenant_number
from topologies import NetworkSpec

from .loadrun import end_processes
from .meters import MeterError, read_meters
from .policies import Policy, StepInput
from .trace import ReplayMap

BOUNDARY_S = 0.02  # a lower rate is applied this long after its step's boundary


class ReplayRunError(RuntimeError):
    """The replay could not run (a process failed, a plan was refused)."""


@dataclass
class ReplayResult:
    policy: str
    step_trace_s: float
    step_wall_s: float
    keys: list[tuple[str, str]]
    demand: np.ndarray  # (T, N) what the trace asked for, lab Mbit/s
    allocated: np.ndarray  # (T, N) what the policy applied for each step
    offered: np.ndarray  # (T, N) Mbit/s measured at the meters
    in_bytes: np.ndarray  # (T, N)
    drop_bytes: np.ndarray  # (T, N)
    apply_s: list[float] = field(default_factory=list)  # POST round trips
    rtt_ms: list[float | None] = field(default_factory=list)
    band: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)
    notes: dict[int, str] = field(default_factory=dict)
    sent: list[dict] = field(default_factory=list)  # what each sender reports it sent
    # per step from 1: seconds from the step's boundary to the moment its (raised) rates were
    # confirmed; negative is in time (see replay_measures.LATE_FRACTION for what counts as late)
    late_s: list[float] = field(default_factory=list)
    # per step from 1, seconds each part of the round before it took: the meter read that closes
    # the measured part of the step, the policy's decision (late steps say which one is slow)
    read_s: list[float] = field(default_factory=list)
    decide_s: list[float] = field(default_factory=list)


class MeterReader:
    def __init__(self, spec: NetworkSpec, prefix: str, mapping: ReplayMap):
        self.bridges = []
        self.ids = []
        for f in mapping.flows:
            self.bridges.append(prefix + spec.host(f.src).switch)
            self.ids.append(meter_id(tenant_number(spec, f.tenant), app_number(spec, f.tenant, f.app)))

    def read(self) -> tuple[np.ndarray, float]:
        """(N, 2) cumulative (bytes in, bytes dropped) per flow's meter, and when they were read
        (monotonic seconds, the middle of the ``ovs-ofctl`` calls)."""
        t0 = time.monotonic()
        try:
            stats = {br: read_meters(br) for br in sorted(set(self.bridges))}
        except MeterError as e:
            raise ReplayRunError(str(e)) from None
        out = np.zeros((len(self.ids), 2))
        for i, (br, mid) in enumerate(zip(self.bridges, self.ids, strict=True)):
            if mid in stats[br]:
                out[i] = stats[br][mid].bytes_in, stats[br][mid].bytes_dropped
        return out, (t0 + time.monotonic()) / 2


def _post(url: str, token: str, plan) -> float:
    t0 = time.monotonic()
    r = requests.post(f"{url}/plans", json=plan.to_dict(), timeout=30,
                      headers={"Authorization": f"Bearer {token}"})
    took = time.monotonic() - t0
    if r.status_code != 200 or r.json().get("outcome") not in ("applied", "unchanged"):
        raise ReplayRunError(f"plan {plan.name}: HTTP {r.status_code}: {r.text[:300]}")
    return took


def replay(lab, spec: NetworkSpec, url: str, token: str, mapping: ReplayMap, demand: np.ndarray,
           policy: Policy, step_trace_s: float, step_wall_s: float, frame_bytes: int = 1242,
           progress=None) -> ReplayResult:
    """Run ``policy`` over ``demand`` (T, N) on the running ``lab`` (an :class:`emulation.lab.Lab`
    whose controller answers at ``url``)."""
    T, N = demand.shape
    total = T * step_wall_s
    procs: list[subprocess.Popen] = []
    res = ReplayResult(policy.name, step_trace_s, step_wall_s, [f.key for f in mapping.flows], demand,
                       np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N)), np.zeros((T, N)))
    try:
        _start_receivers(lab, spec, mapping, total, procs)
        # the first step's plan is in force before any traffic
        first = policy.decide(StepInput(0, 0.0, np.zeros((0, N)), np.zeros((0, N))))
        res.apply_s.append(_post(url, token, policy.plan(first, 0)))
        res.allocated[0] = first
        senders = _start_senders(lab, spec, mapping, demand, total, frame_bytes, procs)
        t0 = time.time() + 0.5
        for tx in senders:
            tx.stdin.write(f"{t0}\n")
            tx.stdin.flush()
        probers = _start_probers(lab, spec, mapping, total, procs)
        _sleep_until(t0)
        win = _Windows(MeterReader(spec, lab.prefix, mapping), res)
        lead = actuation_lead([], step_wall_s)
        work: list[float] = []  # seconds each read + decide + apply round took
        for t in range(1, T + 1):
            if t == T:
                _sleep_until(t0 + t * step_wall_s)
                win.segment()
                win.close(t - 1)
                break
            _sleep_until(t0 + t * step_wall_s - lead)
            began = time.monotonic()
            win.segment()
            read = time.monotonic()
            rates = policy.decide(win.step_input(t, t * step_trace_s))  # step t-1 as measured so far
            res.read_s.append(read - began)
            res.decide_s.append(time.monotonic() - read)
            res.allocated[t] = rates
            prev = res.allocated[t - 1]
            # raises land before the step begins, decreases just after it: the previous step's
            # traffic never meets the next step's lower rate
            res.apply_s.append(_post(url, token, policy.plan(np.maximum(prev, rates), t)))
            res.late_s.append(time.time() - (t0 + t * step_wall_s))
            work.append(time.monotonic() - began)
            win.reopen()
            _sleep_until(t0 + t * step_wall_s)
            win.segment()
            win.close(t - 1)  # the window of step t-1 ends at its boundary
            if (rates < prev).any():
                _sleep_until(t0 + t * step_wall_s + BOUNDARY_S)
                win.segment()
                _post(url, token, policy.plan(rates, t))
                win.reopen()
            lead = actuation_lead(work, step_wall_s)
            if progress is not None:
                progress(t)
        for tx in senders:
            out, _ = tx.communicate(timeout=60)
            res.sent.append(json.loads(out.strip().splitlines()[-1]))
        for pr in probers:
            out, _ = pr.communicate(timeout=60)
            res.rtt_ms.extend(json.loads(out))
        keep_bands(res, policy)
        return res
    finally:
        end_processes(procs)


def keep_bands(res: ReplayResult, policy) -> None:
    """The policy's forecast bands and notes into the result (JSON-able)."""
    res.band = {t: (list(map(float, m)), list(map(float, u))) for t, (m, u) in policy.band.items()}
    res.notes.update(policy.notes)



class _Windows:
    """Each step's measurement window from the meters' counters: segments between reads are
    summed until the window closes at its step boundary."""

    def __init__(self, reader: MeterReader, res: ReplayResult):
        self.reader, self.res = reader, res
        n = len(res.keys)
        self.last, self.opened = reader.read()
        self.acc, self.acc_s = np.zeros((n, 2)), 0.0  # bytes (in, dropped), seconds of the open window
        self.offered: list[np.ndarray] = []  # per closed step, Mbit/s
        self.dropped: list[np.ndarray] = []  # per closed step, fraction dropped

    def segment(self) -> None:
        now, closed = self.reader.read()
        self.acc += np.maximum(now - self.last, 0.0)
        self.acc_s += closed - self.opened
        self.last, self.opened = now, closed

    def reopen(self) -> None:
        # OVS resets a meter's counters when the meter is modified: a window's next segment
        # starts from a read taken after the apply was confirmed
        self.last, self.opened = self.reader.read()

    def close(self, t: int) -> None:
        d, window = self.acc, max(self.acc_s, 1e-3)
        self.acc, self.acc_s = np.zeros_like(self.acc), 0.0
        self.res.in_bytes[t], self.res.drop_bytes[t] = d[:, 0], d[:, 1]
        self.res.offered[t] = d[:, 0] * 8 / window / 1e6
        self.offered.append(self.res.offered[t])
        self.dropped.append(np.where(d[:, 0] > 0, d[:, 1] / np.maximum(d[:, 0], 1), 0.0))

    def step_input(self, t: int, t_trace_s: float) -> StepInput:
        """What the policy sees at boundary ``t``: the closed steps and the open one so far."""
        partial = self.acc[:, 0] * 8 / max(self.acc_s, 1e-3) / 1e6
        part_drop = np.where(self.acc[:, 0] > 0, self.acc[:, 1] / np.maximum(self.acc[:, 0], 1), 0.0)
        return StepInput(t, t_trace_s, np.array(self.offered + [partial]),
                         np.array(self.dropped + [part_drop]))


def _start_receivers(lab, spec: NetworkSpec, mapping: ReplayMap, total: float, procs: list) -> None:
    receivers = []
    for f in mapping.flows:
        port = spec.tenant(f.tenant).app(f.app).port
        rx = lab.host(f.dst).popen([sys.executable, "-u", "-m", "emulation.udpgen", "recv", "--port",
                                    str(port), "--seconds", str(total + 15), "--idle-s", str(total + 15)],
                                   stdout=subprocess.PIPE, text=True)
        procs.append(rx)
        receivers.append(rx)
    for rx in receivers:
        if rx.stdout.readline().strip() != "ready":
            raise ReplayRunError("a receiver did not start")


def _start_senders(lab, spec: NetworkSpec, mapping: ReplayMap, demand: np.ndarray, total: float,
                   frame_bytes: int, procs: list) -> list[subprocess.Popen]:
    """Every flow's sender, each waiting for the common start time on its stdin."""
    senders = []
    for j, f in enumerate(mapping.flows):
        hs, hd = spec.host(f.src), spec.host(f.dst)
        port = spec.tenant(f.tenant).app(f.app).port
        rates = ",".join(f"{x:.4f}" for x in demand[:, j])
        tx = lab.host(f.src).popen(
            [sys.executable, "-u", "-m", "emulation.udpgen", "send",
             "--iface", f"{lab.prefix}{f.src}-eth0",
             "--src-mac", hs.mac, "--dst-mac", hd.mac, "--src-ip", hs.ip, "--dst-ip", hd.ip,
             "--dport", str(port), "--rate-mbps", rates, "--seconds", str(total),
             "--frame-bytes", str(frame_bytes), "--wait-start"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(tx)
        senders.append(tx)
    for tx in senders:
        if tx.stdout.readline().strip() != "ready":
            raise ReplayRunError("a sender did not start")
    return senders


def _start_probers(lab, spec: NetworkSpec, mapping: ReplayMap, total: float,
                   procs: list) -> list[subprocess.Popen]:
    probers = []
    for f in mapping.flows:
        port = spec.tenant(f.tenant).app(f.app).port
        pr = lab.host(f.src).popen([sys.executable, "-m", "emulation.probe", "rtt", "--ip",
                                    spec.host(f.dst).ip, "--port", str(port), "--interval", "0.2",
                                    "--seconds", str(total)], stdout=subprocess.PIPE, text=True)
        procs.append(pr)
        probers.append(pr)
    return probers


def actuation_lead(work_s: list[float], step_wall_s: float, window: int = 20) -> float:
    """Seconds before a step boundary to start the round that reads the meters, decides and
    applies for the next step: 1.2 x the 90th percentile of the last ``window`` rounds' measured
    durations (the whole round, not only the apply: a forecast or a slow meter read makes a step
    late too), at least 50 ms, and at most half a step, so a decision still sees most of the step
    before it; 0.1 s (at most half a step) before any round was measured."""
    if not work_s:
        return min(0.1, 0.5 * step_wall_s)
    p90 = float(np.percentile(work_s[-window:], 90))
    return min(0.5 * step_wall_s, max(0.05, 1.2 * p90))


def _sleep_until(t: float) -> None:
    while True:
        d = t - time.time()
        if d <= 0:
            return
        time.sleep(min(d, 0.05))
