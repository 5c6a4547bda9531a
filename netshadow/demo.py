"""``netshadow demo``: the default lab with the controller, and tenant isolation shown as a table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emulation.controller_proc import ControllerProcess
from emulation.isolation import expected_cases, run_probes, summarise
from emulation.lab import Lab
from topologies import load_spec


def run_demo(spec_path: str, of_port: int, rest_port: int, prefix: str, workdir: Path) -> int:
    console = Console(width=max(100, Console().width))
    spec = load_spec(spec_path)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with ControllerProcess(spec_path, of_port, rest_port, log_path=workdir / "controller.log") as ctl:
        console.print(f"controller up (OpenFlow :{of_port}, REST {ctl.url})")
        with Lab(spec, prefix=prefix, controller_port=of_port) as lab:
            console.print(f"lab [bold]{spec.name}[/]: {len(spec.switches)} switches, "
                          f"{len(spec.hosts)} hosts, {len(spec.tenants)} tenants, up in "
                          f"{lab.start_s:.1f} s")
            health = ctl.wait_ready()
            console.print(f"all {len(health['switches'])} switches programmed "
                          f"{health['all_ready_after_s']:.2f} s after controller start")
            cases = expected_cases(spec)
            console.print(f"probing {len(cases)} (source, destination, protocol/port) cases ...")
            results = run_probes(lab, spec, cases)
        console.print(f"lab down in {lab.stop_s:.1f} s")
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
                  f"{workdir / 'isolation.json'} (took {time.monotonic() - t0:.0f} s)")
    return 0 if not bad else 1
