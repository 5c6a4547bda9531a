"""Shadow networks: a throw-away replica of a tenant's network, driven by the forecast, measured.

A shadow is a second Mininet network built from the same spec (all tenants, or only some), with
its own three-character name prefix (default ``sh1``) on every node, bridge and interface, its
own controller process (the same controller code, so the same routing and ACLs) on free OpenFlow
and REST ports, with its own store in the shadow's work directory. Production is never touched:
the shadow's switches connect only to the shadow's controller, and its hosts only to its
switches. ``netshadow shadow clean`` removes a crashed shadow by prefix, and nothing else.

A run (:meth:`Shadow.run`) for one candidate plan:

1. the controller is (re)started with the plan, so meters and policy additions are installed on
   freshly cleared switches - the result does not depend on what ran before;
2. every tenant application with a forecast gets a flow between representative hosts (the first
   client/server pair of its policies) at the forecast rate of the chosen quantile, the horizon
   compressed to ``duration_s``: UDP from :mod:`emulation.udpgen` (scapy frames, raw socket),
   TCP from iperf3 at the forecast's mean rate;
3. during the load, scan probes (:mod:`emulation.scan`) go from every host to every other host on
   every application port and ICMP, giving RTT percentiles and the reachability matrix, which is
   checked against the spec's policies;
4. link utilisation comes from the shadow controller's own telemetry; links above
   ``util_threshold`` and flows losing more than ``loss_threshold`` are bottlenecks;
5. the verdict: every guaranteed application got >= 99 % of what was offered through the plan
   (below), no policy violation, and the RTT bound (if set) held.

What the host did is kept apart from what the plan did. When the sender or the userspace
datapath is descheduled, the stream arrives with a silence and then a burst, and the meter's
bucket (a tenth of a second at the rate by default) overflows during the silence; a saturated
host also drops packets outside any meter (a full socket buffer in front of the datapath). Per
UDP stream the run records the longest silence between arrivals (kernel receive timestamps,
:mod:`emulation.udpgen`) and what its meter passed and dropped (its counters before and after,
:mod:`emulation.meters`). A run where a stream fell silent for longer than its meter's burst
while its schedule had it sending is *stalled* and measured again, up to ``attempts`` times. A
metered UDP flow is judged by what the plan did to it: its meter's drops, and loss across a
congested link of its path; other loss is reported as the host's. The report gives the number
of runs and the disturbances of the one it judges.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

from controller.plan import DEFAULT_BURST_S, Plan
from controller.tenancy import app_number, compile_network, meter_id, tenant_number
from topologies import NetworkSpec, wire

from . import cleanup
from .controller_proc import ControllerProcess, free_port
from .iperf import wait_listening
from .isolation import app_ports
from .lab import Lab
from .meters import MeterCounters, read_meters
from .report import FlowResult, LinkResult, PathResult, ShadowReport

LOG = logging.getLogger("netshadow.shadow")

DELIVERY_OBJECTIVE = 0.99


@dataclass(frozen=True)
class FlowDemand:
    tenant: str
    app: str
    src: str
    dst: str
    protocol: str
    port: int
    rates_mbps: tuple[float, ...]  # one per forecast step, L2 Mbit/s


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def restrict(spec: NetworkSpec, tenants: list[str] | None) -> NetworkSpec:
    """The spec with only ``tenants`` (all switches and links kept)."""
    if not tenants:
        return spec
    unknown = sorted(set(tenants) - {t.id for t in spec.tenants})
    if unknown:
        raise ValueError(f"tenants: not in the spec: {unknown}")
    keep = [t for t in spec.tenants if t.id in tenants]
    hosts = {h for t in keep for h in t.hosts}
    return NetworkSpec(spec.name, spec.switches, spec.links,
                       tuple(h for h in spec.hosts if h.name in hosts), tuple(keep), spec.source)


def demand_for(spec: NetworkSpec, tenant: str, app: str, rates_mbps) -> FlowDemand | None:
    """The flow that stands for ``tenant``'s ``app``: between the first client/server pair of its
    policies, at ``rates_mbps`` (one per step); None if no policy allows it."""
    t = spec.tenant(tenant)
    a = t.app(app)
    pairs = sorted((s, d) for s, d, ap in spec.allowed() if ap == app and s in t.hosts)
    if not pairs:
        return None
    return FlowDemand(t.id, a.name, pairs[0][0], pairs[0][1], a.protocol, a.port,
                      tuple(max(0.0, float(r)) for r in rates_mbps))


def demands_from_forecast(spec: NetworkSpec, forecast, quantile: float = 0.5) -> list[FlowDemand]:
    """One flow per tenant application whose ``app/<tenant>/<app>/fwd/bps`` series is forecast."""
    out = []
    for t in spec.tenants:
        for a in t.applications:
            try:
                sf = forecast.get(f"app/{t.id}/{a.name}/fwd/bps")
            except KeyError:
                continue
            d = demand_for(spec, t.id, a.name, [v / 1e6 for v in sf.quantile(quantile)])
            if d is not None:
                out.append(d)
    return out


class Shadow:
    def __init__(self, spec: NetworkSpec, prefix: str = "sh1", tenants: list[str] | None = None,
                 workdir: str | Path | None = None, util_threshold: float = 0.9,
                 loss_threshold: float = 0.01, rtt_bound_ms: float | None = None,
                 frame_bytes: int = 1514, attempts: int = 3):
        self.spec = restrict(spec, tenants)
        self.prefix = prefix
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"netshadow-{prefix}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.util_threshold = util_threshold
        self.loss_threshold = loss_threshold
        self.rtt_bound_ms = rtt_bound_ms
        if not 64 <= frame_bytes <= 1514:
            raise ValueError(f"frame_bytes: must be 64-1514 (got {frame_bytes!r})")
        self.frame_bytes = frame_bytes  # L2 size of the generated UDP frames
        if not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ValueError(f"attempts: must be an integer 1-10 (got {attempts!r})")
        self.attempts = attempts  # runs at most, while the streams stall
        self.of_port = free_port()
        self.rest_port = free_port()
        self.ctl: ControllerProcess | None = None
        self.lab: Lab | None = None
        self.plan: Plan | None = None
        self.build_s: float | None = None
        self.spec_path = self.workdir / "spec.json"
        self.spec_path.write_text(json.dumps(self.spec.to_dict()))

    # ------------------------------------------------------------------ lifecycle
    def _controller(self, plan: Plan | None) -> ControllerProcess:
        """A controller process for the shadow, registered under its prefix so that
        ``netshadow shadow clean`` can end it by pid after a crash."""
        args = []
        if plan is not None:
            p = self.workdir / f"plan-{plan.name}.json"
            p.write_text(json.dumps(plan.to_dict()))
            args = ["--plan", str(p)]
        return ControllerProcess(self.spec_path, self.of_port, self.rest_port,
                                 log_path=self.workdir / "controller.log", extra_args=args,
                                 db_path=self.workdir / "shadow.db")

    def _start_controller(self, plan: Plan | None) -> ControllerProcess:
        ctl = self._controller(plan).start()
        cleanup.register_pid(self.prefix, ctl.proc.pid)
        return ctl

    def start(self, plan: Plan | None = None) -> Shadow:
        t0 = time.monotonic()
        try:
            # the controller starts while Mininet builds; switches connect once it listens
            self.ctl = self._controller(plan).launch()
            cleanup.register_pid(self.prefix, self.ctl.proc.pid)
            self.lab = Lab(self.spec, prefix=self.prefix, controller_port=self.of_port,
                           controller_starting=True)
            self.lab.start()
            self.ctl.wait_started()
            self.ctl.wait_ready(timeout_s=60)
        except BaseException:
            self.stop()
            raise
        self.plan = plan
        self.build_s = time.monotonic() - t0
        return self

    def apply(self, plan: Plan | None) -> None:
        """Restart the shadow's controller with ``plan``; switches are cleared and re-programmed."""
        self.ctl.stop()
        self.ctl = self._start_controller(plan)
        self.ctl.wait_ready(timeout_s=60)
        self.plan = plan

    def stop(self) -> None:
        try:
            if self.lab is not None:
                self.lab.stop()
        finally:
            if self.ctl is not None:
                self.ctl.stop()

    def __enter__(self) -> Shadow:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ a run
    def _host_iface(self, host: str) -> str:
        return f"{self.prefix}{host}-eth0"

    def run(self, demands: list[FlowDemand], duration_s: float = 10.0, probe: bool = True) -> ShadowReport:
        """Measure the plan in force under ``demands`` (the horizon compressed to
        ``duration_s``); again, up to ``attempts`` runs, while a stream stalls."""
        # nothing to offer, nothing to measure (and iperf3 reads a rate of 0 as "unlimited")
        demands = [d for d in demands if max(d.rates_mbps, default=0.0) > 0]
        for attempt in range(1, self.attempts + 1):
            flows, links, paths = self._run_once(demands, duration_s, probe)
            stalls = self._stalls(demands, flows)
            if not stalls:
                break
            LOG.warning("shadow %s: run %d of %d stalled (%s)%s", self.prefix, attempt,
                        self.attempts, "; ".join(stalls),
                        ", measuring again" if attempt < self.attempts else "")
        disturbed = tuple(stalls + self._host_loss(demands, flows, links))
        return self._verdict(flows, links, paths, duration_s, attempt, disturbed)

    def _burst_s(self, d: FlowDemand) -> float:
        alloc = self.plan.allocation(d.tenant, d.app) if self.plan else None
        return alloc.burst / (alloc.rate_mbps * 1e3) if alloc else DEFAULT_BURST_S

    def _stalls(self, demands: list[FlowDemand], flows: list[FlowResult]) -> list[str]:
        """The UDP streams that fell silent for longer than their meter's burst while their
        schedule had them sending (a schedule with a silent step of its own is not judged)."""
        out = []
        for d, f in zip(demands, flows, strict=True):
            if f.max_gap_s is None or min(d.rates_mbps) <= 0:
                continue
            burst_s = self._burst_s(d)
            # a silence of four frame intervals at the lowest scheduled rate is still a stream
            allowed = max(burst_s, 4 * self.frame_bytes * 8 / (min(d.rates_mbps) * 1e6))
            if f.max_gap_s > allowed:
                out.append(f"{d.tenant}/{d.app} {d.src}>{d.dst} silent {f.max_gap_s:.3f} s "
                           f"(its meter's burst lasts {burst_s:.3f} s)")
        return out

    def _congested(self, f: FlowResult, links: list[LinkResult]) -> list[str]:
        label = f"{f.tenant}/{f.app} {f.src}>{f.dst}"
        return [lk.direction for lk in links if lk.mean_util > self.util_threshold and label in lk.flows]

    def _host_loss(self, demands: list[FlowDemand], flows: list[FlowResult],
                   links: list[LinkResult]) -> list[str]:
        """UDP streams that lost more than ``loss_threshold`` that neither their meter nor a
        congested link on their path explains: the host's own drops (a saturated datapath)."""
        out = []
        for f in flows:
            if f.loss is None or self._congested(f, links):
                continue
            unexplained = f.loss - (f.meter_dropped or 0.0)
            if unexplained > self.loss_threshold:
                out.append(f"{f.tenant}/{f.app} {f.src}>{f.dst} lost {unexplained:.1%} outside its "
                           f"meter with no congested link on its path")
        return out

    def _run_once(self, demands: list[FlowDemand], duration_s: float, probe: bool):
        procs: list[subprocess.Popen] = []
        t_start = time.time()
        try:
            receivers = self._start_receivers(demands, duration_s, probe, procs)
            meters_before = self._meter_counts(demands)
            senders, tcp = self._start_senders(demands, duration_s, procs)
            paths = self._probe() if probe else []
            counts = []
            for d, tx in senders:
                s = json.loads(tx.communicate(timeout=duration_s + 30)[0])
                counts.append((d, s, json.loads(receivers[id(d)].communicate(timeout=30)[0])))
            meters_after = self._meter_counts(demands)  # every receiver has gone idle: all counted
            measured = {id(d): self._udp_flow(d, s, r, meters_before, meters_after) for d, s, r in counts}
            for d, cl in tcp:
                out = json.loads(cl.communicate(timeout=duration_s + 30)[0] or "{}")
                end = out.get("end", {})
                sent = end.get("sum_sent", {}).get("bits_per_second", 0.0) / 1e6
                got = end.get("sum_received", {}).get("bits_per_second", 0.0) / 1e6
                measured[id(d)] = self._flow(d, sent, got, None, None, None, None)
            flows = [measured[id(d)] for d in demands]  # in the demands' order
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        self._wait_stored(t_start + duration_s)  # the shadow controller's last polls reach its store
        links = self._links(demands, t_start + 1, t_start + duration_s)
        return flows, links, paths

    def _start_receivers(self, demands: list[FlowDemand], duration_s: float, probe: bool,
                         procs: list) -> dict[int, subprocess.Popen]:
        """The UDP flows' receivers (they also answer scan probes on their port) and, for the
        scan, UDP echo servers on every other application port; each one ready."""
        spec, lab, py = self.spec, self.lab, sys.executable
        receivers = {}
        for d in demands:
            if d.protocol == "udp":
                rx = lab.host(d.dst).popen([py, "-u", "-m", "emulation.udpgen", "recv", "--port",
                                            str(d.port), "--seconds", str(duration_s + 15)],
                                           stdout=subprocess.PIPE, text=True)
                receivers[id(d)] = rx
                procs.append(rx)
        for rx in receivers.values():
            rx.stdout.readline()
        if probe:
            busy = {(d.dst, d.port) for d in demands if d.protocol == "udp"}
            udp_ports = [p for proto, p in app_ports(spec) if proto == "udp"]
            for h in spec.hosts:
                free = ",".join(str(p) for p in udp_ports if (h.name, p) not in busy)
                srv = lab.host(h.name).popen([py, "-u", "-m", "emulation.probe", "serve",
                                              "--udp", free], stdout=subprocess.PIPE, text=True)
                procs.append(srv)
                srv.stdout.readline()
        return receivers

    def _start_senders(self, demands: list[FlowDemand], duration_s: float, procs: list):
        """UDP senders on the forecast schedule; TCP flows as iperf3 at the schedule's mean."""
        spec, lab, py = self.spec, self.lab, sys.executable
        senders, tcp = [], []
        for d in demands:
            if d.protocol == "udp":
                hs, hd = spec.host(d.src), spec.host(d.dst)
                tx = lab.host(d.src).popen(
                    [py, "-m", "emulation.udpgen", "send", "--iface", self._host_iface(d.src),
                     "--src-mac", hs.mac, "--dst-mac", hd.mac, "--src-ip", hs.ip, "--dst-ip", hd.ip,
                     "--sport", str(d.port), "--dport", str(d.port),
                     "--rate-mbps", ",".join(f"{r:.6f}" for r in d.rates_mbps),
                     "--seconds", str(duration_s), "--frame-bytes", str(self.frame_bytes)],
                    stdout=subprocess.PIPE, text=True)
                senders.append((d, tx))
                procs.append(tx)
            else:
                srv = lab.host(d.dst).popen(["iperf3", "-s", "-1", "-p", str(d.port)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                procs.append(srv)
                wait_listening(lab.host(d.dst), d.port)
                mean = float(np.mean(d.rates_mbps))
                cl = lab.host(d.src).popen(
                    ["iperf3", "-c", spec.host(d.dst).ip, "-p", str(d.port), "-b", f"{mean:.3f}M",
                     "-t", str(duration_s), "--json"], stdout=subprocess.PIPE, text=True)
                tcp.append((d, cl))
                procs.append(cl)
        return senders, tcp

    def _udp_flow(self, d: FlowDemand, s: dict, r: dict, meters_before: dict,
                  meters_after: dict) -> FlowResult:
        """A UDP flow from its sender's and receiver's reports and its meter's counters."""
        loss = 1 - r["distinct"] / s["packets"] if s["packets"] else None
        dropped = passed = None
        key = (d.tenant, d.app)
        if key in meters_after and s["packets"] and s["seconds"]:
            was = meters_before.get(key, MeterCounters(0, 0))
            n_in = meters_after[key].packets_in - was.packets_in
            n_drop = meters_after[key].packets_dropped - was.packets_dropped
            dropped = n_drop / s["packets"]
            passed = (n_in - n_drop) * (s["l2_bytes"] / s["packets"]) * 8 / s["seconds"] / 1e6
        delivered = r["l2_bytes"] * 8 / s["seconds"] / 1e6 if s["seconds"] else 0.0
        return self._flow(d, s["l2_bps"] / 1e6, delivered, loss, r["max_gap_s"], dropped, passed)

    def _flow(self, d: FlowDemand, offered: float, delivered: float, loss: float | None,
              max_gap_s: float | None, meter_dropped: float | None,
              meter_passed_mbps: float | None) -> FlowResult:
        alloc = self.plan.allocation(d.tenant, d.app) if self.plan else None
        return FlowResult(d.tenant, d.app, d.src, d.dst, d.protocol, round(offered, 4),
                          round(delivered, 4), loss, alloc.rate_mbps if alloc else None, max_gap_s,
                          meter_dropped, None if meter_passed_mbps is None else round(meter_passed_mbps, 4))

    def _meter_counts(self, demands: list[FlowDemand]) -> dict[tuple[str, str], MeterCounters]:
        """The counters so far of each metered demand's application meter, on the switch its
        source host hangs off (where the controller installs it); none on a switch that
        enforces with tc instead."""
        if self.plan is None:
            return {}
        wiring = wire(self.spec)
        out, read = {}, {}
        for d in demands:
            if self.plan.allocation(d.tenant, d.app) is None:
                continue
            bridge = self.prefix + wiring.host_port[d.src][0]
            if bridge not in read:
                read[bridge] = read_meters(bridge)
            mid = meter_id(tenant_number(self.spec, d.tenant), app_number(self.spec, d.tenant, d.app))
            if mid in read[bridge]:
                out[d.tenant, d.app] = read[bridge][mid]
        return out

    def _probe(self) -> list[PathResult]:
        """Scan every host pair on ICMP and every application port, all sources at once."""
        from .isolation import expected_cases

        spec, lab = self.spec, self.lab
        cases = expected_cases(spec)
        by_src: dict[str, list] = {}
        for c in cases:
            by_src.setdefault(c.src, []).append(c)
        procs = []
        for src, cs in by_src.items():
            h = spec.host(src)
            targets = [{"mac": spec.host(c.dst).mac, "ip": spec.host(c.dst).ip, "proto": c.proto,
                        "port": c.port} for c in cs]
            p = lab.host(src).popen([sys.executable, "-m", "emulation.scan", "--iface",
                                     self._host_iface(src), "--src-mac", h.mac, "--src-ip", h.ip],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            p.stdin.write(json.dumps(targets))
            p.stdin.close()
            procs.append((p, cs))
        out = []
        for p, cs in procs:
            lines = [json.loads(x) for x in p.stdout.read().splitlines() if x.startswith("{")]
            p.wait(timeout=60)
            for c, r in zip(cs, lines, strict=True):
                pcts = [_percentile(r["rtt_ms"], q) for q in (50, 95, 99)]
                out.append(PathResult(c.src, c.dst, c.proto, c.port, c.expected, r["reachable"],
                                      *pcts))
        return out

    def _wait_stored(self, t: float, timeout_s: float = 30.0) -> None:
        """Wait until the shadow's store holds link samples at or after ``t`` (its poller and
        batch writer have caught up), or ``timeout_s`` passes (then what is stored is used, and
        the log says so)."""
        deadline = time.monotonic() + timeout_s
        while True:
            r = requests.get(f"{self.ctl.url}/series", params={"kind": "link", "metric": "util",
                                                                "since": t}, timeout=10)
            r.raise_for_status()
            if any(s["points"] for s in r.json()["series"]):
                return
            if time.monotonic() >= deadline:
                LOG.warning("shadow %s: no link samples after %.1f within %g s; measuring what is "
                            "stored", self.prefix, t, timeout_s)
                return
            time.sleep(0.2)

    def _links(self, demands: list[FlowDemand], since: float, until: float) -> list[LinkResult]:
        paths = compile_network(self.spec).paths
        crossing: dict[tuple[str, str], list[str]] = {}
        for d in demands:
            p = paths.get((d.src, d.dst), ())
            for a, b in zip(p, p[1:]):
                crossing.setdefault((a, b), []).append(f"{d.tenant}/{d.app} {d.src}>{d.dst}")
        out = []
        r = requests.get(f"{self.ctl.url}/series", params={"kind": "link", "metric": "util",
                                                            "since": since, "until": until}, timeout=10)
        r.raise_for_status()
        for s in r.json()["series"]:
            vals = [v for _, v in s["points"] if v is not None]
            if not vals:
                continue
            a, b = s["direction"].split(">")
            out.append(LinkResult(s["link"], s["direction"], round(float(np.mean(vals)), 4),
                                  round(float(np.max(vals)), 4), tuple(crossing.get((a, b), ()))))
        return sorted(out, key=lambda x: -x.mean_util)

    def _shortfall(self, f: FlowResult, links: list[LinkResult]) -> str | None:
        """Why a guaranteed flow's plan did not carry it, or None. With its meter's counters
        (UDP through a meter) the plan is judged by what the plan did: what its meter dropped,
        and what was lost on a congested link of its path; what the host lost elsewhere is the
        host's (reported with the disturbances). Without them, by delivered against offered."""
        if f.guaranteed_mbps is None or f.offered_mbps <= 0:
            return None
        budget = 1 - DELIVERY_OBJECTIVE
        if f.meter_dropped is not None and f.loss is not None:
            if f.meter_dropped > budget:
                return (f"{f.tenant}/{f.app}: its meter dropped {f.meter_dropped:.1%} of "
                        f"{f.offered_mbps:.2f} Mbit/s offered (passed {f.meter_passed_mbps:.2f})")
            hot = self._congested(f, links)
            if hot and f.loss > budget:
                return (f"{f.tenant}/{f.app}: lost {f.loss:.1%} of {f.offered_mbps:.2f} Mbit/s "
                        f"offered across congested {', '.join(hot)}")
            return None
        if f.delivered_mbps < DELIVERY_OBJECTIVE * f.offered_mbps:
            return (f"{f.tenant}/{f.app} delivered {f.delivered_mbps:.2f} of "
                    f"{f.offered_mbps:.2f} Mbit/s offered")
        return None

    def _verdict(self, flows, links, paths, duration_s, attempts=1, disturbed=()) -> ShadowReport:
        bottlenecks = [f"link {lk.link} {lk.direction} at {lk.mean_util:.0%} carrying "
                       f"{', '.join(lk.flows) or 'no measured flow'}"
                       for lk in links if lk.mean_util > self.util_threshold]
        bottlenecks += [f"flow {f.tenant}/{f.app} {f.src}>{f.dst} losing {f.loss:.1%}"
                        for f in flows if f.loss is not None and f.loss > self.loss_threshold]
        violations = [f"{p.src}>{p.dst} {p.proto}{'/' + str(p.port) if p.port else ''}: "
                      f"{'denied by policy but reachable' if p.reachable else 'allowed but unreachable'}"
                      for p in paths if p.reachable != p.expected]
        reasons = [r for f in flows if (r := self._shortfall(f, links))]
        if violations:
            reasons.append(f"{len(violations)} policy violations")
        if self.rtt_bound_ms is not None:
            worst = max((p.rtt_p95_ms for p in paths if p.rtt_p95_ms is not None), default=None)
            if worst is not None and worst > self.rtt_bound_ms:
                reasons.append(f"p95 RTT {worst:.2f} ms above the bound {self.rtt_bound_ms} ms")
        plan = self.plan
        return ShadowReport(plan.name if plan else "none", plan.cost_mbps() if plan else 0.0,
                            duration_s, tuple(flows), tuple(links), tuple(paths), tuple(bottlenecks),
                            tuple(violations), "fail" if reasons else "pass", tuple(reasons),
                            attempts, disturbed)


def evaluate_plans(shadow: Shadow, plans: list[Plan | None], demands: list[FlowDemand],
                   duration_s: float) -> tuple[list[ShadowReport], ShadowReport | None]:
    """Run every plan in the same replica; returns the reports and the cheapest that passed."""
    reports = []
    for plan in plans:
        shadow.apply(plan)
        reports.append(shadow.run(demands, duration_s))
    passing = [r for r in reports if r.verdict == "pass"]
    return reports, min(passing, key=lambda r: r.plan_cost_mbps) if passing else None
