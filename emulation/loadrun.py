"""A load run on a running network: forecast-shaped flows, scan probes and RTT probes driven
into a Mininet network programmed by a netshadow controller, measured, and judged against the
plan in force.

The same code measures a shadow (:class:`emulation.shadow.Shadow`) and production
(:class:`emulation.production.Production`), so the two can be compared figure by figure
(:mod:`emulation.fidelity`): same generators, same schedule, same counters.

A run for the plan in force:

1. every demand becomes a flow between its hosts: UDP from :mod:`emulation.udpgen` (scapy
   frames, raw socket, on the schedule, one rate per step), TCP from iperf3 at the schedule's
   mean rate in ``TCP_WRITE_BYTES`` writes (iperf3's own 128 KiB writes left the socket as
   bursts of ~90 frames that queued every other flow on their path for milliseconds); UDP
   receivers count distinct sequence numbers, so loss is exact;
2. first, before the load, scan probes (:mod:`emulation.scan`) from every host to every other
   host on every application port and ICMP, on the network the plan programmed: the
   reachability matrix, checked against the spec's policies. They used to run during the load,
   but a dozen scapy processes starved the userspace datapath on a small machine, and the load
   lost packets outside any meter that it did not lose without them; reachability does not
   depend on load. Under the load, per UDP flow, RTT probes on the flow's own path and port
   (:func:`emulation.probe.rtt_series`, every ``RTT_PROBE_INTERVAL_S``),
   answered by the flow's receiver and kernel-timed at both ends, with the time they queued
   behind the load at the receiver taken out; a TCP flow's RTT is the sender's smoothed RTT,
   read from the kernel every ``RTT_PROBE_INTERVAL_S`` (:mod:`emulation.tcprtt`; iperf3's own
   report, every ``TCP_RTT_INTERVAL_S``, where that read nothing);
3. per link direction the bytes that arrived at its far end (OpenFlow port counters, before and
   after) over the run: its carried utilisation; what the plan put on it (the flows crossing it,
   after their meters) is its offered utilisation, and the controller's telemetry gives the
   peak one-second utilisation;
4. the verdict: every guaranteed application got >= 99 % of what was offered through the plan,
   no policy violation, and the RTT bound (if set) held;
5. with compute demands, each CPU-limited host runs the calibrated CPU load at its forecast
   shares beside the flows, and its cgroup's counters say whether it got the CPU it asked for
   and whether the quota held it back (:mod:`emulation.hostcompute`): a quota that throttled
   the load below its demand is a compute bottleneck and fails the plan.

What the host did is kept apart from what the plan did. When the sender or the userspace
datapath is descheduled, the stream arrives with a silence and then a burst, and the meter's
bucket (a tenth of a second at the rate by default) overflows during the silence; a saturated
host also drops packets outside any meter (a full socket buffer in front of the datapath). A run
where a stream fell silent for longer than its meter's burst while its schedule had it sending is
*stalled* and measured again, up to ``attempts`` times. A run is *CPU-bound*, and its verdict
``untrusted`` rather than pass or fail, when after the last attempt it is still stalled, a
stream lost packets that neither its meter nor a congested link explains, a generator sent
less than 98 % of its schedule, or the run fell short of its objectives (other than by what a
meter's own counters say it dropped) while the datapath's receive sockets dropped packets it
never read (:mod:`emulation.dpsock`). Each is evidence of the host failing the load. How busy
the CPUs and the busiest ``ovs-vswitchd`` thread were (:mod:`emulation.hostcpu`) is reported
beside the verdict but judges nothing: a forwarding thread at 95 % of a core carried a
bottleneck's 50 Mbit/s to the packet, the same in a shadow and in production. A policy
violation fails a run whatever the CPU did: reachability does not depend on speed.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import requests

from controller.plan import DEFAULT_BURST_S, Plan
from controller.tenancy import app_number, compile_network, meter_id, tenant_number
from topologies import NetworkSpec, wire

from . import dpsock, hostcompute, hostcpu, ovsns
from .iperf import wait_listening
from .isolation import app_ports
from .meters import MeterCounters, read_meters, settled
from .ports import PortCounters, read_ports
from .report import FlowResult, LinkResult, PathResult, ShadowReport

LOG = logging.getLogger("netshadow.loadrun")

DELIVERY_OBJECTIVE = 0.99
SCHEDULE_KEPT = 0.98  # a generator that sent less than this share of its schedule fell behind
RTT_PROBE_INTERVAL_S = 0.01
TCP_WRITE_BYTES = 8192  # iperf3's write size for a TCP flow: about six frames at a time
TCP_RTT_INTERVAL_S = 0.1  # iperf3's reporting interval: a TCP flow's RTT sample, seconds


@dataclass(frozen=True)
class FlowDemand:
    tenant: str
    app: str
    src: str
    dst: str
    protocol: str
    port: int
    rates_mbps: tuple[float, ...]  # one per forecast step, L2 Mbit/s


@dataclass(frozen=True)
class Measured:
    """One run's raw measurements, before the verdict."""

    flows: list
    links: list
    paths: list
    cpu: hostcpu.CpuUse | None = None
    rx_drops: dict | None = None  # interface -> packets the datapath's receive socket dropped
    compute: tuple = ()  # report.ComputeResult per compute demand


def end_processes(procs) -> None:
    """Kill and reap every process of ``procs`` still running."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


class LoadRun:
    """The measuring half of a network a load is run in. Subclasses provide ``spec``,
    ``prefix`` (of its bridges and interfaces), ``lab`` (``lab.host(name)`` with ``popen`` and
    ``cmd``, as Mininet's hosts have), ``plan`` (in force) and :attr:`controller_url`."""

    spec: NetworkSpec
    prefix: str
    plan: Plan | None
    lab: object

    def __init__(self, util_threshold: float = 0.9, loss_threshold: float = 0.01,
                 rtt_bound_ms: float | None = None, frame_bytes: int = 1514, attempts: int = 3):
        self.util_threshold = util_threshold
        self.loss_threshold = loss_threshold
        self.rtt_bound_ms = rtt_bound_ms
        if not 64 <= frame_bytes <= 1514:
            raise ValueError(f"frame_bytes: must be 64-1514 (got {frame_bytes!r})")
        self.frame_bytes = frame_bytes  # L2 size of the generated UDP frames
        if not isinstance(attempts, int) or not 1 <= attempts <= 10:
            raise ValueError(f"attempts: must be an integer 1-10 (got {attempts!r})")
        self.attempts = attempts  # runs at most, while the streams stall
        self._probes: dict | None = None  # the scan's probes per source host, crafted once
        self._pending_scanners: list | None = None  # spawned ahead of the next run

    @property
    def controller_url(self) -> str:
        raise NotImplementedError

    def _host_iface(self, host: str) -> str:
        return f"{self.prefix}{host}-eth0"

    def run(self, demands: list[FlowDemand], duration_s: float = 10.0, probe: bool = True,
            compute: list[hostcompute.ComputeDemand] = ()) -> ShadowReport:
        """Measure the plan in force under ``demands`` and the CPU-limited hosts' ``compute``
        (the horizon compressed to ``duration_s``); again, up to ``attempts`` runs, while a
        stream stalls."""
        # nothing to offer, nothing to measure (and iperf3 reads a rate of 0 as "unlimited")
        demands = [d for d in demands if max(d.rates_mbps, default=0.0) > 0]
        compute = [c for c in compute if c.shares and max(c.shares) > 0]
        for attempt in range(1, self.attempts + 1):
            m = self._run_once(demands, duration_s, probe, compute)
            stalls = self._stalls(demands, m.flows)
            if not stalls:
                break
            LOG.warning("%s: run %d of %d stalled (%s)%s", self.prefix, attempt, self.attempts,
                        "; ".join(stalls), ", measuring again" if attempt < self.attempts else "")
        bound = tuple(stalls + self._host_loss(demands, m.flows, m.links)
                      + self._behind(demands, m.flows))
        return self._verdict(m.flows, m.links, m.paths, duration_s, attempt, bound, m.cpu,
                             m.rx_drops, m.compute)

    # ------------------------------------------------------------------ the host's doing
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
        return [lk.direction for lk in links if label in lk.flows and self._hot(lk)]

    def _hot(self, lk: LinkResult) -> bool:
        """Carried or offered utilisation above the threshold: a congested link."""
        return any(u is not None and u > self.util_threshold
                   for u in (lk.mean_util, lk.offered_util))

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

    @staticmethod
    def _behind(demands: list[FlowDemand], flows: list[FlowResult]) -> list[str]:
        """UDP generators that could not keep their schedule (they catch up when late, so a
        shortfall at the end is time the CPU did not give them)."""
        return [f"{f.tenant}/{f.app} {f.src}>{f.dst}: its generator sent {f.offered_mbps:.2f} of "
                f"{f.scheduled_mbps:.2f} Mbit/s scheduled"
                for f in flows if f.scheduled_mbps and f.protocol == "udp"
                and f.offered_mbps < SCHEDULE_KEPT * f.scheduled_mbps]

    @staticmethod
    def _unread(rx_drops: dict | None) -> list[str]:
        if not rx_drops:
            return []
        worst = sorted(rx_drops.items(), key=lambda kv: -kv[1])[:3]
        return [f"the datapath dropped {sum(rx_drops.values())} packets it never read "
                f"(receive buffers full: {', '.join(f'{i} {n}' for i, n in worst)})"]

    # ------------------------------------------------------------------ one run
    def _run_once(self, demands: list[FlowDemand], duration_s: float, probe: bool,
                  compute: list = ()) -> Measured:
        procs: list[subprocess.Popen] = []
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-pairing")
        try:
            scanners = self._spawn_scanners(procs) if probe else []  # start while receivers do
            receivers = self._start_receivers(demands, duration_s, probe, procs)
            # the scan goes first, on the network the plan programmed, before the load: run
            # during it, a dozen scapy processes starved the datapath and the load lost packets
            # it would not have lost without them
            scanned = self._scan(self._ready(scanners)) if probe else []
            meters_before = self._meter_counts(demands)
            ports_before = self._port_counts()
            drops_before = self._rx_drops()
            senders, tcp = self._start_senders(demands, duration_s, procs)
            t_load = time.time()
            loads, c_before = self._start_compute(compute, duration_s, t_load + 0.2, procs)
            ovs_pid = ovsns.vswitchd_pid_file(self.prefix)  # the daemon forwarding this network
            cpu_before = hostcpu.sample(ovs_pid)  # the UDP load has begun
            rtt_s = duration_s - 0.5  # the flows' RTT under the load, until just before its end
            rtts = self._start_rtt_probes(demands, rtt_s, procs)
            counts = []
            sent = [(d, json.loads(tx.communicate(timeout=duration_s + 30)[0])) for d, tx in senders]
            computed = self._end_compute(compute, loads, c_before, duration_s)
            cpu = hostcpu.between(cpu_before, hostcpu.sample(ovs_pid))  # over the load
            for d, _ in sent:  # every sender is done: the receivers wait only for what is in flight
                receivers[id(d)].send_signal(signal.SIGUSR1)
            # the load is over: pair the scan's answers with their probes (scapy, CPU) while
            # the receivers wait for their last packets and the meters settle
            pairing = pool.submit(self._paths, scanned)
            for d, s in sent:
                counts.append((d, s, json.loads(receivers[id(d)].communicate(timeout=30)[0])))
            tcp_out = [(d, json.loads(cl.communicate(timeout=duration_s + 30)[0] or "{}"))
                       for d, cl in tcp]
            rtt = {id(d): json.loads(p.communicate(timeout=30)[0] or "[]") for d, p in rtts}
            # every receiver has gone idle; OVS folds the last packets into its meters lazily
            meters_after = settled(lambda: self._meter_counts(demands), every_s=0.6) \
                if meters_before else {}
            ports_after = self._port_counts()
            drops = None if drops_before is None or (after := self._rx_drops()) is None \
                else dpsock.between(drops_before, after)
            measured = {id(d): self._udp_flow(d, s, r, meters_before, meters_after, rtt.get(id(d)))
                        for d, s, r in counts}
            for d, out in tcp_out:
                measured[id(d)] = self._tcp_flow(d, out, rtt_s, rtt.get(id(d)))
            flows = [measured[id(d)] for d in demands]  # in the demands' order
            paths = pairing.result()
        finally:
            pool.shutdown(wait=True)
            end_processes(procs)
        peaks = self._peak_utils(t_load + 1, t_load + duration_s)
        links = self._links(demands, flows, ports_before, ports_after, duration_s, peaks)
        return Measured(flows, links, paths, cpu, drops, computed)

    def _cgroup(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def _start_compute(self, compute: list, duration_s: float, start: float, procs: list):
        """The CPU loads, all from ``start``; the cgroups' counters before them."""
        before = {c.host: hostcompute.counts(self._cgroup(c.host)) for c in compute}
        loads = []
        for c in compute:
            p = hostcompute.start_load(self.lab.host(c.host), c, duration_s / len(c.shares), start)
            procs.append(p)
            loads.append(p)
        return loads, before

    def _end_compute(self, compute: list, loads: list, before: dict, duration_s: float) -> tuple:
        out = []
        for c, p in zip(compute, loads, strict=True):
            _, err = p.communicate(timeout=duration_s + 30)
            if p.returncode != 0:
                raise RuntimeError(f"cpu load in {c.host} exited {p.returncode}: {err[-300:]}")
            out.append(hostcompute.result(c, before[c.host], hostcompute.counts(self._cgroup(c.host)),
                                          duration_s, hostcompute.quota(self._cgroup(c.host))))
        return tuple(out)

    def _start_receivers(self, demands: list[FlowDemand], duration_s: float, probe: bool,
                         procs: list) -> dict[int, subprocess.Popen]:
        """The UDP flows' receivers (they also answer scan and RTT probes on their port) and, for
        the scan, UDP echo servers on every other application port; each one ready."""
        spec, lab, py = self.spec, self.lab, sys.executable
        receivers = {}
        for d in demands:
            if d.protocol == "udp":
                rx = lab.host(d.dst).popen([py, "-u", "-m", "emulation.udpgen", "recv", "--port",
                                            str(d.port), "--seconds", str(duration_s + 30),
                                            "--idle-s", str(duration_s + 30)],
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
        """UDP senders on the forecast schedule, all starting at the same moment once every one
        is ready (each imports scapy first); TCP flows as iperf3 at the schedule's mean. Returns
        when the UDP load has begun."""
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
                     "--seconds", str(duration_s), "--frame-bytes", str(self.frame_bytes),
                     # each packet at a random point of its slot: streams of one rate do not
                     # reach a shared queue in lock-step (the same pattern in every run)
                     "--jitter-seed", str(d.port), "--wait-start"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                senders.append((d, tx))
                procs.append(tx)
        for _, tx in senders:
            tx.stdout.readline()  # "ready"
        start = time.time() + 0.1
        for _, tx in senders:
            tx.stdin.write(f"{start:.6f}\n")
            tx.stdin.flush()  # closed by communicate()
        for d in (d for d in demands if d.protocol != "udp"):
            srv = lab.host(d.dst).popen(["iperf3", "-s", "-1", "-p", str(d.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(srv)
            wait_listening(lab.host(d.dst), d.port)
            mean = float(np.mean(d.rates_mbps))
            cl = lab.host(d.src).popen(
                ["iperf3", "-c", spec.host(d.dst).ip, "-p", str(d.port), "-b", f"{mean:.3f}M",
                 "-l", str(TCP_WRITE_BYTES), "-i", str(TCP_RTT_INTERVAL_S), "-t", str(duration_s),
                 "--json"], stdout=subprocess.PIPE, text=True)
            tcp.append((d, cl))
            procs.append(cl)
        return senders, tcp

    def _start_rtt_probes(self, demands: list[FlowDemand], seconds: float, procs: list):
        """Per UDP flow, UDP echo probes on its own path and port for ``seconds`` while it runs
        (its receiver answers them and does not count them as load); per TCP flow, its
        sender's smoothed RTT read from the kernel as often; none under a second."""
        out = []
        if seconds < 1.0:
            return out
        for d in demands:
            ip = self.spec.host(d.dst).ip
            argv = ["emulation.probe", "rtt", "--ip", ip, "--port", str(d.port)] \
                if d.protocol == "udp" else ["emulation.tcprtt", "--dst", ip, "--dport", str(d.port)]
            p = self.lab.host(d.src).popen(
                [sys.executable, "-m", *argv, "--interval", str(RTT_PROBE_INTERVAL_S),
                 "--seconds", f"{seconds:.3f}"], stdout=subprocess.PIPE, text=True)
            procs.append(p)
            out.append((d, p))
        return out

    def _udp_flow(self, d: FlowDemand, s: dict, r: dict, meters_before: dict,
                  meters_after: dict, rtt: list | None) -> FlowResult:
        """A UDP flow from its sender's and receiver's reports, its meter's counters (in bytes:
        the RTT probes' small datagrams cross the same meter) and its RTT probes."""
        loss = 1 - r["distinct"] / s["packets"] if s["packets"] else None
        dropped = passed = None
        key = (d.tenant, d.app)
        if key in meters_after and s["l2_bytes"] and s["seconds"]:
            was = meters_before.get(key, MeterCounters(0, 0))
            b_in = meters_after[key].bytes_in - was.bytes_in
            b_drop = meters_after[key].bytes_dropped - was.bytes_dropped
            dropped = min(1.0, b_drop / s["l2_bytes"])
            passed = (b_in - b_drop) * 8 / s["seconds"] / 1e6
        delivered = r["l2_bytes"] * 8 / s["seconds"] / 1e6 if s["seconds"] else 0.0
        answered = [x for x in rtt or [] if x is not None]
        return self._flow(d, s["l2_bps"] / 1e6, delivered, loss, r["max_gap_s"], dropped, passed,
                          _percentile(answered, 50), _percentile(answered, 95))

    def _tcp_flow(self, d: FlowDemand, out: dict, until_s: float,
                  sampled: list | None = None) -> FlowResult:
        """A TCP flow from iperf3's report; its RTT is the sender's smoothed RTT (kernel):
        ``sampled`` (ms, :mod:`emulation.tcprtt`), else iperf3's every ``TCP_RTT_INTERVAL_S`` up
        to ``until_s`` into the run."""
        end = out.get("end", {})
        sent = end.get("sum_sent", {}).get("bits_per_second", 0.0) / 1e6
        got = end.get("sum_received", {}).get("bits_per_second", 0.0) / 1e6
        srtt = [float(x) for x in sampled or [] if x] or \
            [s["rtt"] / 1000 for i in out.get("intervals", []) for s in i.get("streams", [])
             if s.get("rtt") and s.get("end", 0.0) <= until_s + 0.5]  # µs -> ms
        return self._flow(d, sent, got, None, None, None, None, _percentile(srtt, 50),
                          _percentile(srtt, 95))

    def _flow(self, d: FlowDemand, offered: float, delivered: float, loss: float | None,
              max_gap_s: float | None, meter_dropped: float | None,
              meter_passed_mbps: float | None, rtt_p50_ms: float | None = None,
              rtt_p95_ms: float | None = None) -> FlowResult:
        alloc = self.plan.allocation(d.tenant, d.app) if self.plan else None
        return FlowResult(d.tenant, d.app, d.src, d.dst, d.protocol, round(offered, 4),
                          round(delivered, 4), loss, alloc.rate_mbps if alloc else None, max_gap_s,
                          meter_dropped, None if meter_passed_mbps is None else round(meter_passed_mbps, 4),
                          round(float(np.mean(d.rates_mbps)), 4), rtt_p50_ms, rtt_p95_ms)

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

    def _rx_drops(self) -> dict[str, int] | None:
        try:
            return dpsock.read_drops(self.prefix)
        except dpsock.DatapathSocketError as e:
            LOG.warning("%s: the datapath's receive drops are not known: %s", self.prefix, e)
            return None

    def _port_counts(self) -> dict[str, dict[int, PortCounters]]:
        return {s.name: read_ports(self.prefix + s.name) for s in self.spec.switches}

    def _spawn_scanners(self, procs: list) -> list:
        """One scanner per source host, every host pair on ICMP and every application port, its
        probes crafted here (:func:`emulation.scan.craft`, once per spec); the host's side will
        wait with its socket open (:mod:`emulation.scan` ``--wait-start``): see :meth:`_ready`."""
        pending = self._pending_scanners
        if pending is not None and all(p.poll() is None for p, _, _ in pending):
            self._pending_scanners = None
            procs.extend(p for p, _, _ in pending)
            return pending  # spawned ahead, while the plan was applied
        self.drop_prespawned()
        from . import scan
        from .isolation import expected_cases

        spec, lab = self.spec, self.lab
        if self._probes is None:
            by_src: dict[str, list] = {}
            for c in expected_cases(spec):
                by_src.setdefault(c.src, []).append(c)
            self._probes = {}
            for src, cs in by_src.items():
                h = spec.host(src)
                targets = [{"mac": spec.host(c.dst).mac, "ip": spec.host(c.dst).ip,
                            "proto": c.proto, "port": c.port} for c in cs]
                self._probes[src] = (cs, scan.craft(h.mac, h.ip, targets))
        out = []
        for src, (cs, probes) in self._probes.items():
            p = lab.host(src).popen([sys.executable, "-m", "emulation.scan", "--iface",
                                     self._host_iface(src), "--wait-start"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            expect = sum(1 for i in probes.owner if cs[i].expected)
            p.stdin.write(json.dumps({"frames": [f.hex() for f in probes.frames],
                                      "ip": spec.host(src).ip, "expect": expect}) + "\n")
            p.stdin.flush()
            procs.append(p)
            out.append((p, cs, probes))
        return out

    def prespawn_scanners(self) -> None:
        """Start the next run's scanners now (a plan is being applied meanwhile); they wait for
        the run, which ends them whatever happens."""
        if self._pending_scanners is not None:
            return
        procs: list[subprocess.Popen] = []
        try:
            self._pending_scanners = self._spawn_scanners(procs)
        except BaseException:
            end_processes(procs)  # the ones spawned before the failure
            raise

    def drop_prespawned(self) -> None:
        end_processes(p for p, _, _ in self._pending_scanners or ())
        self._pending_scanners = None

    @staticmethod
    def _ready(scanners: list) -> list:
        for p, _, _ in scanners:
            p.stdout.readline()  # "ready"
        return scanners

    @staticmethod
    def _scan(scanners: list) -> list:
        """Let every scanner probe at once; what each sent and captured."""
        for p, _, _ in scanners:
            p.stdin.write("go\n")
            p.stdin.close()
        out = []
        for p, cs, probes in scanners:
            out.append((cs, probes, json.loads(p.stdout.read())))
            p.wait(timeout=60)
        return out

    @staticmethod
    def _paths(scanned: list) -> list[PathResult]:
        """The reachability and RTTs per path, from the scanners' captures."""
        from . import scan

        out = []
        for cs, probes, got in scanned:
            rtts = scan.match(probes, len(cs), got["sent"],
                              [(bytes.fromhex(h), t) for h, t in got["replies"]])
            for c, r in zip(cs, rtts, strict=True):
                pcts = [_percentile(r, q) for q in (50, 95, 99)]
                out.append(PathResult(c.src, c.dst, c.proto, c.port, c.expected, bool(r), *pcts))
        return out

    def _peak_utils(self, since: float, until: float) -> dict[str, float]:
        """Per link direction the peak one-second utilisation in the controller's telemetry
        over the run, as far as it is stored now (the counters measure the links; this is the
        peak beside their mean, and not worth waiting a poll for); empty when the controller
        keeps no store."""
        r = requests.get(f"{self.controller_url}/series", params={
            "kind": "link", "metric": "util", "since": since, "until": until}, timeout=10)
        if r.status_code == 503:  # no store in this controller
            return {}
        r.raise_for_status()
        out = {}
        for s in r.json()["series"]:
            vals = [v for _, v in s["points"] if v is not None]
            if vals:
                out[s["direction"]] = round(float(np.max(vals)), 4)
        return out

    def _links(self, demands: list[FlowDemand], flows: list[FlowResult], before: dict,
               after: dict, duration_s: float, peaks: dict[str, float]) -> list[LinkResult]:
        """Per link direction: carried utilisation (bytes at its far end over the run), offered
        (the flows the routes put on it, after their meters) and the telemetry's peak."""
        paths = compile_network(self.spec, self.plan).paths
        crossing: dict[tuple[str, str], list[FlowResult]] = {}
        for d, f in zip(demands, flows, strict=True):
            p = self._route(d, paths)
            for a, b in zip(p, p[1:]):
                crossing.setdefault((a, b), []).append(f)
        out = []
        for lk, ((sa, pa), (sb, pb)) in zip(self.spec.links, wire(self.spec).link_ports, strict=True):
            cap_bps = lk.capacity_mbps * 1e6
            for a, b, far, port in ((lk.a, lk.b, sb, pb), (lk.b, lk.a, sa, pa)):
                got = after[far][port].rx_bytes - before[far][port].rx_bytes
                fs = crossing.get((a, b), [])
                offered = sum(f.meter_passed_mbps if f.meter_passed_mbps is not None else f.offered_mbps
                              for f in fs) * 1e6
                direction = f"{a}>{b}"
                out.append(LinkResult(f"{lk.a}-{lk.b}", direction,
                                      round(got * 8 / duration_s / cap_bps, 4),
                                      peaks.get(direction),
                                      tuple(f"{f.tenant}/{f.app} {f.src}>{f.dst}" for f in fs),
                                      round(offered / cap_bps, 4)))
        return sorted(out, key=lambda x: -x.mean_util)

    def _route(self, d: FlowDemand, paths: dict) -> tuple[str, ...]:
        """The switches ``d`` crosses: the plan's pinned path for its application, else the
        controller's path for the host pair."""
        alloc = self.plan.allocation(d.tenant, d.app) if self.plan else None
        if alloc is not None and alloc.path:
            return tuple(alloc.path)
        return tuple(paths.get((d.src, d.dst), ()))

    # ------------------------------------------------------------------ the verdict
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

    @staticmethod
    def _meter_judged(f: FlowResult) -> bool:
        """The flow's shortfall is what its meter's counters say the meter dropped."""
        return f.meter_dropped is not None and f.meter_dropped > 1 - DELIVERY_OBJECTIVE

    def _verdict(self, flows, links, paths, duration_s, attempts=1, bound=(), cpu=None,
                 rx_drops=None, compute=()) -> ShadowReport:
        bottlenecks = [f"link {lk.link} {lk.direction} at {lk.mean_util:.0%}"
                       + (f" (offered {lk.offered_util:.0%})" if lk.offered_util else "")
                       + f" carrying {', '.join(lk.flows) or 'no measured flow'}"
                       for lk in links if self._hot(lk)]
        bottlenecks += [f"flow {f.tenant}/{f.app} {f.src}>{f.dst} losing {f.loss:.1%}"
                        for f in flows if f.loss is not None and f.loss > self.loss_threshold]
        violations = [f"{p.src}>{p.dst} {p.proto}{'/' + str(p.port) if p.port else ''}: "
                      f"{'denied by policy but reachable' if p.reachable else 'allowed but unreachable'}"
                      for p in paths if p.reachable != p.expected]
        short = [(f, r) for f in flows if (r := self._shortfall(f, links))]
        reasons = [r for _, r in short]
        for c in compute:
            short_c, disturbed = hostcompute.judge(c)
            if short_c:
                reasons.append(short_c)
                bottlenecks.append(f"CPU of host {c.host}: quota {c.quota_cores}, asked "
                                   f"{c.asked_cores:.2f}, got {c.used_cores:.2f}")
            if disturbed:
                bound = tuple(bound) + (disturbed,)
        # what a meter's own counters say it dropped is the plan's whatever the CPU did (a
        # stalled stream that overflowed its bucket is caught as a stall); any other shortfall
        # measured on a struggling host may be the host's
        host_sensitive = any(not self._meter_judged(f) for f, _ in short)
        if violations:
            reasons.append(f"{len(violations)} policy violations")
        if self.rtt_bound_ms is not None:
            # the flows' own RTT under the load; the scan's where no flow was probed
            rtts = [f.rtt_p95_ms for f in flows if f.rtt_p95_ms is not None] or \
                [p.rtt_p95_ms for p in paths if p.rtt_p95_ms is not None]
            worst = max(rtts, default=None)
            if worst is not None and worst > self.rtt_bound_ms:
                reasons.append(f"p95 RTT {worst:.2f} ms above the bound {self.rtt_bound_ms} ms")
                host_sensitive = True
        if host_sensitive and not violations:
            # the run fell short while the datapath dropped packets it never read: the shortfall
            # may be the host's
            bound = tuple(bound) + tuple(self._unread(rx_drops))
        if violations:
            verdict = "fail"
        elif bound:
            verdict = "untrusted"
        else:
            verdict = "fail" if reasons else "pass"
        plan = self.plan
        return ShadowReport(plan.name if plan else "none", plan.cost_mbps() if plan else 0.0,
                            duration_s, tuple(flows), tuple(links), tuple(paths), tuple(bottlenecks),
                            tuple(violations), verdict, tuple(reasons), attempts, bound,
                            None if cpu is None else cpu.to_dict(), rx_drops, tuple(compute))
