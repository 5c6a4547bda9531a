"""`netshadow controller`: the os-ken controller (OpenFlow and REST) for a spec."""

from __future__ import annotations

from pathlib import Path

from topologies import bundled, load_spec

from ..errors import error
from .common import EXIT_FAIL, EXIT_INVALID, EXIT_OK, port_arg, spec_arg

# the command's flags by settings field, so an error names what the user typed
FLAGS = {"of_port": "--of-port", "rest_port": "--rest-port", "poll_interval_s": "--poll-interval",
         "retention_s": "--retention-days", "no_meters": "--no-meters"}


def settings(a):
    """The frozen, validated :class:`controller.launcher.ControllerSettings` of the arguments
    (``ValueError`` naming the flag); the store and the plan file are checked here too."""
    from controller.launcher import ControllerSettings
    from controller.plan import PlanError, load_plan
    from controller.rest import load_token

    spec = load_spec(a.spec)
    try:
        token = load_token(a.token_file)
    except (OSError, ValueError) as e:
        raise ValueError(f"--token-file: {e}") from None
    db = None if a.db == "none" else a.db
    plan = None
    if a.plan:
        try:
            plan = load_plan(a.plan, spec)
        except PlanError as e:
            raise ValueError(f"--plan: {e}") from None
    try:
        cs = ControllerSettings(spec, a.of_host, a.of_port, a.rest_host, a.rest_port, token,
                                a.poll_interval, db, a.retention_days * 86400, plan,
                                frozenset(n for n in (a.no_meters or "").split(",") if n))
    except ValueError as e:
        fld, _, rest = str(e).partition(": ")
        raise ValueError(f"{FLAGS.get(fld, fld)}: {rest}") from None
    if db:
        from controller.store import Store, StoreError

        try:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
            Store(db, cs.retention_s).close()  # migrate and check before starting
        except (StoreError, OSError, ValueError) as e:
            raise ValueError(f"--db: {e}") from None
    return cs


def cmd_controller(a) -> int:
    from controller.launcher import run_controller
    from emulation.controller_proc import port_free

    try:
        cs = settings(a)
    except ValueError as e:
        error(f"netshadow controller: {e}")
        return EXIT_INVALID
    for what, host, port in (("--of-port", cs.of_host, cs.of_port),
                             ("--rest-port", cs.rest_host, cs.rest_port)):
        if not port_free(host, port):
            error(f"netshadow controller: {what}: {host}:{port} is already in use")
            return EXIT_FAIL
    run_controller(cs)
    return EXIT_OK


def register(sub) -> None:
    p = sub.add_parser("controller", help="run the os-ken controller (OpenFlow + REST)")
    p.add_argument("--spec", type=spec_arg, default=str(bundled("default")))
    p.add_argument("--of-host", default="127.0.0.1", help="OpenFlow listen address")
    p.add_argument("--of-port", type=port_arg, default=6653)
    p.add_argument("--rest-host", default="127.0.0.1", help="REST listen address")
    p.add_argument("--rest-port", type=port_arg, default=8080)
    p.add_argument("--token-file", help="file holding the REST bearer token "
                                        "(else $NETSHADOW_API_TOKEN_FILE or $NETSHADOW_API_TOKEN)")
    p.add_argument("--poll-interval", type=float, default=1.0,
                   help="seconds between statistics polls (default 1)")
    p.add_argument("--db", default="netshadow.db",
                   help="SQLite telemetry store (default ./netshadow.db; 'none' disables it)")
    p.add_argument("--retention-days", type=float, default=7.0, help="keep samples this long")
    p.add_argument("--plan", help="install this allocation plan (JSON) from the start")
    p.add_argument("--no-meters", metavar="SW1,SW2",
                   help="enforce rates on these switches with tc HTB on their ports instead of "
                        "OpenFlow meters (switches reporting no meter support do so anyway)")
    p.set_defaults(func=cmd_controller)
