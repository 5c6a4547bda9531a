"""``netshadow demo``: the default lab with the controller; tenant isolation checked, then the
bundled demo trace replayed under the four allocation policies, with the comparison report."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulation.isolation import expected_cases, run_probes, summarise

TRACES = Path(__file__).resolve().parents[1] / "traces"


def isolation(lab, spec, console: Console, workdir: Path) -> int:
    cases = expected_cases(spec)
    console.print(f"probing {len(cases)} (source, destination, protocol/port) cases ...")
    results = run_probes(lab, spec, cases)
    rows = summarise(spec, results)
    table = Table(title=f"Tenant isolation on {spec.name}: expected vs observed")
    for col in ("from", "to", "tenant", "expected to connect", "observed", "probes", "result"):
        table.add_column(col)
    for r in rows:
        ok = r["mismatches"] == 0
        table.add_row(r["from"], r["to"], r["tenant"], ", ".join(r["expected"]) or "nothing",
                      ", ".join(r["observed"]) or "nothing", str(r["probes"]),
                      "[green]ok[/]" if ok else f"[red]{r['mismatches']} wrong[/]")
    console.print(table)
    bad = [x for x in results if not x.conforms]
    (workdir / "isolation.json").write_text(json.dumps(
        [{**x.case.__dict__, "observed": x.observed, "rtt_ms": x.rtt_ms} for x in results], indent=1))
    console.print(f"{len(results)} probes, {len(bad)} not as the spec says; details in "
                  f"{workdir / 'isolation.json'}")
    return len(bad)


def run_demo(spec_path: str, prefix: str, workdir: Path, step_wall_s: float = 1.0,
             trace: Path = TRACES / "demo.csv", mapping: Path = TRACES / "demo-map.yaml") -> int:
    from topologies import load_spec

    from .replaycmd import LabSession, make_forecaster, prepare, report, run_all

    console = Console(width=max(110, Console().width))
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    setup = prepare(load_spec(spec_path), str(trace), str(mapping), f"1800={step_wall_s:g}", None, 1.0)
    model = make_forecaster(setup, "lstm", console)
    policies = ["static", "reactive", "predictive", "oracle"]
    with LabSession(spec_path, prefix, workdir, console) as s:
        bad = isolation(s.lab, s.spec, console, workdir)
        console.print(f"replaying the last day of {trace.name} ({setup.demand.shape[0]} half-hour steps, "
                      f"{step_wall_s:g} s each) under {len(policies)} policies ...")
        results = run_all(setup, policies, s.lab, s.ctl.url, s.token, console, model)
    report_dir = workdir / "report"
    report(results, setup, console, None, str(report_dir), "netshadow demo: allocation policies on "
           "the demo trace", {"spec": spec_path, "trace": str(trace), "mapping": str(mapping),
                              "compress": f"1800={step_wall_s:g}", "forecaster": "lstm",
                              "description": "The last day of the bundled synthetic trace, replayed on "
                                             "the default lab; the profiler was trained on the seven "
                                             "days before it."})
    console.print(f"done in {time.monotonic() - t0:.0f} s; open {(report_dir / 'index.html').resolve()} "
                  "in a browser")
    return 0 if not bad else 1
