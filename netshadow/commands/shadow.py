"""`netshadow shadow run|clean`: shadow networks judging candidate plans."""

from __future__ import annotations

from .common import spec_arg
from .lab import cmd_clean


def cmd_shadow_run(a) -> int:
    from ..shadowcmd import run_shadow

    return run_shadow(a)


def register(sub) -> None:
    sh = sub.add_parser("shadow", help="shadow networks").add_subparsers(dest="shadow_cmd",
                                                                         required=True)
    p = sh.add_parser("run", help="replay a forecast in a shadow replica and judge candidate plans")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=spec_arg, help="network spec")
    src.add_argument("--controller", help="production controller URL: replicate its live spec")
    p.add_argument("--forecast", required=True, help="Forecast JSON (netshadow tpp forecast)")
    p.add_argument("--plan", action="append", default=[], help="candidate plan JSON (repeatable)")
    p.add_argument("--duration", type=float, default=10.0, help="wall-clock seconds per plan")
    p.add_argument("--quantile", type=float, default=0.5, help="forecast quantile to replay")
    p.add_argument("--tenants", help="comma-separated tenants to replicate (default: all)")
    p.add_argument("--prefix", default="sh1", help="name prefix of the shadow (3 characters)")
    p.add_argument("--rtt-bound-ms", type=float, help="service objective on p95 RTT")
    p.add_argument("--json", help="write the reports here")
    p.add_argument("--compare-production", action="store_true",
                   help="also apply each plan to production (the lab behind --controller), drive it "
                        "with the same load and report how well the shadow predicted it; the plan "
                        "in force before is put back afterwards")
    p.add_argument("--production-prefix", default="nsl",
                   help="name prefix of the production lab's hosts (netshadow lab up --prefix)")
    p.add_argument("--token-file", help="production REST token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.set_defaults(func=cmd_shadow_run)
    p = sh.add_parser("clean", help="remove a shadow's leftovers by prefix (after a crash)")
    p.add_argument("--prefix", default="sh1")
    p.set_defaults(func=cmd_clean)
