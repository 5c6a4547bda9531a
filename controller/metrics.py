"""Every Prometheus metric the controller exports, defined in one place with fixed labels.

Tests pass their own ``CollectorRegistry``; the controller uses a fresh one per process. Gaps in
a series are exported as NaN, so a dashboard shows a hole rather than a stale value.
"""

from __future__ import annotations

import math

from prometheus_client import (
    CONTENT_TYPE_LATEST,  # noqa: F401 - re-exported for the REST layer
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .telemetry.samples import Sample, parse_series


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.app_bps = Gauge("netshadow_app_bandwidth_bps",
                             "L2 bit/s per tenant application and direction (fwd = client to server)",
                             ["tenant", "app", "direction"], registry=r)
        self.app_pps = Gauge("netshadow_app_packets_per_second",
                             "Packets/s per tenant application and direction",
                             ["tenant", "app", "direction"], registry=r)
        self.link_bps = Gauge("netshadow_link_bps", "L2 bit/s sent over a link in one direction",
                              ["link", "direction"], registry=r)
        self.link_util = Gauge("netshadow_link_utilisation",
                               "Fraction of the spec capacity used in one direction",
                               ["link", "direction"], registry=r)
        self.switch_bps = Gauge("netshadow_switch_bps", "L2 bit/s over all ports of a switch",
                                ["switch", "direction"], registry=r)
        self.switch_flows = Gauge("netshadow_switch_flows", "Flow entries on a switch",
                                  ["switch"], registry=r)
        self.switch_denied = Gauge("netshadow_switch_denied_pps", "Packets/s hitting the deny rules",
                                   ["switch"], registry=r)
        self.meter_bps = Gauge("netshadow_meter_bps", "Meter input and dropped bit/s",
                               ["switch", "meter", "kind"], registry=r)
        self.host_value = Gauge("netshadow_host_metric", "Host agent readings (cpu in cores, "
                                "memory in bytes, rx/tx in bit/s)",
                                ["tenant", "host", "metric"], registry=r)
        labels = ["origin", "src", "dst", "proto", "port"]
        self.scan_reachable = Gauge("netshadow_scan_reachable", "1 when the latest scan of the "
                                    "pair and port was answered", labels, registry=r)
        self.scan_conforms = Gauge("netshadow_scan_conforms", "1 when the latest scan of the pair "
                                   "and port found what the spec says (0: drift)", labels, registry=r)
        self.scan_rtt = Gauge("netshadow_scan_rtt_ms", "Median RTT of the latest scan's answers",
                              labels, registry=r)
        self.switch_ready = Gauge("netshadow_switch_ready", "1 when the switch is programmed",
                                  ["switch"], registry=r)
        self.poll_seconds = Histogram("netshadow_poll_cycle_seconds",
                                      "From sending a cycle's requests to the last reply processed",
                                      registry=r, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5))
        self.missed_replies = Counter("netshadow_missed_replies_total",
                                      "Statistics requests without a reply by the next cycle",
                                      ["switch", "kind"], registry=r)
        self.gaps = Counter("netshadow_series_gaps_total", "Samples recorded as gaps", registry=r)
        self.store_write_seconds = Histogram("netshadow_store_write_seconds",
                                             "Duration of one store transaction", registry=r,
                                             buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1))
        self.store_samples = Counter("netshadow_store_samples_total", "Samples written", registry=r)
        self.errors = Counter("netshadow_errors_total", "Errors by kind (handler, store, openflow)",
                              ["kind"], registry=r)

    def observe(self, samples: list[Sample]) -> None:
        for s in samples:
            v = math.nan if s.value is None else s.value
            if s.value is None:
                self.gaps.inc()
            f = parse_series(s.series)
            kind, metric = f["kind"], f["metric"]
            if kind == "app":
                g = self.app_bps if metric == "bps" else self.app_pps
                g.labels(f["tenant"], f["app"], f["direction"]).set(v)
            elif kind == "link":
                g = self.link_bps if metric == "bps" else self.link_util
                g.labels(f["link"], f["direction"]).set(v)
            elif kind == "switch":
                if metric in ("rx_bps", "tx_bps"):
                    self.switch_bps.labels(f["switch"], metric[:2]).set(v)
                elif metric == "flows":
                    self.switch_flows.labels(f["switch"]).set(v)
                elif metric == "denied_pps":
                    self.switch_denied.labels(f["switch"]).set(v)
            elif kind == "meter":
                self.meter_bps.labels(f["switch"], f["meter"], metric.removesuffix("_bps")).set(v)
            elif kind == "host":
                self.host_value.labels(f["tenant"], f["host"], metric).set(v)

    def observe_scans(self, results) -> None:
        """The latest result per (origin, pair, port) of :class:`controller.scans.ScanResult`."""
        for x in results:
            lab = (x.origin, x.src, x.dst, x.proto, "" if x.port is None else str(x.port))
            self.scan_reachable.labels(*lab).set(1 if x.reachable else 0)
            self.scan_conforms.labels(*lab).set(1 if x.conforms else 0)
            self.scan_rtt.labels(*lab).set(math.nan if x.rtt_ms is None else x.rtt_ms)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
