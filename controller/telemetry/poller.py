"""The polling core (pure): statistics replies in, per-cycle samples out.

The os-ken shim calls :meth:`PollCore.begin_cycle` every poll interval; it returns the
samples of the cycle that just ended and the requests to send for the next one. Each complete
(multipart-assembled) reply goes to ``on_flow_stats`` / ``on_port_stats`` / ``on_meter_stats``
with the time it arrived.

Aggregation, per cycle:

* **per tenant/application/direction** - the admission rules in table 0 carry the
  (tenant, app, direction) cookie, and every packet passes exactly one of them, at its ingress
  switch; the rate is the sum over switches of (bytes counted / time since that switch's
  previous reply). If a switch holding rules for the key answered with a gap, or has not
  answered for :data:`LATE_INTERVALS` poll intervals (disconnected, or not answering), the key's
  sample is a gap - a partial sum would under-report. A reply that is merely late (the switch
  answered within the last :data:`LATE_INTERVALS` intervals, e.g. the baseline reply after a
  reconnect, or a busy machine) gives no sample for this cycle instead: the switch's next reply
  is differenced against its previous one, so the next sample covers both intervals.
* **per link and direction** - transmitted bytes of the sending switch's port; utilisation is
  that rate over the spec capacity.
* **per switch** - sums over its ports, its flow count and the rate of denied packets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from topologies import NetworkSpec, wire

from ..cookies import APP_ARP, APP_DENY, APP_ICMP, APP_NONE, DIR_FORWARD, DIR_REVERSE, Cookie, CookieError
from ..rules import TABLE_ACL, FlowRule
from .counters import CounterTracker, Reading
from .samples import Sample, app_series, link_series, meter_series, switch_series

DIRECTIONS = {DIR_FORWARD: "fwd", DIR_REVERSE: "rev", 0: "all"}
GAP = object()
LATE_INTERVALS = 2.5  # a switch silent for longer than this many poll intervals makes gaps


@dataclass(frozen=True)
class FlowStat:
    table: int
    priority: int
    match: tuple
    cookie: int
    bytes: int
    packets: int
    duration_s: float


@dataclass(frozen=True)
class PortStat:
    port: int
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    duration_s: float


@dataclass(frozen=True)
class MeterStat:
    meter_id: int
    in_bytes: int
    in_packets: int
    band_bytes: int  # bytes the meter's bands dropped
    band_packets: int
    duration_s: float


@dataclass
class PollStats:
    """Health counters for metrics: cumulative since start."""

    cycles: int = 0
    missed_replies: dict[tuple[int, str], int] = field(default_factory=lambda: defaultdict(int))
    gaps: int = 0
    late: int = 0  # application samples deferred to the next cycle (a reply was late)


def app_name(spec: NetworkSpec, tenant_no: int, app_no: int) -> str:
    special = {APP_ICMP: "icmp", APP_ARP: "arp", APP_DENY: "denied", APP_NONE: "infra"}
    if app_no in special:
        return special[app_no]
    return spec.tenants[tenant_no - 1].applications[app_no - 1].name


class PollCore:
    KINDS = ("flow", "port", "meter")

    def __init__(self, spec: NetworkSpec, rules: dict[int, tuple[FlowRule, ...]],
                 interval_s: float = 1.0):
        if interval_s <= 0:
            raise ValueError(f"poll_interval: must be > 0 s (got {interval_s!r})")
        self.spec = spec
        self.interval_s = interval_s
        self.tracker = CounterTracker(min_dt_s=0.2 * interval_s, max_dt_s=max(5.0, 5 * interval_s),
                                      max_bps=self._max_bps(spec))
        self.names = {s.dpid: s.name for s in spec.switches}
        self.no_meter_stats: set[int] = set()  # switches without meters (tc HTB fallback)
        w = wire(spec)
        # (dpid, port) -> (link series prefix parts, capacity in bit/s)
        self.link_of_port: dict[tuple[int, int], tuple[str, str, str, str, float]] = {}
        dp = {s.name: s.dpid for s in spec.switches}
        for lk, ((sa, pa), (sb, pb)) in zip(spec.links, w.link_ports):
            cap = lk.capacity_mbps * 1e6
            self.link_of_port[(dp[sa], pa)] = (lk.a, lk.b, sa, sb, cap)
            self.link_of_port[(dp[sb], pb)] = (lk.a, lk.b, sb, sa, cap)
        self.contributors: dict[str, set[int]] = defaultdict(set)
        self.set_rules(rules)
        self.last_reply: dict[tuple[int, str], float] = {}
        self.asked: set[tuple[int, str]] = set()
        self.answered: set[tuple[int, str]] = set()
        self.pending: dict[str, dict[int, object]] = defaultdict(dict)  # series -> dpid -> bps|GAP
        self.pending_pps: dict[str, dict[int, object]] = defaultdict(dict)
        self.samples: list[Sample] = []
        self.stats = PollStats()

    def set_rules(self, rules: dict[int, tuple[FlowRule, ...]]) -> None:
        """Which switches hold admission rules for each (tenant, app, direction) series; called
        again when a plan changes the rules."""
        contributors: dict[str, set[int]] = defaultdict(set)
        for dpid, rs in rules.items():
            for r in rs:
                if r.table != TABLE_ACL:
                    continue
                name = self._cookie_series(r.cookie)
                if name:
                    contributors[name].add(dpid)
        self.contributors = contributors

    @staticmethod
    def _max_bps(spec: NetworkSpec) -> float:
        fastest = max([lk.capacity_mbps for lk in spec.links] + [h.link_mbps for h in spec.hosts])
        return 10 * fastest * 1e6 * max(1, len(spec.hosts))

    def _cookie_series(self, cookie: int) -> str | None:
        """The series base name (without metric) counted by a table-0 rule, if any."""
        try:
            c = Cookie.decode(cookie)
        except CookieError:
            return None
        if c.tenant == 0 or c.app == APP_DENY:
            return None
        tenant = self.spec.tenants[c.tenant - 1].id
        return app_series(tenant, app_name(self.spec, c.tenant, c.app), DIRECTIONS[c.direction], "")[:-1]

    # ---------------------------------------------------------------- cycle
    def begin_cycle(self, now: float, connected: list[int]) -> tuple[list[Sample], list[tuple[int, str]]]:
        """Close the current cycle (its samples) and list the requests (dpid, kind) to send."""
        samples = self._close_cycle(now)
        for dpid in sorted(set(self.names) - set(connected)):
            samples += self._switch_gaps(dpid, now, "switch not connected")
        self.asked = {(d, k) for d in connected for k in self.KINDS
                      if not (k == "meter" and d in self.no_meter_stats)}
        self.stats.cycles += 1
        return samples, sorted(self.asked)

    def _close_cycle(self, now: float) -> list[Sample]:
        out, self.samples = self.samples, []
        if self.stats.cycles == 0:
            return out
        for key in self.asked - self.answered:
            self.stats.missed_replies[key] += 1
        self.asked = set()
        for base, dpids in self.contributors.items():
            got = self.pending.get(base, {})
            got_pps = self.pending_pps.get(base, {})
            missing = [d for d in dpids if d not in got]
            if missing and not any(v is GAP for v in got.values()) and all(
                    self._late(d, now) for d in missing):
                self.stats.late += 1
                continue  # the next cycle's rate covers this interval too
            if missing or any(v is GAP for v in got.values()):
                why = (f"no reply from {[self.names[d] for d in missing]}" if missing else "counter gap")
                out.append(Sample(now, base + "/bps", None, why))
                out.append(Sample(now, base + "/pps", None, why))
                self.stats.gaps += 1
            else:
                out.append(Sample(now, base + "/bps", float(sum(got.values()))))
                out.append(Sample(now, base + "/pps", float(sum(got_pps.values()))))
        self.pending.clear()
        self.pending_pps.clear()
        self.answered = set()
        return out

    def _late(self, dpid: int, now: float) -> bool:
        """The switch's flow reply is late, not lost: it answered recently."""
        prev = self.last_reply.get((dpid, "flow"))
        return prev is not None and now - prev <= LATE_INTERVALS * self.interval_s

    def _window(self, dpid: int, kind: str, now: float) -> float | None:
        prev = self.last_reply.get((dpid, kind))
        self.last_reply[(dpid, kind)] = now
        self.answered.add((dpid, kind))
        return None if prev is None else now - prev

    # ---------------------------------------------------------------- replies
    def on_flow_stats(self, dpid: int, entries: list[FlowStat], now: float) -> None:
        if dpid not in self.names:
            return
        window = self._window(dpid, "flow", now)
        acc: dict[str, list] = defaultdict(lambda: [0, 0, False])  # bytes, packets, gap
        denied_pkts, denied_gap = 0, False
        for e in entries:
            d = self.tracker.update(("flow", dpid, e.table, e.priority, e.match),
                                    Reading(now, e.bytes, e.packets, e.duration_s), window)
            if e.table == TABLE_ACL:
                base = self._cookie_series(e.cookie)
            else:
                base = None
            is_deny = (e.cookie >> 56 == 0x6E and Cookie.decode(e.cookie).app == APP_DENY)
            if base is None and not is_deny:
                continue
            if d is None or d.gap:
                if base:
                    acc[base][2] = True
                else:
                    denied_gap = True
                continue
            if base:
                acc[base][0] += d.bytes
                acc[base][1] += d.packets
            else:
                denied_pkts += d.packets
        if window is None:
            return  # first reply from this switch: baseline only
        for base in self.contributors:
            if dpid not in self.contributors[base]:
                continue
            b, p, gap = acc.get(base, (0, 0, False))
            if gap:
                self.pending[base][dpid] = GAP
                self.pending_pps[base][dpid] = GAP
            else:
                self.pending[base][dpid] = b * 8 / window
                self.pending_pps[base][dpid] = p / window
        name = self.names[dpid]
        self.samples.append(Sample(now, switch_series(name, "flows"), float(len(entries))))
        self.samples.append(Sample(now, switch_series(name, "denied_pps"),
                                   None if denied_gap else denied_pkts / window))

    def on_port_stats(self, dpid: int, entries: list[PortStat], now: float) -> None:
        if dpid not in self.names:
            return
        window = self._window(dpid, "port", now)
        name = self.names[dpid]
        if window is None:
            self.samples += [x for x in self._switch_gaps(dpid, now, "first reading, baseline")
                             if x.series.startswith("link/") or x.series.endswith("_bps")]
        rx_total = tx_total = 0.0
        gap = False
        for e in entries:
            if e.port > 0xFFFFFF00:  # LOCAL and other reserved ports
                continue
            drx = self.tracker.update(("port", dpid, e.port, "rx"),
                                      Reading(now, e.rx_bytes, e.rx_packets, e.duration_s), window)
            dtx = self.tracker.update(("port", dpid, e.port, "tx"),
                                      Reading(now, e.tx_bytes, e.tx_packets, e.duration_s), window)
            if window is None:
                continue
            if drx is None or dtx is None or drx.gap or dtx.gap:
                gap = True
                tx_bps = None
            else:
                rx_total += drx.bytes * 8 / window
                tx_bps = dtx.bytes * 8 / window
                tx_total += tx_bps
            link = self.link_of_port.get((dpid, e.port))
            if link:
                a, b, src, dst, cap = link
                self.samples.append(Sample(now, link_series(a, b, src, dst, "bps"), tx_bps,
                                           "" if tx_bps is not None else "counter gap"))
                self.samples.append(Sample(now, link_series(a, b, src, dst, "util"),
                                           None if tx_bps is None else tx_bps / cap))
        if window is None:
            return
        self.samples.append(Sample(now, switch_series(name, "rx_bps"), None if gap else rx_total))
        self.samples.append(Sample(now, switch_series(name, "tx_bps"), None if gap else tx_total))

    def _switch_gaps(self, dpid: int, now: float, why: str) -> list[Sample]:
        """Gap samples for every link direction and switch series this switch measures."""
        name = self.names[dpid]
        out = [Sample(now, switch_series(name, m), None, why)
               for m in ("rx_bps", "tx_bps", "flows", "denied_pps")]
        for (d, _port), (a, b, src, dst, _cap) in self.link_of_port.items():
            if d == dpid:
                out += [Sample(now, link_series(a, b, src, dst, m), None, why) for m in ("bps", "util")]
        return out

    def on_meter_stats(self, dpid: int, entries: list[MeterStat], now: float) -> None:
        if dpid not in self.names:
            return
        window = self._window(dpid, "meter", now)
        name = self.names[dpid]
        for e in entries:
            din = self.tracker.update(("meter", dpid, e.meter_id, "in"),
                                      Reading(now, e.in_bytes, e.in_packets, e.duration_s), window)
            ddrop = self.tracker.update(("meter", dpid, e.meter_id, "drop"),
                                        Reading(now, e.band_bytes, e.band_packets, e.duration_s), window)
            if window is None:
                continue
            for metric, d in (("in_bps", din), ("drop_bps", ddrop)):
                ok = d is not None and not d.gap
                self.samples.append(Sample(now, meter_series(name, e.meter_id, metric),
                                           d.bytes * 8 / window if ok else None))

    def switch_gone(self, dpid: int) -> None:
        """A switch disconnected: its next reply must not be differenced against stale state."""
        for kind in self.KINDS:
            self.last_reply.pop((dpid, kind), None)
