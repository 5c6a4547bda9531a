"""A shadow verifies a plan's compute: a CPU-limited host under the forecast's CPU load with a
quota below it is throttled, shows as a bottleneck and fails the plan; with a quota above it the
same load gets its CPU and the plan passes."""

from __future__ import annotations

from controller.plan import Plan
from emulation import cleanup
from emulation.hostcompute import ComputeDemand
from emulation.shadow import Shadow
from topologies import load_spec

from .conftest import SPECS


def test_a_tight_cpu_quota_is_a_bottleneck_in_the_shadow_and_a_wide_one_passes(tmp_path):
    spec = load_spec(SPECS / "cpu.yaml")
    load = [ComputeDemand("red", "h1", (0.4, 0.5, 0.5, 0.4))]
    try:
        with Shadow(spec, prefix="ntm", workdir=tmp_path) as sh:
            sh.apply(Plan("tight", cpu_quotas=(("h1", 0.2),)))
            tight = sh.run([], 4.0, probe=False, compute=load)
            sh.apply(Plan("wide", cpu_quotas=(("h1", 0.7),)))
            wide = sh.run([], 4.0, probe=False, compute=load)
    finally:
        assert cleanup.find("ntm").empty()
    (t,) = tight.compute
    assert tight.verdict == "fail", tight
    assert t.quota_cores == 0.2 and t.used_cores < 0.25 and t.throttled_s > 1.0, t
    assert any("CPU of host h1" in b for b in tight.bottlenecks), tight.bottlenecks
    (w,) = wide.compute
    assert wide.verdict == "pass", wide
    assert w.quota_cores == 0.7 and w.used_cores >= 0.99 * w.asked_cores - 0.01 and w.throttled_s < 0.05, w
