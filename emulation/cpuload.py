"""A calibrated CPU load: a process that asks for a schedule of CPU shares, one per step.

Run inside a lab host (``python -m emulation.cpuload --shares 0.1,0.6 --step 1 --start T``): from
wall-clock ``T`` on, step ``i`` asks for ``shares[i]`` of one CPU. Within every
:data:`SLICE_S` slice it spins until the process has *used* that share of the slice in CPU time
(``time.process_time``), then sleeps to the slice's end. It is calibrated by the CPU it got, not by
the wall time it spun: on a host with spare CPU it uses what the schedule says; under a smaller
cgroup quota it is throttled and uses the quota, and the time it waited out the quota shows in the
cgroup's ``cpu.stat`` (``throttled_time``) - the load asked for more than it was given.

At the end it prints one JSON line: the CPU seconds it asked for and the CPU seconds it got, per
step. Bounded: at most :data:`MAX_STEPS` steps of at most :data:`MAX_STEP_S` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

SLICE_S = 0.02
MAX_STEPS, MAX_STEP_S = 100_000, 3600.0


def parse_shares(text: str) -> list[float]:
    """``0.1,0.6,...`` -> shares of one CPU in [0, 1]; ValueError naming the bad one."""
    out = []
    for i, part in enumerate(str(text).split(",")):
        try:
            v = float(part)
        except ValueError:
            raise ValueError(f"--shares: item {i} is not a number (got {part[:20]!r})") from None
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"--shares: item {i} must be in [0, 1] of one CPU (got {v:g})")
        out.append(v)
    if not 1 <= len(out) <= MAX_STEPS:
        raise ValueError(f"--shares: 1-{MAX_STEPS} steps (got {len(out)})")
    return out


def run(shares: list[float], step_s: float, start: float, clock=time.time,
        cpu=time.process_time, sleep=time.sleep) -> list[float]:
    """Follow ``shares`` from ``start`` (wall clock); the CPU seconds used in each step."""
    used = [0.0] * len(shares)
    now = clock()
    if start > now:
        sleep(start - now)
    for i, share in enumerate(shares):
        step_end = start + (i + 1) * step_s
        c0 = cpu()
        while True:
            t = clock()
            if t >= step_end:
                break
            slice_end = min(step_end, t + SLICE_S)
            target = cpu() + share * (slice_end - t)
            while cpu() < target and clock() < slice_end:
                pass
            rest = slice_end - clock()
            if rest > 0:
                sleep(rest)
        used[i] = cpu() - c0
    return used


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emulation.cpuload")
    p.add_argument("--shares", required=True, help="comma-separated shares of one CPU, one per step")
    p.add_argument("--step", type=float, default=1.0, help="seconds per step")
    p.add_argument("--start", type=float, default=None, help="wall-clock start (default: now)")
    a = p.parse_args(argv)
    try:
        shares = parse_shares(a.shares)
        if not 0.05 <= a.step <= MAX_STEP_S:
            raise ValueError(f"--step: must be in [0.05, {MAX_STEP_S:g}] s (got {a.step:g})")
    except ValueError as e:
        print(f"cpuload: {e}", file=sys.stderr)
        return 2
    start = time.time() if a.start is None else a.start
    used = run(shares, a.step, start)
    print(json.dumps({"asked_cpu_s": [s * a.step for s in shares], "used_cpu_s": used}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
