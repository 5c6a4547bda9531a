"""The ``netshadow`` command.

Exit status: 0 success, 1 a runtime failure (reported in one line, no traceback), 2 invalid input
(bad spec, bad arguments).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from pathlib import Path

from topologies import SpecError, bundled, load_spec

from .errors import error

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2
POLICY_NAMES = ("static", "reactive", "predictive", "oracle")


def _spec_arg(text: str) -> str:
    """A path, or the name of a bundled spec (``default``, ``abilene``)."""
    if not os.path.exists(text) and bundled(text).exists():
        return str(bundled(text))
    return text


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535: {v}")
    return v


def cmd_check_config(a) -> int:
    from controller.tenancy import compile_network

    spec = load_spec(a.spec)

    rules = compile_network(spec).rule_count()
    print(f"{a.spec}: ok - {len(spec.switches)} switches, {len(spec.links)} links, "
          f"{len(spec.hosts)} hosts, {len(spec.tenants)} tenants, {rules} flow rules")
    return EXIT_OK


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


def cmd_agent(a) -> int:
    from .agent import main as agent_main

    if a.netns_pid is not None and not Path(f"/proc/{a.netns_pid}").exists():
        error(f"netshadow agent: --netns-pid: no process {a.netns_pid}")
        return EXIT_INVALID
    if a.interval <= 0:
        error(f"netshadow agent: --interval: must be > 0 s (got {a.interval})")
        return EXIT_INVALID
    return agent_main(a)


def cmd_telemetry_export(a) -> int:
    from .export import ExportError, export

    try:
        rows, cols = export(a.db, a.out, a.step, a.prefix)
    except ExportError as e:
        error(f"netshadow telemetry export: {e}")
        return EXIT_INVALID
    print(f"{a.out}: {rows} rows x {cols} series at {a.step:g} s steps")
    return EXIT_OK


def _horizons(text: str) -> list[int]:
    try:
        hs = [int(x) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not hs or any(h < 1 for h in hs):
        raise argparse.ArgumentTypeError(f"horizons must be integers >= 1: {text!r}")
    return hs


def cmd_tpp_evaluate(a) -> int:
    from models.series import SeriesError

    from .tpp import run_evaluate

    try:
        return run_evaluate(a.csv, a.horizons, a.test_fraction, a.test_start, a.json, a.plot,
                            a.season, lstm=not a.no_lstm, model_dir=a.model, window=a.window,
                            epochs=a.epochs, seed=a.seed, units=a.units, patch=a.patch)
    except (SeriesError, ValueError) as e:
        error(f"netshadow tpp evaluate: {e}")
        return EXIT_INVALID


def _tpp(runner, name):
    def cmd(a) -> int:
        from models.series import SeriesError

        try:
            return runner(a)
        except (SeriesError, ValueError) as e:
            error(f"netshadow tpp {name}: {e}")
            return EXIT_INVALID
    return cmd


def _train(a):
    from .tpp import run_train

    return run_train(a.csv, a.out, a.horizon, a.window, a.test_fraction, a.test_start, a.epochs,
                     a.seed, a.units, a.patch)


def _forecast(a):
    from .tpp import run_forecast

    return run_forecast(a.model, a.csv, a.json, a.horizon, a.anomaly_window)


def _anomalies(a):
    from .tpp import run_anomalies

    return run_anomalies(a.csv, a.labels, a.reference_fraction, a.threshold, a.json)


def cmd_shadow_run(a) -> int:
    from .shadowcmd import run_shadow

    return run_shadow(a)


def cmd_plan_check(a) -> int:
    from controller.plan import PlanError, load_plan

    try:
        plan = load_plan(a.file, load_spec(a.spec))
    except PlanError as e:
        error(f"netshadow plan check: {e}")
        return EXIT_INVALID
    print(f"{a.file}: ok - plan {plan.name!r}: {len(plan.allocations)} allocations "
          f"({plan.cost_mbps():g} Mbit/s), {len(plan.extra_policies)} policy additions, "
          f"{len(plan.cpu_quotas)} CPU quotas")
    return EXIT_OK


def cmd_plan_apply(a) -> int:
    import json as _json

    import requests

    from controller.plan import PlanError, read_plan_file
    from controller.rest import load_token

    try:
        body = read_plan_file(a.file)
    except PlanError as e:
        error(f"netshadow plan apply: {e}")
        return EXIT_INVALID
    token = load_token(a.token_file)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = a.controller.rstrip("/") + "/api/v1/plans" + ("?dry_run=1" if a.dry_run else "")
    try:
        r = requests.post(url, json=body, headers=headers, timeout=60)
        doc = r.json()
    except requests.RequestException as e:
        error(f"netshadow plan apply: --controller: {e.__class__.__name__}: {e}")
        return EXIT_FAIL
    except ValueError:
        error(f"netshadow plan apply: --controller: {url} answered {r.status_code} without JSON")
        return EXIT_FAIL
    if 400 <= r.status_code < 500 and "error" in doc:
        error(f"netshadow plan apply: {a.file}: {doc['error']}")
        return EXIT_INVALID if r.status_code in (400, 413) else EXIT_FAIL
    print(_json.dumps(doc, indent=1))
    return EXIT_OK if r.ok else EXIT_FAIL


def cmd_demo(a) -> int:
    from emulation.trace import ReplayError

    from .demo import run_demo

    try:
        return run_demo(a.spec, prefix=a.prefix, workdir=Path(a.workdir), step_wall_s=a.step_seconds)
    except ReplayError as e:
        error(f"netshadow demo: {e}")
        return EXIT_INVALID


def cmd_run(a) -> int:
    from controller.rest import load_token
    from planner.core import PlannerError, PlannerSettings
    from planner.forecasters import ForecasterChoice

    from .loop import LoopRunError, RunSettings, run_loop

    spec = load_spec(a.spec)
    for fld, v, lo in (("--step", a.step, 0.5), ("--interval", a.interval, 0.5), ("--history", a.history, 10),
                       ("--retrain-every", a.retrain_every, 1), ("--shadow-duration", a.shadow_duration, 1),
                       ("--hold", 0 if a.hold is None else a.hold, 0), ("--watch", a.watch, 0)):
        if not v >= lo:
            error(f"netshadow run: {fld}: must be >= {lo:g} (got {v:g})")
            return EXIT_INVALID
    try:
        token = load_token(a.token_file)
        hold = PlannerSettings.hold_steps if a.hold is None else a.hold / a.step
        planner = PlannerSettings(quantile=a.quantile, headroom=a.headroom, hold_steps=hold,
                                  anomaly_policy=a.anomaly_policy)
        ForecasterChoice(a.forecaster, a.quantile)  # refused now, not at the first cycle
        rs = RunSettings(planner, step_s=a.step, interval_s=a.interval, history_s=a.history,
                         forecaster=a.forecaster, retrain_every=a.retrain_every, verify=a.verify,
                         shadow_duration_s=a.shadow_duration, shadow_prefix=a.shadow_prefix,
                         watch_s=a.watch, db_path=a.db, status_host=a.status_host,
                         status_port=a.status_port, cycles=a.cycles)
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


def cmd_replay_pcap(a) -> int:
    from emulation.pcap import PcapError

    from .replaycmd import run_replay_pcap

    try:
        r = run_replay_pcap(a.spec, a.pcap, a.tenant, a.app, a.src, a.dst, a.speed, a.local_ip, a.prefix,
                            Path(a.workdir))
    except PcapError as e:
        error(f"netshadow replay-pcap: {e}")
        return EXIT_INVALID
    if a.json:
        import json

        Path(a.json).write_text(json.dumps(r, indent=1))
    return EXIT_OK


def cmd_replay(a) -> int:
    from emulation.replay import ReplayRunError
    from emulation.trace import ReplayError

    from .replaycmd import run_replay

    policies = list(POLICY_NAMES) if a.policy in (None, [], ["all"]) else a.policy
    try:
        doc = run_replay(a.spec, a.trace, a.map, a.compress, policies, a.start, a.days, a.forecaster,
                         a.corrupt, a.prefix, Path(a.workdir), a.json, a.report,
                         f"netshadow replay: {Path(a.trace).name} on {Path(a.spec).stem}",
                         quantile=a.quantile, ideal=a.ideal)
    except ReplayError as e:
        error(f"netshadow replay: {e}")
        return EXIT_INVALID
    except ReplayRunError as e:
        error(f"netshadow replay: {e}")
        return EXIT_FAIL
    return EXIT_OK if doc else EXIT_FAIL


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="netshadow", description=__doc__.splitlines()[0])
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate a network spec (exit 0 valid, 2 invalid)")
    p.add_argument("spec", type=_spec_arg)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("controller", help="run the os-ken controller (OpenFlow + REST)")
    p.add_argument("--spec", type=_spec_arg, default=str(bundled("default")))
    p.add_argument("--of-host", default="127.0.0.1", help="OpenFlow listen address")
    p.add_argument("--of-port", type=_port, default=6653)
    p.add_argument("--rest-host", default="127.0.0.1", help="REST listen address")
    p.add_argument("--rest-port", type=_port, default=8080)
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

    lab = sub.add_parser("lab", help="the Mininet emulation lab").add_subparsers(dest="lab_cmd",
                                                                                 required=True)
    p = lab.add_parser("up", help="build the lab and keep it running until Ctrl-C/SIGTERM")
    p.add_argument("--spec", type=_spec_arg, default=str(bundled("default")))
    p.add_argument("--prefix", default="nsl", help="name prefix of every lab object (3 characters)")
    p.add_argument("--datapath", choices=("user", "kernel"), default=None,
                   help="OVS datapath (default: $NETSHADOW_DATAPATH or user)")
    p.add_argument("--of-port", type=_port, default=6653, help="controller OpenFlow port")
    p.add_argument("--rest-port", type=_port, default=8080)
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

    p = sub.add_parser("agent", help="report a host's CPU, memory and network I/O to the controller")
    p.add_argument("--controller", required=True, help="controller REST base URL, e.g. http://10.0.0.254:8080")
    p.add_argument("--host", required=True, help="this host's name in the spec")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between readings")
    p.add_argument("--spool", help="spool file (default /var/lib/netshadow/agent-HOST.db)")
    p.add_argument("--netns-pid", type=int, help="measure the network namespace of this process "
                                                 "instead of the agent's own")
    p.add_argument("--cgroup", help="cgroup path of the host (cpuacct/memory), if it has one")
    p.add_argument("--token-file", help="REST bearer token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.set_defaults(func=cmd_agent)

    tel = sub.add_parser("telemetry", help="stored telemetry").add_subparsers(dest="tel_cmd",
                                                                              required=True)
    p = tel.add_parser("export", help="wide CSV/Parquet: a time column, one column per series")
    p.add_argument("--db", required=True)
    p.add_argument("--out", required=True, help="FILE.csv or FILE.parquet")
    p.add_argument("--step", type=float, default=1.0, help="seconds per row (mean per bucket)")
    p.add_argument("--prefix", default="", help="only series whose name starts with this, e.g. app/")
    p.set_defaults(func=cmd_telemetry_export)

    tpp = sub.add_parser("tpp", help="traffic pattern profiler").add_subparsers(dest="tpp_cmd",
                                                                                required=True)
    p = tpp.add_parser("evaluate", help="every model on the chronological test part, side by side")
    p.add_argument("--csv", required=True, help="wide CSV: a time column, one column per series")
    p.add_argument("--horizons", type=_horizons, default=[1, 3, 12])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fraction", type=float, help="last fraction of rows as test (default 0.2)")
    g.add_argument("--test-start", help="first test time (ISO 8601)")
    p.add_argument("--season", type=int, help="season in steps (default: inferred)")
    p.add_argument("--json", help="write the scores here")
    p.add_argument("--plot", help="write a PNG of forecast vs actual with the interval band")
    p.add_argument("--no-lstm", action="store_true", help="baselines only (no TensorFlow)")
    p.add_argument("--model", help="evaluate this saved LSTM instead of training one")
    p.add_argument("--window", type=int, default=36, help="LSTM input window in steps")
    p.add_argument("--epochs", type=int, default=12, help="LSTM maximum epochs")
    p.add_argument("--units", type=int, default=32, help="LSTM hidden units")
    p.add_argument("--patch", type=int, default=3,
                   help="window steps per recurrent step (divides the window; 3 makes inference 2-3x "
                        "faster than 1 at equal accuracy on Abilene)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tpp_evaluate)

    p = tpp.add_parser("train", help="train the LSTM on the training part and save it")
    p.add_argument("--csv", required=True)
    p.add_argument("--out", required=True, help="model directory")
    p.add_argument("--horizon", type=int, default=12)
    p.add_argument("--window", type=int, default=36)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test-fraction", type=float)
    g.add_argument("--test-start")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--units", type=int, default=32, help="LSTM hidden units")
    p.add_argument("--patch", type=int, default=3,
                   help="window steps per recurrent step (divides the window; 3 makes inference 2-3x "
                        "faster than 1 at equal accuracy on Abilene)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_tpp(_train, "train"))

    p = tpp.add_parser("forecast", help="forecast the steps after a CSV with a saved model")
    p.add_argument("--model", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--json", required=True, help="write the Forecast here")
    p.add_argument("--horizon", type=int, help="steps (default: the model's horizon)")
    p.add_argument("--anomaly-window", type=int, default=288,
                   help="report anomalies among the last this many steps")
    p.set_defaults(func=_tpp(_forecast, "forecast"))

    p = tpp.add_parser("anomalies", help="anomalies against the forecast interval")
    p.add_argument("--csv", required=True)
    p.add_argument("--labels", help="labelled windows (NAB combined_windows layout) to score against")
    p.add_argument("--reference-fraction", type=float, default=0.15,
                   help="first part used as normal reference (NAB's probationary 15 %%)")
    p.add_argument("--threshold", type=float, default=0.5, help="score above which a point is anomalous")
    p.add_argument("--json")
    p.set_defaults(func=_tpp(_anomalies, "anomalies"))

    sh = sub.add_parser("shadow", help="shadow networks").add_subparsers(dest="shadow_cmd",
                                                                         required=True)
    p = sh.add_parser("run", help="replay a forecast in a shadow replica and judge candidate plans")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--spec", type=_spec_arg, help="network spec")
    src.add_argument("--controller", help="production controller URL: replicate its live spec")
    p.add_argument("--forecast", required=True, help="Forecast JSON (netshadow tpp forecast)")
    p.add_argument("--plan", action="append", default=[], help="candidate plan JSON (repeatable)")
    p.add_argument("--duration", type=float, default=10.0, help="wall-clock seconds per plan")
    p.add_argument("--quantile", type=float, default=0.5, help="forecast quantile to replay")
    p.add_argument("--tenants", help="comma-separated tenants to replicate (default: all)")
    p.add_argument("--prefix", default="sh1", help="name prefix of the shadow (3 characters)")
    p.add_argument("--rtt-bound-ms", type=float, help="service objective on p95 RTT")
    p.add_argument("--json", help="write the reports here")
    p.set_defaults(func=cmd_shadow_run)
    p = sh.add_parser("clean", help="remove a shadow's leftovers by prefix (after a crash)")
    p.add_argument("--prefix", default="sh1")
    p.set_defaults(func=cmd_clean)

    pl = sub.add_parser("plan", help="allocation plans").add_subparsers(dest="plan_cmd", required=True)
    p = pl.add_parser("apply", help="send a plan to the controller (prints the diff and outcome)")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="compute the diff only")
    p.add_argument("--controller", default="http://127.0.0.1:8080")
    p.add_argument("--token-file", help="REST token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.set_defaults(func=cmd_plan_apply)
    p = pl.add_parser("check", help="validate a plan file against a spec, without a controller "
                                    "(exit 0 valid, 2 invalid)")
    p.add_argument("file")
    p.add_argument("--spec", type=_spec_arg, default=str(bundled("default")))
    p.set_defaults(func=cmd_plan_check)

    p = sub.add_parser("demo", help="the default lab: tenant isolation, then the bundled trace "
                                    "replayed under every allocation policy, with a report")
    p.add_argument("--spec", type=_spec_arg, default=str(bundled("default")))
    p.add_argument("--prefix", default="nsd")
    p.add_argument("--workdir", default="out/demo", help="where logs and the report go")
    p.add_argument("--step-seconds", type=float, default=1.0,
                   help="wall-clock seconds per half-hour trace step (default 1)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("replay-pcap", help="replay a packet capture in the lab, rewritten onto one "
                                           "tenant application between two hosts")
    p.add_argument("--spec", type=_spec_arg, required=True)
    p.add_argument("--pcap", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--app", required=True)
    p.add_argument("--src", required=True, help="client host (the capture's local address)")
    p.add_argument("--dst", required=True, help="server host (every other address)")
    p.add_argument("--local-ip", help="the capture's local address (default: the most frequent)")
    p.add_argument("--speed", type=float, default=1.0, help="timing multiplier (default 1)")
    p.add_argument("--prefix", default="nsp")
    p.add_argument("--workdir", default="out/replay-pcap")
    p.add_argument("--json", help="write the result here")
    p.set_defaults(func=cmd_replay_pcap)

    p = sub.add_parser("run", help="the closed loop: telemetry -> forecast -> (shadow) -> plan -> "
                                   "feedback, against a running controller")
    p.add_argument("--spec", type=_spec_arg, required=True)
    p.add_argument("--controller", default="http://127.0.0.1:8080")
    p.add_argument("--token-file", help="REST token file (else $NETSHADOW_API_TOKEN[_FILE])")
    p.add_argument("--step", type=float, default=10.0, help="seconds per forecast step (default 10)")
    p.add_argument("--interval", type=float, default=10.0, help="seconds between cycles (default 10)")
    p.add_argument("--history", type=float, default=3600.0, help="seconds of telemetry each cycle reads")
    p.add_argument("--forecaster", default="lstm", help="lstm (default) or a baseline: persistence, "
                   "seasonal_naive, moving_average, holt_winters")
    p.add_argument("--retrain-every", type=int, default=10, help="update the model every N cycles")
    p.add_argument("--quantile", type=float, default=0.9, help="forecast quantile allocated (risk knob)")
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

    p = sub.add_parser("replay", help="drive the lab with a demand trace under allocation policies "
                                      "and compare them")
    p.add_argument("--spec", type=_spec_arg, required=True)
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
                   help="the predictive policy's model: lstm (default) or a baseline name")
    p.add_argument("--quantile", type=float, default=0.9,
                   help="forecast quantile the predictive policy allocates (default 0.9; higher "
                        "buys fewer violations with more reserve - see benchmarks/replay_tradeoff.py)")
    p.add_argument("--corrupt", help="damage the forecasts on purpose: shift[:STEPS] or noise[:SIGMA]")
    p.add_argument("--ideal", action="store_true",
                   help="without the lab: every application offers exactly its demand and the excess "
                        "over its rate is dropped (seconds, no root; stricter than the lab)")
    p.add_argument("--prefix", default="nsr", help="name prefix of the lab's objects")
    p.add_argument("--workdir", default="out/replay", help="logs")
    p.add_argument("--json", help="write every step's measurements and the summary here")
    p.add_argument("--report", help="write index.html, PNG plots and replay.json into this directory")
    p.set_defaults(func=cmd_replay)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return a.func(a)
    except SpecError as e:
        error(f"netshadow {a.command}: invalid spec: {e}")
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_FAIL
    except Exception as e:  # noqa: BLE001 - one line for the user; details with -v
        if a.verbose:
            logging.exception("failed")
        error(f"netshadow {a.command}: {e}")
        return EXIT_FAIL
