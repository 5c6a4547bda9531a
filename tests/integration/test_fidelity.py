"""Shadow fidelity on the lab: ``netshadow shadow run --compare-production`` runs a plan that
fits and one whose meter is too tight in a shadow and in the production lab behind a live
controller, with the same generators and schedule; the shadow's verdicts are production's, its
delivered rates, loss and link utilisation within the tolerances, and production gets back the
plan it had."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from emulation import cleanup
from models.forecast import Forecast, SeriesForecast

from .conftest import running_lab

RATES = {"app/red/video/fwd/bps": 20e6, "app/blue/dns/fwd/bps": 10e6}  # bit/s, L2
PLANS = {
    "fits": [{"tenant": "red", "app": "video", "rate_mbps": 25},
             {"tenant": "blue", "app": "dns", "rate_mbps": 12}],
    "tight": [{"tenant": "red", "app": "video", "rate_mbps": 15},  # a quarter of video dropped
              {"tenant": "blue", "app": "dns", "rate_mbps": 12}],
}


def test_the_shadow_predicts_production_for_a_fitting_and_a_too_tight_plan(tmp_path):
    times = tuple(f"2026-01-01T00:0{i}:00Z" for i in range(4))
    series = tuple(SeriesForecast(name, times, (v,) * 4, ((0.1, (v,) * 4), (0.9, (v,) * 4)), "test")
                   for name, v in RATES.items())
    (tmp_path / "f.json").write_text(Forecast(times[0], 60.0, series).to_json())
    for name, allocs in PLANS.items():
        (tmp_path / f"{name}.json").write_text(json.dumps({"name": name, "allocations": allocs}))
    with running_lab("default", "ntk", tmp_path / "prod", db=True) as prod:
        base = prod.ctl.url.removesuffix("/api/v1")
        before = requests.get(f"{prod.ctl.url}/plans/current", timeout=10).json()["plan"]
        r = subprocess.run(
            [sys.executable, "-m", "netshadow", "shadow", "run", "--controller", base,
             "--compare-production", "--production-prefix", "ntk", "--prefix", "ntn",
             "--token-file", str(prod.workdir / "token"), "--forecast", str(tmp_path / "f.json"),
             "--plan", str(tmp_path / "fits.json"), "--plan", str(tmp_path / "tight.json"),
             "--duration", "6", "--json", str(tmp_path / "out.json")],
            capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]  # "fits" passed
        after = requests.get(f"{prod.ctl.url}/plans/current", timeout=10).json()["plan"]
        history = requests.get(f"{prod.ctl.url}/plans/history", timeout=10).json()["history"]
    assert cleanup.find("ntn").empty()
    assert before is None and (after is None or after["allocations"] == [])  # put back
    assert {"fits", "tight"} <= {h["plan"]["name"] for h in history}  # production ran both
    assert "fidelity of plan fits" in r.stdout and "fidelity of plan tight" in r.stdout

    out = json.loads((tmp_path / "out.json").read_text())
    fidelity = {f["plan"]: f for f in out["fidelity"]}
    scored = [f for f in fidelity.values() if f["scored"]]
    assert scored, f"both comparisons CPU-bound: {[f['untrusted'] for f in fidelity.values()]}"
    for f in fidelity.values():
        if not f["scored"]:
            assert f["untrusted"] and f["score"] is None  # flagged, with why
            continue
        want = "pass" if f["plan"] == "fits" else "fail"
        assert f["shadow_verdict"] == f["production_verdict"] == want, f
        assert len(f["apps"]) == 2 and len(f["links"]) >= 2, f
        for a in f["apps"]:
            assert a["delivered_error"] <= 0.05, a
            assert a["loss_error_pp"] <= 1.0, a
            assert a["shadow_rtt_p95_ms"] > 0 and a["production_rtt_p95_ms"] > 0, a
        for lk in f["links"]:
            assert lk["error"] <= 0.05, lk
    tight = {(x["tenant"], x["app"]): x for x in fidelity["tight"]["apps"]}
    if fidelity["tight"]["scored"]:  # the meter's drops, the same on both sides
        video = tight[("red", "video")]
        assert 0.2 < video["production_loss"] < 0.3 and 0.2 < video["shadow_loss"] < 0.3, video
