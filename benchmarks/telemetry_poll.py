"""Controller CPU time per poll cycle with 100 / 1 000 / 5 000 extra flow entries, and store write
throughput. Run as root:

    .venv/bin/python benchmarks/telemetry_poll.py [--flows 100,1000,5000] [--cycles 20]

Part A runs the real controller process against a lab (``--spec``, the bundled ``default`` or
``abilene``, or a spec file; userspace OVS), adds N flow
entries carrying netshadow cookies spread evenly over the lab's switches (priority 10 in table 0,
matching UDP ports no host uses, so traffic is unaffected), lets it poll at 1 s, and reads the
controller's CPU time (user + system, /proc/PID/stat) over ``--cycles`` cycles. The baseline is
the same measurement with no extra entries (the spec's own rules: 140 on default.yaml), in the
same run. ``--flows 0`` measures the baseline alone.
Part B times Store.write in batches, the path the batch writer takes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from controller.cookies import Cookie
from controller.store import Store
from controller.telemetry.samples import Sample
from emulation.controller_proc import ControllerProcess, free_port
from emulation.lab import Lab
from topologies import bundled, load_spec

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


# red/web/fwd, with the reserved low bits set so the benchmark's entries can be deleted exactly
BENCH_COOKIE = Cookie(1, 1, 1).encode() | 0xBE


def add_flows(lab: Lab, n: int, workdir: Path) -> None:
    cookie = BENCH_COOKIE
    bridges = lab.switch_names()
    for i, br in enumerate(bridges):
        count = n // len(bridges) + (1 if i < n % len(bridges) else 0)
        lines = [f"table=0,priority=10,cookie={cookie:#x},udp,udp_dst={20000 + k},actions=drop"
                 for k in range(count)]
        path = workdir / f"{br}.flows"
        path.write_text("\n".join(lines) + "\n")
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "add-flows", br, str(path)], check=True)


def del_flows(lab: Lab) -> None:
    for br in lab.switch_names():
        subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "del-flows", br,
                        f"table=0,cookie={BENCH_COOKIE:#x}/-1"], check=True)


def poll_latency(url: str) -> tuple[float, float]:
    import requests

    text = requests.get(url.removesuffix("/api/v1") + "/metrics", timeout=5).text
    vals = {}
    for line in text.splitlines():
        if line.startswith("netshadow_poll_cycle_seconds_sum") or \
                line.startswith("netshadow_poll_cycle_seconds_count"):
            k, v = line.split()
            vals[k] = float(v)
    return vals["netshadow_poll_cycle_seconds_sum"], vals["netshadow_poll_cycle_seconds_count"]


def flow_count(lab: Lab) -> int:
    """Flow entries over the lab's switches (what each poll cycle reads)."""
    return sum(len([ln for ln in subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br, "--no-names"], check=True,
        capture_output=True, text=True).stdout.splitlines() if "cookie=" in ln])
        for br in lab.switch_names())


def part_a(spec_path: str, flow_counts: list[int], cycles: int, workdir: Path) -> None:
    spec = load_spec(spec_path)
    of, rest = free_port(), free_port()
    with ControllerProcess(spec_path, of, rest, log_path=workdir / "ctl.log",
                           db_path=workdir / "bench.db", poll_interval_s=1.0) as ctl:
        with Lab(spec, prefix="nsb", controller_port=of) as lab:
            ctl.wait_ready()
            time.sleep(3)
            print(f"{spec.name}: {len(lab.switch_names())} switches")
            print(f"{'extra flows':>12} {'total':>6} {'CPU ms/cycle':>13} {'% of 1 s interval':>18} "
                  f"{'reply latency ms':>17}")
            for n in [0] + [x for x in flow_counts if x]:
                del_flows(lab)
                if n:
                    add_flows(lab, n, workdir)
                time.sleep(2.5)  # let a couple of cycles pass with the new table
                c0, (s0, k0), t0 = cpu_seconds(ctl.proc.pid), poll_latency(ctl.url), time.time()
                time.sleep(cycles)
                c1, (s1, k1), t1 = cpu_seconds(ctl.proc.pid), poll_latency(ctl.url), time.time()
                n_cycles = (t1 - t0) / 1.0
                per = (c1 - c0) / n_cycles
                lat = (s1 - s0) / max(1, k1 - k0) * 1000
                total = flow_count(lab)
                print(f"{n:>12} {total:>6} {per * 1000:>13.1f} {per * 100:>17.1f}% {lat:>17.1f}")


def part_b(workdir: Path) -> None:
    store = Store(workdir / "write.db")
    for batch in (100, 1000, 5000):
        samples = [Sample(time.time(), f"app/t{i % 50}/a{i % 7}/fwd/bps", float(i)) for i in range(batch)]
        store.write(samples)  # create the series
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 3:
            n += store.write(samples)
        dt = time.perf_counter() - t0
        print(f"store write, batches of {batch:>5}: {n / dt:>10.0f} samples/s "
              f"({dt / (n / batch) * 1000:.1f} ms per transaction)")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default="default",
                    help="a bundled spec's name (default, abilene) or a spec file")
    ap.add_argument("--flows", default="100,1000,5000")
    ap.add_argument("--cycles", type=int, default=20)
    a = ap.parse_args()
    spec = Path(a.spec) if Path(a.spec).is_file() else bundled(a.spec)
    if not spec.is_file():
        raise SystemExit(f"spec: no file and no bundled spec named {a.spec!r}")
    with tempfile.TemporaryDirectory() as d:
        part_a(str(spec), [int(x) for x in a.flows.split(",")], a.cycles, Path(d))
        part_b(Path(d))


if __name__ == "__main__":
    main()
