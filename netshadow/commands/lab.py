"""`netshadow lab up|down`: the Mininet emulation lab."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

from topologies import bundled, load_spec
from topologies.spec import MAX_PREFIX_LEN

from ..errors import error
from .common import EXIT_INVALID, EXIT_OK, port_arg, spec_arg


@dataclass(frozen=True)
class LabUpSettings:
    """``netshadow lab up``, checked before anything is built (``ValueError`` naming the flag)."""

    spec: str
    prefix: str = "nsl"
    datapath: str | None = None
    of_port: int = 6653
    rest_port: int = 8080
    with_controller: bool = False
    controller_log: str | None = None
    db: str = "netshadow.db"
    controller_url: str | None = None
    agents: bool = True
    spool_dir: Path = Path("/var/lib/netshadow/spool")
    token_file: str | None = None
    cli: bool = False

    def __post_init__(self):
        from topologies.mininet_topo import PREFIX_RE  # the lab's own rule (imports Mininet)

        if not PREFIX_RE.match(self.prefix):
            raise ValueError(f"--prefix: must be {MAX_PREFIX_LEN} characters: a lower-case letter, "
                             f"then lower-case letters or digits (got {self.prefix!r})")
        if self.with_controller and self.of_port == self.rest_port:
            raise ValueError(f"--rest-port: {self.rest_port} is the OpenFlow port too")
        url = self.controller_url
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"--controller-url: must be an http(s):// URL (got {url[:80]!r})")
        if self.token_file is not None and not Path(self.token_file).is_file():
            raise ValueError(f"--token-file: no such file: {self.token_file}")


def cmd_lab_up(a) -> int:
    try:
        s = LabUpSettings(a.spec, a.prefix, a.datapath, a.of_port, a.rest_port, a.with_controller,
                          a.controller_log, a.db, a.controller_url, not a.no_agents, Path(a.spool_dir),
                          a.token_file, a.cli)
    except ValueError as e:
        error(f"netshadow lab up: {e}")
        return EXIT_INVALID
    return lab_up(s)


def lab_up(s: LabUpSettings) -> int:
    from emulation import cleanup
    from emulation.controller_proc import ControllerProcess
    from emulation.lab import Lab

    spec = load_spec(s.spec)
    ctl = None
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        token_file = s.token_file
        if s.with_controller and not token_file:
            import secrets

            cleanup.RUN_DIR.mkdir(parents=True, exist_ok=True)
            tok = cleanup.RUN_DIR / f"{s.prefix}.token"
            tok.write_text(secrets.token_hex(16))
            tok.chmod(0o600)
            token_file = str(tok)
        if s.with_controller:
            ctl = ControllerProcess(s.spec, s.of_port, s.rest_port, log_path=s.controller_log,
                                    db_path=s.db,
                                    extra_args=["--token-file", token_file] if token_file else [])
            ctl.start()
            cleanup.register_pid(s.prefix, ctl.proc.pid)  # 'lab down' ends it after a crash
        lab = Lab(spec, prefix=s.prefix, controller_port=s.of_port, datapath=s.datapath)
        with lab:
            print(f"lab {spec.name}: {len(spec.switches)} switches, {len(spec.hosts)} hosts up in "
                  f"{lab.start_s:.2f} s (prefix {s.prefix})")
            agents = {}
            if ctl:
                h = ctl.wait_ready()
                print(f"controller: all switches programmed {h['all_ready_after_s']} s after start")
            if s.agents and (ctl or s.controller_url):
                from emulation.agents import start_agents

                agents = start_agents(lab, s.controller_url or ctl.url.removesuffix("/api/v1"),
                                      s.spool_dir, token_file=token_file)
                print(f"{len(agents)} host agents reporting to the controller")
            if s.cli:
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
          f"{len(found.pids)} processes, {len(set(cleanup.own_prefixes(found.datapaths)))} own "
          f"Open vSwitch with "
          f"prefix {a.prefix!r}")
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
