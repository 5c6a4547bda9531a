"""Lab start/stop time and controller time-to-programmed, per bundled spec (run as root).

    .venv/bin/python benchmarks/lab_timing.py [--specs default,abilene] [--repeat 3]

For each spec and repetition: start a controller process, build the lab, and measure
(a) lab start (Mininet build + start, offload off), (b) time from controller process start until
every switch has acknowledged all its flows (barrier reply), (c) lab stop (Mininet stop + the
prefix sweep). Prints one line per run and the median per spec.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from emulation.controller_proc import ControllerProcess, free_port
from emulation.lab import Lab
from topologies import bundled, load_spec


def one_run(name: str, workdir: Path) -> dict:
    spec = load_spec(bundled(name))
    of_port, rest_port = free_port(), free_port()
    t0 = time.monotonic()
    with ControllerProcess(bundled(name), of_port, rest_port, log_path=workdir / f"{name}.log") as ctl:
        lab = Lab(spec, prefix="nsb", controller_port=of_port)
        try:
            lab.start()
            health = ctl.wait_ready(timeout_s=120)
            wall_ready = time.monotonic() - t0
        finally:
            lab.stop()
    flows = sum(s["flows"] for s in health["switches"].values())
    return {"spec": name, "lab_start_s": lab.start_s, "lab_stop_s": lab.stop_s,
            "controller_ready_s": health["all_ready_after_s"], "wall_to_ready_s": wall_ready,
            "flows": flows,
            "max_switch_install_s": max(s["install_s"] for s in health["switches"].values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", default="default,abilene")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for name in a.specs.split(","):
            runs = [one_run(name, Path(d)) for _ in range(a.repeat)]
            for r in runs:
                print(f"{name:8s} lab start {r['lab_start_s']:.2f} s  lab stop {r['lab_stop_s']:.2f} s  "
                      f"controller start -> all {r['flows']} flows acknowledged "
                      f"{r['controller_ready_s']:.2f} s  slowest switch connect -> barrier "
                      f"{r['max_switch_install_s'] * 1000:.0f} ms")
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("lab_start_s", "lab_stop_s", "controller_ready_s", "max_switch_install_s")}
            print(f"{name:8s} MEDIAN lab start {med['lab_start_s']:.2f} s, "
                  f"lab stop {med['lab_stop_s']:.2f} s, "
                  f"controller start -> all flows installed {med['controller_ready_s']:.2f} s "
                  f"(includes waiting for the lab's switches to connect); slowest switch from connect to all "
                  f"flows acknowledged {med['max_switch_install_s'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
