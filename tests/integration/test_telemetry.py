"""Telemetry on the lab: iperf3 UDP streams at known rates are measured per tenant/application
within 5 % of the L2 rate actually sent; link utilisation equals the sum of the flows crossing
each link; a switch that loses and regains its controller under a paced stream leaves no negative
or spiked rate."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest
import requests

from controller.tenancy import compile_network
from emulation.iperf import UdpStream
from tests.waiting import wait_for

from .conftest import SPECS, running_lab

STREAMS = [  # tenant, app, src, dst, port, Mbit/s
    ("red", "video", "h1", "h2", 5201, 5),
    ("blue", "dns", "h4", "h5", 5202, 20),
    ("green", "metrics", "h7", "h8", 5203, 40),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab(str(SPECS / "telemetry.yaml"), "nti", tmp_path_factory.mktemp("tel"),
                     db=True) as running:
        yield running


def series(lab, name, since, until):
    r = requests.get(f"{lab.ctl.url}/series", params={"series": name, "since": since,
                                                       "until": until}, timeout=10)
    r.raise_for_status()
    found = r.json()["series"]
    return found[0]["points"] if found else []


def stored_through(lab, name, t) -> list:
    """Wait until the store holds a point of ``name`` at or after ``t`` (the poller's cycle for
    that time has been flushed); returns the points from 60 s before ``t``."""
    def reached():
        pts = series(lab, name, t - 60, t + 3600)
        return pts if pts and pts[-1][0] >= t else None
    return wait_for(reached, 30, f"{name} stored through {t:.1f}")


def through_quiet(lab, name, run) -> list:
    """The points of ``name`` from 4 s before ``run`` up to the first two quiet buckets (under
    5 % of its rate) after its nominal end. iperf3's clock starts when the client is launched;
    on a busy machine its packets start, and so end, a few seconds later than that, so the
    stream's end is waited for in the store, not assumed."""
    quiet = 0.05 * run.l2_bps

    def settled():
        pts = series(lab, name, run.started - 4, time.time() + 5)
        for i, ((t, v), (_, w)) in enumerate(zip(pts, pts[1:])):
            if t >= run.started + run.seconds and v is not None and w is not None \
                    and v < quiet and w < quiet:
                return pts[:i + 1]
        return None
    return wait_for(settled, 30, f"{name} quiet after its stream")


def counted_bits(points) -> float:
    """The bits the stored rates account for: each rate (bit/s) times the seconds since the point
    before it (a deferred sample covers two poll intervals and is weighted so). Leading points
    without a rate (the series' first poll has nothing to difference against) count nothing;
    after the first rate, every point must have one."""
    while points and points[0][1] is None:
        points = points[1:]
    assert all(v is not None for _, v in points), points
    return sum(v * (t - tp) for (tp, _), (t, v) in zip(points, points[1:]))


def mean_rate(points) -> float:
    values = [v for _, v in points if v is not None]
    assert len(values) >= 4, points
    return statistics.mean(values)


def test_app_rates_and_link_utilisation(lab):
    ready = time.time() + 1
    for tenant, app, *_ in STREAMS:  # measured from before the streams start
        stored_through(lab, f"app/{tenant}/{app}/fwd/bps", ready)
    runs = [UdpStream(lab.lab, s, d, port, mbps, seconds=12).start()
            for _, _, s, d, port, mbps in STREAMS]
    results = [r.result() for r in runs]
    stored = {(tenant, app): through_quiet(lab, f"app/{tenant}/{app}/fwd/bps", run)
              for (tenant, app, *_), run in zip(STREAMS, results)}
    # when the packets really started (iperf3's clock starts at launch, and a busy machine may
    # hold the first packet back a second or two): the first bucket carrying half the rate
    t0 = max(next(t for t, v in stored[(tenant, app)] if v is not None and v > 0.5 * run.l2_bps)
             for (tenant, app, *_), run in zip(STREAMS, results))
    window = (t0 + 2, t0 + 9)  # steady state, away from start-up and the end of the runs
    for (tenant, app, _src, _dst, _port, mbps), run in zip(STREAMS, results):
        # every byte the sender put on the wire is counted: the stored rates, each times the
        # interval it covers, add up to what iperf3 sent (a sender starved of CPU for a moment
        # paces unevenly, so a window's mean rate need not be the run's mean)
        pts = stored[(tenant, app)]
        # before the stream: its first measured bucket (the window may begin before the poller's
        # first sample of the series, as a None bucket, on a busy machine)
        before = [v for t, v in pts if v is not None and t < run.started]
        assert before and before[0] < 0.05 * run.l2_bps, pts
        assert counted_bits(pts) == pytest.approx(run.l2_bytes * 8, rel=0.05), (tenant, app, pts)
        assert run.l2_bps == pytest.approx(mbps * 1e6 * (1200 + 42) / 1200, rel=0.05)

    # every link direction carries exactly the streams whose path crosses it: over a span that
    # begins before the streams and ends after every one went quiet, the bits a link direction's
    # stored rates account for are the sum of those of the streams crossing it. Bits over such a
    # span do not depend on when each series was sampled; a window's mean rate does, by up to a
    # poll interval's worth of a sender's catch-up burst on a busy machine
    since = min(run.started for run in results) - 4
    until = max(pts[-1][0] for pts in stored.values())
    paths = compile_network(lab.spec).paths
    expected: dict[tuple[str, str], float] = {}
    for tenant, app, src, dst, *_ in STREAMS:
        bits = counted_bits(series(lab, f"app/{tenant}/{app}/fwd/bps", since, until))
        path = paths[(src, dst)]
        for a, b in zip(path, path[1:]):
            expected[(a, b)] = expected.get((a, b), 0.0) + bits
    capacity = {frozenset((lk.a, lk.b)): lk.capacity_mbps * 1e6 for lk in lab.spec.links}
    for lk in lab.spec.links:
        for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
            name = f"link/{lk.a}-{lk.b}/{a}>{b}"
            got = counted_bits(series(lab, f"{name}/bps", since, until))
            want = expected.get((a, b), 0.0)
            assert got == pytest.approx(want, rel=0.05, abs=0.2e6 * (until - since)), (a, b, got, want)
            # utilisation is the same sample's rate over the link's capacity
            rate = mean_rate(series(lab, f"{name}/bps", *window))
            util = mean_rate(series(lab, f"{name}/util", *window))
            assert util == pytest.approx(rate / capacity[frozenset((a, b))], rel=0.02, abs=1e-3)
    assert len(expected) >= 4  # the streams really crossed several links
    least = min(run.l2_bytes * 8 for run in results)  # the bits of the smallest stream
    assert all(want > 0.5 * least for want in expected.values())


@dataclass(frozen=True)
class PacedRun:
    """What :mod:`emulation.udpgen`'s sender really sent: L2 bit/s over ``seconds`` from
    ``started`` (epoch seconds, the moment it was told to begin)."""
    started: float
    seconds: float
    l2_bps: float


class PacedStream:
    """A paced UDP stream from :mod:`emulation.udpgen`: unlike iperf3 it has no TCP control
    channel that a switch's reconnect could disturb, and it reports what it sent."""

    def __init__(self, lab, src: str, dst: str, port: int, mbps: float, seconds: float):
        s, d = lab.spec.host(src), lab.spec.host(dst)
        self.seconds = seconds
        self.rx = lab.host(dst).popen(
            [sys.executable, "-u", "-m", "emulation.udpgen", "recv", "--port", str(port),
             "--seconds", str(seconds + 30)], stdout=subprocess.PIPE, text=True)
        self.rx.stdout.readline()  # bound
        self.tx = lab.host(src).popen(
            [sys.executable, "-u", "-m", "emulation.udpgen", "send", "--iface",
             f"{lab.prefix}{src}-eth0", "--src-mac", s.mac, "--dst-mac", d.mac, "--src-ip", s.ip,
             "--dst-ip", d.ip, "--dport", str(port), "--rate-mbps", str(mbps), "--seconds",
             str(seconds), "--wait-start"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.tx.stdout.readline().strip() == "ready"
        self.started = time.time() + 0.2
        self.tx.stdin.write(f"{self.started}\n")
        self.tx.stdin.flush()

    def result(self) -> PacedRun:
        try:
            sent = json.loads(self.tx.communicate(timeout=self.seconds + 30)[0])
            self.rx.send_signal(signal.SIGUSR1)  # the sender is done: end once drained
            self.rx.communicate(timeout=30)
            return PacedRun(self.started, float(sent["seconds"]), float(sent["l2_bps"]))
        finally:
            self.stop()

    def stop(self) -> None:
        for p in (self.tx, self.rx):
            if p.poll() is None:
                p.kill()
                p.wait()


def test_switch_reconnect_leaves_no_negative_or_spiked_rate(lab):
    br = lab.lab.prefix + "s1"  # ingress switch of the red and blue streams
    name = "app/blue/dns/fwd/bps"
    stream = PacedStream(lab.lab, "h4", "h5", 5202, 20, seconds=20)
    try:
        _reconnect_under(lab, br, name, stream)
    finally:
        stream.stop()


def _reconnect_under(lab, br, name, stream):
    def flowing():  # the stream is measured: a recent point near its rate
        pts = series(lab, name, time.time() - 5, time.time() + 5)
        return [v for _, v in pts if v is not None and v > 10e6]
    wait_for(flowing, 15, "the stream's rate in the store")
    subprocess.run(["ovs-vsctl", "del-controller", br], check=True)
    cut = time.time()
    wait_for(lambda: any(v is None for _, v in series(lab, name, cut, cut + 60)), 15,
             "the outage stored as a gap")
    subprocess.run(["ovs-vsctl", "set-controller", br, f"tcp:127.0.0.1:{lab.ctl.of_port}"],
                   check=True)
    lab.ctl.wait_ready(timeout_s=30)
    reconnected = time.time()
    run = stream.result()
    end = run.started + run.seconds
    assert reconnected < end - 4, "the stream must outlast the reconnect by a few polls"
    pts = stored_through(lab, name, end + 1)
    pts = [(t, v) for t, v in pts if run.started - 1 <= t <= end + 3]
    values = [v for _, v in pts if v is not None]
    assert values and min(values) >= 0
    # no spike: a mishandled counter reset would show the whole count in one interval (the
    # stream ran for several seconds before the cut: several times the rate); a paced sender
    # starved of CPU for a moment catches up on its schedule, so one interval of a busy machine
    # may carry up to about twice the rate
    assert max(values) <= 3 * run.l2_bps, max(values)
    # polling resumes by itself: after the first value past the reconnect, no gap (a late reply
    # on a busy machine defers a sample, it does not make a gap)
    resumed = next(t for t, v in pts if t > reconnected and v is not None)
    assert resumed < reconnected + 10, pts
    after = [v for t, v in pts if resumed <= t < end - 1]
    assert after and all(v is not None for v in after), pts
    assert statistics.mean(after) == pytest.approx(run.l2_bps, rel=0.1)
    for lk in lab.spec.links:
        for a, b in ((lk.a, lk.b), (lk.b, lk.a)):
            lp = series(lab, f"link/{lk.a}-{lk.b}/{a}>{b}/bps", run.started, end)
            assert all(v is None or 0 <= v <= 1.1 * lk.capacity_mbps * 1e6 for _, v in lp)


def test_metrics_endpoint(lab):
    text = requests.get(lab.ctl.url.replace("/api/v1", "") + "/metrics", timeout=5).text
    assert 'netshadow_app_bandwidth_bps{app="video",direction="fwd",tenant="red"}' in text
    assert "netshadow_poll_cycle_seconds_count" in text
    assert "netshadow_store_write_seconds_count" in text
    assert 'netshadow_switch_ready{switch="s1"} 1.0' in text
