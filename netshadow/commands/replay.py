"""`netshadow replay`: a demand trace under allocation policies."""

from __future__ import annotations

from pathlib import Path

from ..errors import error
from .common import EXIT_FAIL, EXIT_INVALID, EXIT_OK, POLICY_NAMES, spec_arg


def cmd_replay(a) -> int:
    from emulation.replay import ReplayRunError
    from emulation.trace import ReplayError

    from ..replaycmd import ReplaySettings, run_replay

    policies = tuple(POLICY_NAMES) if a.policy in (None, [], ["all"]) else tuple(a.policy)
    try:
        rs = ReplaySettings(a.spec, a.trace, a.map, a.compress, policies, a.start, a.days,
                            a.forecaster, a.corrupt, a.prefix, Path(a.workdir), a.json, a.report,
                            f"netshadow replay: {Path(a.trace).name} on {Path(a.spec).stem}",
                            quantile=a.quantile, ideal=a.ideal, budget=a.budget,
                            spend_cap=not a.no_spend_cap)
        doc = run_replay(rs)
    except ReplayError as e:
        error(f"netshadow replay: {e}")
        return EXIT_INVALID
    except ReplayRunError as e:
        error(f"netshadow replay: {e}")
        return EXIT_FAIL
    return EXIT_OK if doc else EXIT_FAIL


def register(sub) -> None:
    p = sub.add_parser("replay", help="drive the lab with a demand trace under allocation policies "
                                      "and compare them")
    p.add_argument("--spec", type=spec_arg, required=True)
    p.add_argument("--trace", required=True, help="wide CSV: a time column, one column per series")
    p.add_argument("--map", required=True, help="YAML/JSON mapping of trace columns to tenant "
                                                "applications and host pairs (see docs/replay.md)")
    p.add_argument("--compress", required=True, metavar="STEP=SECONDS",
                   help="replay each trace step of STEP seconds in SECONDS, e.g. 300=1")
    p.add_argument("--policy", action="append", choices=(*POLICY_NAMES, "all"),
                   help="repeat for several (default: all four)")
    p.add_argument("--start", help="first replayed step (default: the last --days of the trace)")
    p.add_argument("--days", type=float, default=1.0, help="how much trace to replay (default 1 day)")
    p.add_argument("--forecaster", default="lstm",
                   help="the predictive policy's model: lstm (default), selection (the backtest's "
                        "choice per series), gbm (gradient-boosted trees) or a baseline name")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="forecast quantile the predictive policy allocates (default 0.9; higher "
                        "buys fewer violations with more reserve - see benchmarks/replay_tradeoff.py)")
    p.add_argument("--budget", type=float, default=0.01,
                   help="the predictive policy's violation budget: the long-run share of steps an "
                        "application's demand may exceed its rate (default 0.01)")
    p.add_argument("--no-spend-cap", action="store_true",
                   help="let the predictive policy spend more than reacting would to hold its "
                        "budget (default: it spends at most what the reactive policy would)")
    p.add_argument("--corrupt", help="damage the forecasts on purpose: shift[:STEPS] or noise[:SIGMA]")
    p.add_argument("--ideal", action="store_true",
                   help="without the lab: every application offers exactly its demand and the excess "
                        "over its rate is dropped (seconds, no root; stricter than the lab)")
    p.add_argument("--prefix", default="nsr", help="name prefix of the lab's objects")
    p.add_argument("--workdir", default="out/replay", help="logs")
    p.add_argument("--json", help="write every step's measurements and the summary here")
    p.add_argument("--report", help="write index.html, PNG plots and replay.json into this directory")
    p.set_defaults(func=cmd_replay)
