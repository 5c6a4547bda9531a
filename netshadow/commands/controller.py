"""`netshadow controller`: the os-ken controller (OpenFlow and REST) for a spec."""

from __future__ import annotations

from pathlib import Path

from topologies import bundled, load_spec

from ..errors import error
from .common import EXIT_FAIL, EXIT_INVALID, EXIT_OK, port_arg, spec_arg


def cmd_controller(a) -> int:
    from controller.launcher import run_controller
    from controller.rest import load_token
    from emulation.controller_proc import port_free

    spec = load_spec(a.spec)
    for what, host, port in (("--of-port", a.of_host, a.of_port), ("--rest-port", a.rest_host, a.rest_port)):
        if not port_free(host, port):
            error(f"netshadow controller: {what}: {host}:{port} is already in use")
            return EXIT_FAIL
    try:
        token = load_token(a.token_file)
    except (OSError, ValueError) as e:
        error(f"netshadow controller: --token-file: {e}")
        return EXIT_INVALID
    if not 0.1 <= a.poll_interval <= 3600:
        error(f"netshadow controller: --poll-interval: must be 0.1-3600 s (got {a.poll_interval})")
        return EXIT_INVALID
    db = None if a.db == "none" else a.db
    if db:
        from controller.store import Store, StoreError

        try:
            Path(db).parent.mkdir(parents=True, exist_ok=True)
            Store(db, a.retention_days * 86400).close()  # migrate and check before starting
        except (StoreError, OSError, ValueError) as e:
            error(f"netshadow controller: --db: {e}")
            return EXIT_INVALID
    plan = None
    if a.plan:
        from controller.plan import PlanError, load_plan

        try:
            plan = load_plan(a.plan, spec)
        except PlanError as e:
            error(f"netshadow controller: --plan: {e}")
            return EXIT_INVALID
    no_meters = frozenset(n for n in (a.no_meters or "").split(",") if n)
    unknown = sorted(no_meters - {s.name for s in spec.switches})
    if unknown:
        error(f"netshadow controller: --no-meters: {unknown[0]!r} is not a switch of spec {spec.name}")
        return EXIT_INVALID
    run_controller(spec, a.of_host, a.of_port, a.rest_host, a.rest_port, token,
                   poll_interval_s=a.poll_interval, db_path=db, retention_s=a.retention_days * 86400,
                   plan=plan, no_meters=no_meters)
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
