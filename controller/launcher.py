"""Runs the os-ken app in this process (os-ken 4 has no ``osken-manager``).

Uses os-ken's default native-thread hub; eventlet is not needed. Configuration order matters:
``os_ken.base.app_manager`` must be imported before ``CONF()`` is called, or option
registration fails.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from dataclasses import dataclass

from topologies import NetworkSpec
from topologies.shown import shown

LOG = logging.getLogger("netshadow.controller")


@dataclass(frozen=True)
class ControllerSettings:
    """Everything a controller process runs with, checked once: a bad value raises
    ``ValueError`` naming the field and the value."""

    spec: NetworkSpec
    of_host: str = "127.0.0.1"
    of_port: int = 6653
    rest_host: str = "127.0.0.1"
    rest_port: int = 8080
    token: str | None = None
    poll_interval_s: float = 1.0
    db_path: str | None = None  # None: no store
    retention_s: float = 7 * 86400
    plan: object | None = None  # a controller.plan.Plan installed from the start
    no_meters: frozenset[str] = frozenset()  # switches enforcing with tc HTB instead of meters

    def __post_init__(self):
        for fld in ("of_port", "rest_port"):
            v = getattr(self, fld)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 65535:
                raise ValueError(f"{fld}: must be a port number 1-65535 (got {shown(v)})")
        if self.of_port == self.rest_port and self.of_host == self.rest_host:
            raise ValueError(f"rest_port: {self.rest_port} is the OpenFlow port too")
        if not isinstance(self.poll_interval_s, (int, float)) or not 0.1 <= self.poll_interval_s <= 3600:
            raise ValueError(f"poll_interval_s: must be 0.1-3600 s (got {shown(self.poll_interval_s)})")
        if not isinstance(self.retention_s, (int, float)) or not self.retention_s > 0:
            raise ValueError(f"retention_s: must be > 0 s (got {shown(self.retention_s)})")
        unknown = sorted(set(self.no_meters) - {sw.name for sw in self.spec.switches})
        if unknown:
            raise ValueError(f"no_meters: {unknown[0]!r} is not a switch of spec {self.spec.name}")


def run_controller(cs: ControllerSettings) -> None:
    """Run until SIGTERM/SIGINT. Blocks."""
    os.environ.setdefault("OSKEN_HUB_TYPE", "native")
    from os_ken import cfg
    from os_ken.base import app_manager  # noqa: F401 - must precede CONF()

    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.set_override("ofp_tcp_listen_port", cs.of_port)
    cfg.CONF.set_override("ofp_listen_host", cs.of_host)

    from . import app

    app.configure(app.Settings(spec=cs.spec, rest_host=cs.rest_host, rest_port=cs.rest_port,
                               token=cs.token, poll_interval_s=cs.poll_interval_s,
                               db_path=cs.db_path, retention_s=cs.retention_s, plan=cs.plan,
                               no_meters=cs.no_meters))

    def stop(signum, frame):
        LOG.info("signal %d: stopping", signum)
        app.shutdown()  # flush queued samples to the store
        logging.shutdown()
        sys.stdout.flush()
        # os-ken's native hub threads cannot be killed; exit the process directly.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("controller for spec %s: OpenFlow on %s:%d", cs.spec.name, cs.of_host, cs.of_port)
    app_manager.AppManager.run_apps(["controller.app"])
