"""The os-ken application: a thin shim between OpenFlow events and :class:`ControllerCore`.

Each handler reads the event, calls the core with the current monotonic time and sends the
messages the core returns. A handler that raises is logged with its traceback and counted in the
health of the switch, never swallowed. Settings arrive through :func:`configure`, called by the
launcher before os-ken instantiates the app.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from topologies import NetworkSpec

from . import ofmsg
from .core import ControllerCore
from .enforcer import PlanEnforcer
from .metrics import Metrics
from .ofmsg import to_openflow
from .rest import RestApi, serve
from .shaping import meter_support
from .store import BatchWriter, Store
from .tc import TcError, TcShaper
from .telemetry.poller import PollCore

LOG = logging.getLogger("netshadow.controller")


@dataclass(frozen=True)
class Settings:
    spec: NetworkSpec
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    token: str | None = None
    poll_interval_s: float = 1.0
    db_path: str | None = None  # None: no store (telemetry endpoints answer 503)
    retention_s: float = 7 * 86400
    flush_interval_s: float = 1.0
    plan: object | None = None  # controller.plan.Plan installed at start (shadow mode, tests)
    no_meters: frozenset[str] = frozenset()  # switches that use the tc HTB fallback regardless


_settings: Settings | None = None
_instance: NetshadowApp | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def shutdown() -> None:
    """Flush the store of the running app (the launcher calls this on SIGTERM)."""
    if _instance is not None:
        _instance.flush()


def _guarded(handler):
    """Log a failing handler with its traceback and count it; never let it pass silently."""
    def wrapper(self, ev):
        try:
            return handler(self, ev)
        except Exception:  # noqa: BLE001
            LOG.exception("handler %s failed", handler.__name__)
            self.metrics.errors.labels("handler").inc()
    wrapper.__name__ = handler.__name__
    wrapper.__doc__ = handler.__doc__
    return wrapper


class NetshadowApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if _settings is None:
            raise RuntimeError("settings: controller.app.configure() was not called")
        self.settings = _settings
        self.core = ControllerCore(_settings.spec, time.monotonic(), _settings.plan,
                                   _settings.no_meters)
        self.datapaths: dict[int, object] = {}
        self.metrics = Metrics()
        self.store = Store(_settings.db_path, _settings.retention_s) if _settings.db_path else None
        self.writer = None
        if self.store is not None:
            self.writer = BatchWriter(self.store, _settings.flush_interval_s,
                                      on_write=self._stored,
                                      on_error=lambda e: self.metrics.errors.labels("store").inc())
            self.writer.start()
        self.poll = PollCore(_settings.spec, self.core.compiled.rules, _settings.poll_interval_s)
        self._multipart: dict[tuple[int, int], list] = {}
        self._cycle_started = 0.0
        self._cycle_observed = True
        self._stop = threading.Event()
        self.shaper = TcShaper(self._port_name)
        self.enforcer = PlanEnforcer(self.core, self._send_one, self.store,
                                     on_commit=self._rules_changed, shape=self._shape)
        self.api = RestApi(self.core, _settings.token, resync=self._resync, store=self.store,
                           metrics=self.metrics, enforcer=self.enforcer)
        self.server, _ = serve(self.api, _settings.rest_host, _settings.rest_port)
        LOG.info("REST API on http://%s:%d/api/v1", _settings.rest_host, _settings.rest_port)
        self._poll_lock = threading.Lock()  # the poll thread and the OpenFlow thread share PollCore
        self._poller = threading.Thread(target=self._poll_loop, name="netshadow-poll", daemon=True)
        self._poller.start()
        global _instance
        _instance = self

    def close(self):
        self._stop.set()
        self.server.shutdown()
        if self.writer is not None:
            self.writer.stop()
        super().close()

    def flush(self) -> None:
        """Write what is queued (called on SIGTERM before the process exits)."""
        if self.writer is not None:
            self.writer.stop()

    def _stored(self, n: int, seconds: float) -> None:
        self.metrics.store_samples.inc(n)
        self.metrics.store_write_seconds.observe(seconds)

    # ------------------------------------------------------------------ polling
    def _poll_loop(self) -> None:
        interval = self.settings.poll_interval_s
        while not self._stop.wait(interval):
            try:
                self._poll_once()
            except Exception:  # noqa: BLE001 - logged with traceback, counted, loop goes on
                LOG.exception("poll cycle failed")
                self.metrics.errors.labels("poll").inc()
            try:
                self.enforcer.tick()  # a due regression watch is checked here
            except Exception:  # noqa: BLE001 - logged with traceback, counted, loop goes on
                LOG.exception("regression watch failed")
                self.metrics.errors.labels("enforcer").inc()

    def _poll_once(self) -> None:
        ready = [d for d, sw in self.core.switches.items()
                 if sw.state == "ready" and d in self.datapaths]
        with self._poll_lock:
            before = dict(self.poll.stats.missed_replies)
            samples, requests = self.poll.begin_cycle(time.time(), ready)
        for key, n in self.poll.stats.missed_replies.items():
            if n > before.get(key, 0):
                self.metrics.missed_replies.labels(self.core.switches[key[0]].name, key[1]).inc(
                    n - before.get(key, 0))
        if samples:
            self.metrics.observe(samples)
            if self.writer is not None:
                self.writer.put(samples)
        self._cycle_started = time.perf_counter()
        self._cycle_observed = False
        for dpid, kind in requests:
            dp = self.datapaths.get(dpid)
            if dp is not None:
                dp.send_msg(ofmsg.stats_request(dp, kind))

    def _assemble(self, ev) -> list | None:
        """Collect the parts of a multipart reply; the whole body once the last part arrived."""
        msg = ev.msg
        key = (msg.datapath.id, msg.xid)
        parts = self._multipart.setdefault(key, [])
        parts.extend(msg.body)
        if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            return None
        return self._multipart.pop(key)

    def _replied(self) -> None:
        if not self._cycle_observed and self.poll.asked <= self.poll.answered:
            self._cycle_observed = True
            self.metrics.poll_seconds.observe(time.perf_counter() - self._cycle_started)

    def _stats(self, ev, convert, deliver) -> None:
        """A statistics reply: assemble its parts, convert the body, hand it to the poll core."""
        body = self._assemble(ev)
        if body is not None:
            entries = convert(body)
            with self._poll_lock:
                deliver(ev.msg.datapath.id, entries, time.time())
                self._replied()

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    @_guarded
    def flow_stats_reply(self, ev):
        self._stats(ev, ofmsg.flow_stats, self.poll.on_flow_stats)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    @_guarded
    def port_stats_reply(self, ev):
        self._stats(ev, ofmsg.port_stats, self.poll.on_port_stats)

    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    @_guarded
    def meter_stats_reply(self, ev):
        self._stats(ev, ofmsg.meter_stats, self.poll.on_meter_stats)

    def _send(self, datapath, msgs) -> None:
        for m in msgs:
            datapath.send_msg(to_openflow(datapath, m))

    def _program(self, datapath) -> None:
        """(Re)program a switch: ask for its meter features first; the reply handler sends the
        flows and meters (:meth:`meter_features_reply`)."""
        self.datapaths[datapath.id] = datapath
        msgs = self.core.switch_connected(datapath.id, time.monotonic())
        self.metrics.switch_ready.labels(self.core.switches[datapath.id].name
                                         if datapath.id in self.core.switches else hex(datapath.id)).set(0)
        if not msgs:
            LOG.warning("switch %#x is not in spec %s; leaving it empty", datapath.id,
                        self.core.spec.name)
            return
        self._send(datapath, msgs)

    @set_ev_cls(ofp_event.EventOFPMeterFeaturesStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    @_guarded
    def meter_features_reply(self, ev):
        dp = ev.msg.datapath
        f = ev.msg.body[0] if ev.msg.body else None
        supported = f is not None and meter_support(f.max_meter, f.band_types)
        LOG.info("switch %#x meter features: max_meter=%s band_types=%s -> %s", dp.id,
                 getattr(f, "max_meter", None), getattr(f, "band_types", None),
                 "meters" if supported else "no meters")
        msgs = self.core.meter_features(dp.id, supported, time.monotonic())
        with self._poll_lock:
            self.poll.no_meter_stats = set(self.core.meterless)
        sw = self.core.switches.get(dp.id)
        if msgs:
            LOG.info("programming switch %#x with %d flows and %d meters (rates by %s)", dp.id,
                     len(self.core.compiled.rules.get(dp.id, ())),
                     len(self.core.compiled.meters.get(dp.id, ())), sw.enforcement)
            self._send(dp, msgs)
        if dp.id in self.core.meterless:
            threading.Thread(target=self._shape_switch, args=(dp.id,), daemon=True,
                             name=f"netshadow-tc-{dp.id:x}").start()

    def _port_name(self, dpid: int, port: int) -> str | None:
        dp = self.datapaths.get(dpid)
        p = dp.ports.get(port) if dp is not None and dp.ports else None
        if p is None:
            return None
        return p.name.decode() if isinstance(p.name, bytes) else p.name

    def _ports(self, dpid: int) -> list[int]:
        dp = self.datapaths.get(dpid)
        return sorted(p for p in (dp.ports or {}) if p < 0xFFFFFF00) if dp is not None else []

    def _shape_switch(self, dpid: int) -> None:
        """Bring a newly connected meterless switch's ports to the installed plan's classes (the
        port list arrives with the handshake, shortly after the features)."""
        deadline = time.monotonic() + 10.0
        while not self._ports(dpid) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.shaper.sync(dpid, self._ports(dpid), self.core.compiled.shapes)
        except TcError as e:
            LOG.error("switch %#x: %s", dpid, e)
            self.core.switch_error(dpid, str(e), time.monotonic())

    def _shape(self, compiled) -> str | None:
        """Apply ``compiled``'s tc classes to every meterless switch and read them back; why it
        failed, or None."""
        try:
            for dpid in sorted(self.core.meterless):
                ports = self._ports(dpid)
                self.shaper.sync(dpid, ports, compiled.shapes)
                want = {s.key: s.rate_kbps for s in compiled.shapes if s.dpid == dpid}
                got = self.shaper.read_back(dpid, ports)
                if set(got) != set(want) or any(abs(got[k] - v) > max(1, 0.01 * v) for k, v in want.items()):
                    return f"switch {dpid:#x}: tc classes read back {got}, expected {want}"
        except TcError as e:
            return str(e)
        return None

    def _rules_changed(self, compiled) -> None:
        with self._poll_lock:
            self.poll.set_rules(compiled.rules)

    def _send_one(self, dpid: int, m) -> int | None:
        """Send one core message to a switch; its xid."""
        dp = self.datapaths.get(dpid)
        if dp is None:
            return None
        msg = to_openflow(dp, m)
        dp.send_msg(msg)
        return msg.xid

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    @_guarded
    def meter_config_reply(self, ev):
        body = self._assemble(ev)
        if body is not None:
            self.enforcer.meters_read(ev.msg.datapath.id,
                                      {c.meter_id: c.bands[0].rate for c in body if c.bands})

    def _resync(self, dpid: int) -> bool:
        dp = self.datapaths.get(dpid)
        if dp is None:
            return False
        self._program(dp)
        return True

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        try:
            self._program(ev.msg.datapath)
        except Exception:  # noqa: BLE001 - logged with traceback and surfaced in health
            LOG.exception("programming switch %#x failed", ev.msg.datapath.id)
            self.metrics.errors.labels("handler").inc()
            self.core.switch_error(ev.msg.datapath.id, "programming failed; see log", time.monotonic())

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        self.enforcer.barrier(ev.msg.xid)
        # plans send barriers too: only the one that completes programming makes a switch ready
        if self.core.barrier_replied(ev.msg.datapath.id, time.monotonic()):
            sw = self.core.switches[ev.msg.datapath.id]
            self.metrics.switch_ready.labels(sw.name).set(1)
            LOG.info("switch %s ready after %.3f s", sw.name, sw.ready_at - sw.connected_at)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        m = ev.msg
        text = f"OpenFlow error type={m.type} code={m.code} data={bytes(m.data)[:32].hex()}"
        LOG.error("switch %#x: %s", m.datapath.id, text)
        self.metrics.errors.labels("openflow").inc()
        self.enforcer.error(m.datapath.id, text)
        self.core.switch_error(m.datapath.id, text, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def state_change(self, ev):
        dp = ev.datapath
        if dp.id is None:
            return
        if self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self.core.switch_disconnected(dp.id, time.monotonic())
            with self._poll_lock:
                self.poll.switch_gone(dp.id)
            if dp.id in self.core.switches:
                self.metrics.switch_ready.labels(self.core.switches[dp.id].name).set(0)
            LOG.warning("switch %#x disconnected", dp.id)
