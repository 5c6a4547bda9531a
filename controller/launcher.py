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

from topologies import NetworkSpec

LOG = logging.getLogger("netshadow.controller")


def run_controller(spec: NetworkSpec, of_host: str = "127.0.0.1", of_port: int = 6653,
                   rest_host: str = "127.0.0.1", rest_port: int = 8080,
                   token: str | None = None, poll_interval_s: float = 1.0,
                   db_path: str | None = None, retention_s: float = 7 * 86400,
                   plan=None, no_meters: frozenset[str] = frozenset()) -> None:
    """Run until SIGTERM/SIGINT. Blocks."""
    os.environ.setdefault("OSKEN_HUB_TYPE", "native")
    from os_ken import cfg
    from os_ken.base import app_manager  # noqa: F401 - must precede CONF()

    cfg.CONF(args=[], project="os_ken")
    cfg.CONF.set_override("ofp_tcp_listen_port", of_port)
    cfg.CONF.set_override("ofp_listen_host", of_host)

    from . import app

    app.configure(app.Settings(spec=spec, rest_host=rest_host, rest_port=rest_port, token=token,
                               poll_interval_s=poll_interval_s, db_path=db_path,
                               retention_s=retention_s, plan=plan, no_meters=no_meters))

    def stop(signum, frame):
        LOG.info("signal %d: stopping", signum)
        app.shutdown()  # flush queued samples to the store
        logging.shutdown()
        sys.stdout.flush()
        # os-ken's native hub threads cannot be killed; exit the process directly.
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("controller for spec %s: OpenFlow on %s:%d", spec.name, of_host, of_port)
    app_manager.AppManager.run_apps(["controller.app"])
