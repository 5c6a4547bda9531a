"""`netshadow demo`: the default lab, isolation, then every policy on the bundled trace."""

from __future__ import annotations

from pathlib import Path

from topologies import bundled

from ..errors import error
from .common import EXIT_INVALID, spec_arg


def cmd_demo(a) -> int:
    from emulation.trace import ReplayError

    from ..demo import run_demo

    try:
        return run_demo(a.spec, prefix=a.prefix, workdir=Path(a.workdir), step_wall_s=a.step_seconds)
    except ReplayError as e:
        error(f"netshadow demo: {e}")
        return EXIT_INVALID


def register(sub) -> None:
    p = sub.add_parser("demo", help="the default lab: tenant isolation, then the bundled trace "
                                    "replayed under every allocation policy, with a report")
    p.add_argument("--spec", type=spec_arg, default=str(bundled("default")))
    p.add_argument("--prefix", default="nsd")
    p.add_argument("--workdir", default="out/demo", help="where logs and the report go")
    p.add_argument("--step-seconds", type=float, default=1.0,
                   help="wall-clock seconds per half-hour trace step (default 1)")
    p.set_defaults(func=cmd_demo)
