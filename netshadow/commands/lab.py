"""`netshadow lab up|down`: the Mininet emulation lab."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from topologies import bundled, load_spec

from .common import EXIT_OK, port_arg, spec_arg


def cmd_lab_up(a) -> int:
    from emulation import cleanup
    from emulation.controller_proc import ControllerProcess
    from emulation.lab import Lab

    spec = load_spec(a.spec)
    ctl = None
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if a.with_controller and not a.token_file:
            import secrets

            cleanup.RUN_DIR.mkdir(parents=True, exist_ok=True)
            tok = cleanup.RUN_DIR / f"{a.prefix}.token"
            tok.write_text(secrets.token_hex(16))
            tok.chmod(0o600)
            a.token_file = str(tok)
        if a.with_controller:
            ctl = ControllerProcess(a.spec, a.of_port, a.rest_port, log_path=a.controller_log,
                                    db_path=a.db,
                                    extra_args=["--token-file", a.token_file] if a.token_file else [])
            ctl.start()
            cleanup.register_pid(a.prefix, ctl.proc.pid)  # 'lab down' ends it after a crash
        lab = Lab(spec, prefix=a.prefix, controller_port=a.of_port, datapath=a.datapath)
        with lab:
            print(f"lab {spec.name}: {len(spec.switches)} switches, {len(spec.hosts)} hosts up in "
                  f"{lab.start_s:.2f} s (prefix {a.prefix})")
            agents = {}
            if ctl:
                h = ctl.wait_ready()
                print(f"controller: all switches programmed {h['all_ready_after_s']} s after start")
            if not a.no_agents and (ctl or a.controller_url):
                from emulation.agents import start_agents

                agents = start_agents(lab, a.controller_url or ctl.url.removesuffix("/api/v1"),
                                      Path(a.spool_dir), token_file=a.token_file)
                print(f"{len(agents)} host agents reporting to the controller")
            if a.cli:
                from mininet.cli import CLI

                CLI(lab.net)
            else:
                print("running; Ctrl-C or SIGTERM stops and removes the lab", flush=True)
                while not stop["now"]:
                    time.sleep(0.5)
            if agents:
                from emulation.agents import stop_agents

                stop_agents(agents)
        print(f"lab down in {lab.stop_s:.2f} s")
    finally:
        if ctl:
            ctl.stop()
    return EXIT_OK


def cmd_clean(a) -> int:
    """`lab down` and `shadow clean`: remove what carries the prefix, and nothing else."""
    from emulation import cleanup

    found = cleanup.remove(a.prefix)
    print(f"removed {len(found.bridges)} bridges, {len(found.interfaces)} interfaces, "
          f"{len(found.pids)} processes with prefix {a.prefix!r}")
    return EXIT_OK


def register(sub) -> None:
    lab = sub.add_parser("lab", help="the Mininet emulation lab").add_subparsers(dest="lab_cmd",
                                                                                 required=True)
    p = lab.add_parser("up", help="build the lab and keep it running until Ctrl-C/SIGTERM")
    p.add_argument("--spec", type=spec_arg, default=str(bundled("default")))
    p.add_argument("--prefix", default="nsl", help="name prefix of every lab object (3 characters)")
    p.add_argument("--datapath", choices=("user", "kernel"), default=None,
                   help="OVS datapath (default: $NETSHADOW_DATAPATH or user)")
    p.add_argument("--of-port", type=port_arg, default=6653, help="controller OpenFlow port")
    p.add_argument("--rest-port", type=port_arg, default=8080)
    p.add_argument("--with-controller", action="store_true",
                   help="also start a controller for the spec")
    p.add_argument("--controller-log", default=None)
    p.add_argument("--db", default="netshadow.db", help="the started controller's store")
    p.add_argument("--controller-url", help="REST URL of a running controller, for the agents")
    p.add_argument("--no-agents", action="store_true", help="do not start host agents")
    p.add_argument("--spool-dir", default="/var/lib/netshadow/spool", help="agents' spool files")
    p.add_argument("--token-file", help="REST token for the agents (and the started controller)")
    p.add_argument("--cli", action="store_true", help="open the Mininet CLI")
    p.set_defaults(func=cmd_lab_up)
    p = lab.add_parser("down", help="remove every object carrying the prefix (after a crash)")
    p.add_argument("--prefix", default="nsl")
    p.set_defaults(func=cmd_clean)
