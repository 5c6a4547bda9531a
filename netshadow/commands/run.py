"""`netshadow run`: the closed loop against a running controller."""

from __future__ import annotations

import logging

from topologies import load_spec

from ..errors import error
from .common import EXIT_FAIL, EXIT_INVALID, spec_arg


def cmd_run(a) -> int:
    from controller.rest import load_token
    from planner.core import PlannerError, PlannerSettings
    from planner.forecasters import ForecasterChoice

    from ..loop import LoopRunError, RunSettings, run_loop

    spec = load_spec(a.spec)
    for fld, v, lo in (("--agent-interval", a.agent_interval, 0.1),
                       ("--step", a.step, 0.5), ("--scan-every", a.scan_every, 1),
                       ("--interval", a.interval, 0.5), ("--history", a.history, 10),
                       ("--retrain-every", a.retrain_every, 1), ("--shadow-duration", a.shadow_duration, 1),
                       ("--hold", 0 if a.hold is None else a.hold, 0), ("--watch", a.watch, 0)):
        if not v >= lo:
            error(f"netshadow run: {fld}: must be >= {lo:g} (got {v:g})")
            return EXIT_INVALID
    try:
        if a.scan_prefix is not None:
            from topologies.mininet_topo import PREFIX_RE

            if not PREFIX_RE.match(a.scan_prefix):
                raise ValueError(f"--scan-prefix: must be 3 characters, a lower-case letter and then "
                                 f"lower-case letters or digits (got {a.scan_prefix[:20]!r})")
        token = load_token(a.token_file)
        hold = PlannerSettings.hold_steps if a.hold is None else a.hold / a.step
        planner = PlannerSettings(quantile=a.quantile, headroom=a.headroom, hold_steps=hold,
                                  anomaly_policy=a.anomaly_policy, budget=a.budget,
                                  spend_cap=not a.no_spend_cap)
        ForecasterChoice(a.forecaster, a.quantile, season=a.season)  # refused now, not at the first cycle
        rs = RunSettings(planner, step_s=a.step, interval_s=a.interval, history_s=a.history,
                         forecaster=a.forecaster, season=a.season, retrain_every=a.retrain_every,
                         verify=a.verify,
                         shadow_duration_s=a.shadow_duration, shadow_prefix=a.shadow_prefix,
                         watch_s=a.watch, db_path=a.db, status_host=a.status_host,
                         status_port=a.status_port, cycles=a.cycles, policy=a.policy,
                         compute=compute_arg(a.compute), agent_interval_s=a.agent_interval,
                         scan_prefix=a.scan_prefix, scan_every=a.scan_every)
    except (OSError, ValueError, PlannerError) as e:
        error(f"netshadow run: {e}")
        return EXIT_INVALID
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return run_loop(spec, a.controller.rstrip("/") + "/api/v1", token, rs)
    except (LoopRunError, PlannerError) as e:
        error(f"netshadow run: {e}")
        return EXIT_FAIL
    except OSError as e:  # the controller is unreachable, the status port is taken
        error(f"netshadow run: {e.__class__.__name__}: {e}")
        return EXIT_FAIL


COMPUTE = ("cpu", "memory")


def compute_arg(text: str) -> tuple[str, ...]:
    """``cpu,memory`` / ``cpu`` / ``none`` -> the compute metrics the plan sizes."""
    if text == "none":
        return ()
    parts = tuple(p.strip() for p in text.split(","))
    bad = [p for p in parts if p not in COMPUTE]
    if bad or not parts:
        raise ValueError(f"--compute: must be none or a comma-separated list of {', '.join(COMPUTE)} "
                         f"(got {text[:60]!r})")
    return parts


def register(sub) -> None:
    p = sub.add_parser("run", help="the closed loop: telemetry -> forecast -> (shadow) -> plan -> "
                                   "feedback, against a running controller")
    p.add_argument("--spec", type=spec_arg, required=True)
    p.add_argument("--controller", default="http://127.0.0.1:8080")
    p.add_argument("--token-file", help="REST token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.add_argument("--step", type=float, default=10.0, help="seconds per forecast step (default 10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between cycles (default 10)")
    p.add_argument("--history", type=float, default=3600.0, help="seconds of telemetry each cycle reads")
    p.add_argument("--forecaster", default="lstm", help="lstm (default), selection (per series the "
                   "candidates that forecast the recent history best), gbm (gradient-boosted "
                   "trees) or a baseline: persistence, seasonal_naive, moving_average, "
                   "holt_winters, autoregression, ets")
    p.add_argument("--policy", choices=("predictive", "reactive"), default="predictive",
                   help="predictive (default: forecast, budget, plan) or reactive (the threshold "
                        "baseline on the newest measurements, through the same loop)")
    p.add_argument("--compute", default="cpu",
                   help="the CPU-limited hosts' compute the plan sizes: cpu (default), cpu,memory "
                        "or none (a memory limit under a new process's need gets it killed; opt in)")
    p.add_argument("--agent-interval", type=float, default=1.0,
                   help="seconds between the hosts' agents' readings; the horizon covers two")
    p.add_argument("--scan-prefix", default=None,
                   help="the production lab's name prefix (e.g. nsl): scan it at a low rate, store "
                        "the scans, report drift from the spec and route around links the scans say "
                        "are down (default: no scans)")
    p.add_argument("--scan-every", type=int, default=6, help="cycles between production scans")
    p.add_argument("--season", type=int, default=None,
                   help="season in steps for the seasonal baselines (default: inferred from the "
                        "history: a day or a week when it shows one)")
    p.add_argument("--retrain-every", type=int, default=10, help="update the model every N cycles")
    p.add_argument("--quantile", type=float, default=0.9, help="forecast quantile allocated (risk knob)")
    p.add_argument("--budget", type=float, default=0.01,
                   help="long-run share of steps an application's demand may exceed its rate; the "
                        "planner's margin tracks it online (default 0.01)")
    p.add_argument("--no-spend-cap", action="store_true",
                   help="hold the budget whatever it costs (default: never reserve more than the "
                        "reactive allocator would have on the same measurements; see "
                        "docs/replay.md, One planner)")
    p.add_argument("--headroom", type=float, default=0.05, help="on top of the forecast (default 0.05)")
    p.add_argument("--hold", type=float, default=None, help="seconds a lower requirement must last "
                                                            "before an allocation shrinks (default: "
                                                            "one step)")
    p.add_argument("--anomaly-policy", choices=("cap", "alert", "allocate"), default="allocate",
                   help="what an anomalous surge gets: allocate (default; like any demand), cap "
                        "(at most 1.25x what it had) or alert (keeps what it had)")
    p.add_argument("--verify", choices=("none", "shadow"), default="none",
                   help="run each plan in a shadow network before applying it")
    p.add_argument("--shadow-duration", type=float, default=5.0, help="seconds of shadow traffic")
    p.add_argument("--shadow-prefix", default="nsv")
    p.add_argument("--watch", type=float, default=0.0,
                   help="regression watch after each apply, seconds (0: off)")
    p.add_argument("--db", default="netshadow-loop.db", help="where cycles are recorded")
    p.add_argument("--status-host", default="127.0.0.1")
    p.add_argument("--status-port", type=int, default=8081, help="GET /api/v1/loop and /metrics")
    p.add_argument("--cycles", type=int, help="stop after this many cycles (default: run until killed)")
    p.set_defaults(func=cmd_run)
