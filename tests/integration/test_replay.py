"""Trace replay on the real lab: the generator's load arrives at the meters as the trace says,
a policy that allocates too little is measured losing about the difference, the oracle loses
nothing, and the report comes out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from controller.reactive import ReactiveSettings
from emulation.policies import OraclePolicy, ReactivePolicy
from emulation.replay import replay
from emulation.replay_measures import summarise
from emulation.replay_report import write_report
from emulation.trace import parse_mapping

from .conftest import running_lab

DEMAND = np.array([[10.0], [10.0], [30.0], [30.0], [10.0], [10.0]])  # Mbit/s per 1-s step
MAP = {"scale": 1.0, "flows": [{"column": "v", "tenant": "red", "app": "video", "src": "h1", "dst": "h2"}]}
# A step's measurement window closes on the replay's clock, the generator changes rate on its
# own: on a busy machine the two drift tens of milliseconds apart, so a step beside a change of
# rate carries up to this share of a step at its neighbour's rate
BOUNDARY_JITTER = 0.1


def arrives_as_the_trace_says(offered: np.ndarray, demand: np.ndarray, rel: float = 0.05) -> None:
    """Each step's offered rate within ``rel`` of the trace's, widened beside a change of rate
    by what :data:`BOUNDARY_JITTER` of the neighbouring step's rate can add or take."""
    for i, (got, want) in enumerate(zip(offered, demand)):
        near = demand[max(0, i - 1):i + 2]
        lo = want * (1 - rel) - BOUNDARY_JITTER * (want - near.min())
        hi = want * (1 + rel) + BOUNDARY_JITTER * (near.max() - want)
        assert lo <= got <= hi, \
            f"step {i}: offered {got:.2f} Mbit/s, trace {want:.2f}, allowed {lo:.2f}-{hi:.2f}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with running_lab("default", "ntm", tmp_path_factory.mktemp("replay")) as running:
        yield running


def run(lab, policy):
    mapping = parse_mapping(MAP, lab.spec, ["v"])
    return replay(lab.lab, lab.spec, lab.ctl.url, lab.token, mapping, DEMAND, policy, 300.0, 1.0)


def test_oracle_loses_nothing_and_load_arrives_as_the_trace_says(lab):
    res = run(lab, OraclePolicy([("red", "video")], DEMAND, 0.05))
    arrives_as_the_trace_says(res.offered[:, 0], DEMAND[:, 0])
    assert res.sent[0]["l2_bps"] == pytest.approx(DEMAND.mean() * 1e6, rel=0.03)
    s = summarise(res)
    assert s["violation_s"] == 0 and s["dropped_mbytes"] < 0.01
    assert s["peaks"] == 1 and s["peaks_preallocated"] == 1
    assert s["rtt_p95_ms"] is not None and s["probe_loss"] < 0.05


def test_a_policy_that_allocates_too_little_is_measured_losing_the_difference(lab, tmp_path):
    react = ReactivePolicy([("red", "video")], np.array([11.0]), ReactiveSettings(cooldown_s=600))
    res = run(lab, react)
    assert res.allocated[2, 0] < 15  # it only saw 10 Mbit/s before the rise
    lost = res.drop_bytes[2, 0] / res.in_bytes[2, 0]
    # the meter passes its rate plus its burst (a tenth of a second at the rate) in the 1-s step
    assert lost == pytest.approx(1 - res.allocated[2, 0] * 1.1 / 30.0, abs=0.05)
    s = summarise(res)
    assert s["violation_steps"] >= 1 and s["peaks_preallocated"] == 0
    assert res.allocated[3, 0] > 30  # raised after the fact
    page = write_report({"reactive": res}, tmp_path, "replay test",
                        pd.date_range("2026-01-01", periods=len(DEMAND), freq="5min"), {})
    assert "data:image/png;base64," in page.read_text()
