"""``ShadowReport``: what a shadow run measured, and its verdict on a plan (frozen, JSON-able)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FlowResult:
    tenant: str
    app: str
    src: str
    dst: str
    protocol: str
    offered_mbps: float  # L2, what the generator really sent (mean over the run)
    delivered_mbps: float  # L2, what the receiver got
    loss: float | None  # fraction of sent packets not received (UDP); None for TCP
    guaranteed_mbps: float | None  # the plan's rate for this application, if any
    # the longest silence in the arriving stream, kernel-timed (UDP); None for TCP
    max_gap_s: float | None = None
    # fraction of sent packets the plan's meter dropped (UDP with a meter); None otherwise
    meter_dropped: float | None = None
    meter_passed_mbps: float | None = None  # L2, what left the meter (its counters, UDP)
    scheduled_mbps: float | None = None  # L2, the schedule's mean rate (what was asked of the generator)
    # the flow's own round-trip time under load, ms: UDP echo probes on its path and port, or
    # for TCP the sender's smoothed RTT every 0.1 s
    rtt_p50_ms: float | None = None
    rtt_p95_ms: float | None = None


@dataclass(frozen=True)
class LinkResult:
    link: str  # a-b
    direction: str  # a>b
    mean_util: float  # carried: bytes at the far end over the run / capacity
    max_util: float | None  # the telemetry's peak one-second utilisation (None: no store)
    flows: tuple[str, ...]  # tenant/app src>dst crossing it
    offered_util: float | None = None  # the flows routed over it, after their meters / capacity


@dataclass(frozen=True)
class PathResult:
    src: str
    dst: str
    proto: str
    port: int | None
    expected: bool  # what the spec's policies say
    reachable: bool
    rtt_p50_ms: float | None
    rtt_p95_ms: float | None
    rtt_p99_ms: float | None


@dataclass(frozen=True)
class ComputeResult:
    """A CPU-limited host's load in the run: what it asked for and what its cgroup gave it."""

    tenant: str
    host: str
    asked_cores: float  # the load's schedule, mean over the run
    used_cores: float  # the cgroup's CPU time over the run / its length
    throttled_s: float  # seconds the cgroup was held back by its quota (cpu.stat)
    quota_cores: float | None  # the quota in force (None: unlimited)


@dataclass(frozen=True)
class ShadowReport:
    plan: str
    plan_cost_mbps: float
    duration_s: float
    flows: tuple[FlowResult, ...]
    links: tuple[LinkResult, ...]
    paths: tuple[PathResult, ...]
    bottlenecks: tuple[str, ...]
    violations: tuple[str, ...]  # policy conformance failures
    verdict: str  # pass | fail | untrusted (CPU-bound: see disturbances)
    reasons: tuple[str, ...]
    attempts: int = 1  # runs made: a run whose streams stalled is measured again
    # what in the reported run was the host's doing, not the plan's: stalls left after the last
    # attempt, loss outside the meter, a generator behind its schedule, a shortfall while the
    # datapath dropped packets unread. Any of them makes the run CPU-bound and its verdict
    # "untrusted" (empty: clean)
    disturbances: tuple[str, ...] = ()
    # emulation.hostcpu.CpuUse over the load: busy share, busiest OVS thread (reported, judges nothing)
    cpu: dict | None = None
    # interface -> packets the userspace datapath's receive socket dropped during the load
    # (emulation.dpsock; None: not known)
    rx_drops: dict | None = None
    compute: tuple[ComputeResult, ...] = ()  # the CPU-limited hosts' loads (emulation.hostcompute)

    @property
    def trusted(self) -> bool:
        return not self.disturbances

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)
