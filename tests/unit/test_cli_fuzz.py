"""Fuzzing the command line with broken files (see :mod:`tests.fuzz`): at least 50 specs
(``check-config``), 50 replay trace/mapping pairs (``replay --ideal``) and 50 plans (``plan
check``). Each must exit 2 with one line on stderr of at most 300 characters that names the file
and the field, within 10 s and 500 MB of memory."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from tests.fuzz import broken_plans, broken_replay_inputs, broken_specs
from tests.fuzz import valid_bodies as valid
from topologies import bundled

COUNT = 50
MAX_S, MAX_RSS_MB = 10.0, 500.0
ROOT = Path(__file__).resolve().parents[2]


# A small Python process starts the command and reports its peak RSS: a child forked straight from
# pytest (which may hold TensorFlow) would count pytest's pages in its own maximum until it execs.
MEASURE = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL); "
           "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
           "sys.exit(r.returncode)")


def run_cli(args: list[str], workdir: Path) -> tuple[int, str, float, float]:
    """Exit status, stderr, seconds and peak RSS (MB) of ``netshadow ARGS``."""
    tag = f"{threading.get_ident()}-{time.monotonic_ns()}"
    err, rss = workdir / f"err-{tag}", workdir / f"rss-{tag}"
    with open(err, "wb") as ef:
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-c", MEASURE, str(rss), sys.executable, "-m", "netshadow",
                              *args], stdout=subprocess.DEVNULL, stderr=ef, cwd=ROOT)
        try:
            p.wait(timeout=60)  # a hung run fails on time, it does not hang CI
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        seconds = time.monotonic() - t0
    peak_mb = int(rss.read_text()) / 1024 if rss.exists() else float("inf")
    return p.returncode, err.read_text(errors="replace"), seconds, peak_mb


def check(results, names_file) -> None:
    bad = []
    for name, (code, err, seconds, rss), paths in results:
        lines = err.strip().splitlines()
        line = lines[0] if lines else ""
        named = any(re.search(re.escape(str(p)) + r": \S[^:]{0,80}:", line) for p in paths)
        ok = (code == 2 and len(lines) == 1 and len(line) <= 300 and named and seconds < MAX_S
              and rss < MAX_RSS_MB)
        if not ok:
            bad.append((name, code, f"{seconds:.1f}s", f"{rss:.0f}MB", err[-400:]))
    assert not bad, "\n".join(map(str, bad))
    assert len(results) >= COUNT and names_file


def parallel(jobs):
    with ThreadPoolExecutor(max_workers=2) as ex:
        return list(ex.map(lambda j: (j[0], j[1](), j[2]), jobs))


@pytest.fixture(scope="module")
def good_spec() -> dict:
    return yaml.safe_load(bundled("default").read_text())


def test_broken_specs_exit_2_with_one_line_naming_file_and_field(tmp_path, good_spec):
    jobs = []
    for name, data in broken_specs(seed=1, count=COUNT, good=good_spec):
        p = tmp_path / f"{name}.yaml"
        p.write_bytes(data)
        jobs.append((name, lambda p=p: run_cli(["check-config", str(p)], tmp_path), [p]))
    check(parallel(jobs), True)


def test_broken_plans_exit_2_with_one_line_naming_file_and_field(tmp_path):
    good = valid(1_800_000_000.0)["plan"]
    jobs = []
    for name, data in broken_plans(seed=2, count=COUNT, good=good):
        p = tmp_path / f"{name}.json"
        p.write_bytes(data)
        args = ["plan", "check", str(p), "--spec", "default"]
        jobs.append((name, lambda a=args: run_cli(a, tmp_path), [p]))
    check(parallel(jobs), True)


def test_broken_replay_inputs_exit_2_with_one_line_naming_file_and_field(tmp_path):
    good_map = yaml.safe_load((ROOT / "traces" / "demo-map.yaml").read_text())
    good_csv = (ROOT / "traces" / "demo.csv").read_text()
    jobs = []
    for name, m, t in broken_replay_inputs(seed=3, count=COUNT, good_map=good_map, good_csv=good_csv):
        mp, tp = tmp_path / f"{name}-map.yaml", tmp_path / f"{name}.csv"
        mp.write_bytes(m)
        tp.write_bytes(t)
        args = ["replay", "--spec", "default", "--ideal", "--policy", "reactive", "--trace", str(tp),
                "--map", str(mp), "--compress", "1800=1"]
        jobs.append((name, lambda a=args: run_cli(a, tmp_path), [mp, tp]))
    check(parallel(jobs), True)
