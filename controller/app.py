"""The os-ken application: a thin shim between OpenFlow events and :class:`ControllerCore`.

Each handler reads the event, calls the core with the current monotonic time and sends the
messages the core returns. A handler that raises is logged with its traceback and counted in the
health of the switch, never swallowed. Settings arrive through :func:`configure`, called by the
launcher before os-ken instantiates the app.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3

from topologies import NetworkSpec

from .core import ControllerCore
from .ofmsg import to_openflow
from .rest import RestApi, serve

LOG = logging.getLogger("netshadow.controller")


@dataclass(frozen=True)
class Settings:
    spec: NetworkSpec
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    token: str | None = None


_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


class NetshadowApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if _settings is None:
            raise RuntimeError("settings: controller.app.configure() was not called")
        self.settings = _settings
        self.core = ControllerCore(_settings.spec, time.monotonic())
        self.datapaths: dict[int, object] = {}
        self.api = RestApi(self.core, _settings.token, resync=self._resync)
        self.server, _ = serve(self.api, _settings.rest_host, _settings.rest_port)
        LOG.info("REST API on http://%s:%d/api/v1", _settings.rest_host, _settings.rest_port)

    def close(self):
        self.server.shutdown()
        super().close()

    def _send(self, datapath, msgs) -> None:
        for m in msgs:
            datapath.send_msg(to_openflow(datapath, m))

    def _program(self, datapath) -> None:
        self.datapaths[datapath.id] = datapath
        msgs = self.core.switch_connected(datapath.id, time.monotonic())
        if not msgs:
            LOG.warning("switch %#x is not in spec %s; leaving it empty", datapath.id,
                        self.core.spec.name)
            return
        LOG.info("programming switch %#x with %d flows", datapath.id, len(msgs) - 2)
        self._send(datapath, msgs)

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
            self.core.switch_error(ev.msg.datapath.id, "programming failed; see log", time.monotonic())

    @set_ev_cls(ofp_event.EventOFPBarrierReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def barrier_reply(self, ev):
        self.core.barrier_replied(ev.msg.datapath.id, time.monotonic())
        sw = self.core.switches.get(ev.msg.datapath.id)
        if sw is not None and sw.state == "ready":
            LOG.info("switch %s ready after %.3f s", sw.name, sw.ready_at - sw.connected_at)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_msg(self, ev):
        m = ev.msg
        text = f"OpenFlow error type={m.type} code={m.code} data={bytes(m.data)[:32].hex()}"
        LOG.error("switch %#x: %s", m.datapath.id, text)
        self.core.switch_error(m.datapath.id, text, time.monotonic())

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def state_change(self, ev):
        dp = ev.datapath
        if dp.id is None:
            return
        if self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self.core.switch_disconnected(dp.id, time.monotonic())
            LOG.warning("switch %#x disconnected", dp.id)
