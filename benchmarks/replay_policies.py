"""Policy comparison by trace replay: static, reactive, predictive and oracle on the lab, then
predictive again with deliberately corrupted forecasts (peaks two steps late; log-normal noise).

    python benchmarks/replay_policies.py abilene   # reads ../shared/data/abilene at run time
    python benchmarks/replay_policies.py demo      # the bundled synthetic trace
    python benchmarks/replay_policies.py abilene --budget 0.002   # another violation budget

``abilene``: the four largest origin-destination pairs of the Abilene traffic matrix (by mean),
scaled by 0.1 (backbone Mbit/s -> lab Mbit/s), each driven between the hosts of its two PoPs on
``topologies/abilene.yaml`` as an application of its own (the spec with four UDP applications
added, written to the output directory); the last day is replayed at 1 s per 5-minute step
after the profiler was trained on the 13 days before it. The Abilene data is academic-licensed:
nothing of it is written to the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netshadow.replaycmd import LabSession, make_forecaster, prepare, report, run_all  # noqa: E402

ABILENE = ROOT.parent / "shared/data/abilene/abilene_tm_5min_20040301T0000_20040314T2355.csv"
HOST = {
    "ATLAM5": "hatla5",
    "ATLAng": "hatla",
    "CHINng": "hchin",
    "DNVRng": "hdnvr",
    "HSTNng": "hhstn",
    "IPLSng": "hipls",
    "KSCYng": "hkscy",
    "LOSAng": "hlosa",
    "NYCMng": "hnycm",
    "SNVAng": "hsnva",
    "STTLng": "hsttl",
    "WASHng": "hwash",
}


def abilene_inputs(out: Path, pairs: int = 4, scale: float = 0.1, first: int = 0,
                   source: Path = ABILENE) -> tuple[str, str, str, str]:
    """The spec (``topologies/abilene.yaml`` with one UDP application per pair), the trace and
    the mapping for ``pairs`` origin-destination pairs of ``source`` by mean rank from ``first``
    (0: the largest), written to ``out``; returns (spec, trace, mapping, compress)."""
    cols = pd.read_csv(source, nrows=0).columns
    means = pd.read_csv(source, usecols=[c for c in cols if c != "time"]).mean()
    top = list(means.sort_values(ascending=False).index[first:first + pairs])
    spec = yaml.safe_load((ROOT / "topologies/abilene.yaml").read_text())
    spec["name"] = "abilene-replay"
    tenant = spec["tenants"][0]
    flows = []
    for i, col in enumerate(top, start=1):
        a, b = col.split("->")
        tenant["applications"].append({"name": f"od{i}", "protocol": "udp", "port": 6000 + i})
        flows.append(
            {"column": col, "tenant": tenant["id"], "app": f"od{i}", "src": HOST[a], "dst": HOST[b]}
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "abilene-replay.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (out / "abilene-map.yaml").write_text(
        yaml.safe_dump({"scale": scale, "flows": flows}, sort_keys=False)
    )
    return str(out / "abilene-replay.yaml"), str(source), str(out / "abilene-map.yaml"), "300=1"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=("abilene", "demo"))
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--corrupt", default="shift:2,noise:0.3", help="comma-separated corruptions ('' for none)"
    )
    ap.add_argument("--quantile", type=float, default=0.9,
                    help="forecast quantile the predictive policy allocates (choose it on a held-out "
                         "day with benchmarks/replay_tradeoff.py)")
    ap.add_argument("--budget", type=float, default=0.01,
                    help="the predictive policy's violation budget: the long-run share of steps an "
                         "application's demand may exceed its rate (default 0.01)")
    a = ap.parse_args()
    out = Path(a.out or ROOT / "out" / f"replay-{a.which}")
    console = Console(width=130)
    from planner.core import PlannerError, PlannerSettings

    try:
        PlannerSettings(quantile=a.quantile, budget=a.budget)
    except PlannerError as e:
        console.print(f"replay_policies: {e}")
        return 2
    if a.which == "abilene":
        spec, trace, mapping, compress = abilene_inputs(out)
    else:
        spec, trace, mapping, compress = (
            str(ROOT / "topologies/default.yaml"),
            str(ROOT / "traces/demo.csv"),
            str(ROOT / "traces/demo-map.yaml"),
            "1800=1",
        )
    from topologies import load_spec

    setup = prepare(load_spec(spec), trace, mapping, compress, None, 1.0)
    console.print(
        f"{a.which}: {setup.demand.shape[0]} steps, {len(setup.mapping.flows)} applications, "
        f"peak demand {setup.demand.max(axis=0).round(1).tolist()} Mbit/s"
    )
    model = make_forecaster(setup, "lstm", console, quantile=a.quantile)
    corruptions = [c for c in a.corrupt.split(",") if c]
    with LabSession(spec, "nsb", out / "work", console) as s:
        results = run_all(
            setup,
            ["static", "reactive", "predictive", "oracle"],
            s.lab,
            s.ctl.url,
            s.token,
            console,
            model,
            quantile=a.quantile,
            budget=a.budget,
        )
        damaged = {}
        for c in corruptions:
            console.print(f"predictive with corrupted forecasts ({c}):")
            damaged[c] = run_all(
                setup, ["predictive"], s.lab, s.ctl.url, s.token, console, model, c, a.quantile,
                budget=a.budget,
            )["predictive"]
    doc = report(
        results,
        setup,
        console,
        str(out / "replay.json"),
        str(out / "report"),
        f"Allocation policies replaying {Path(trace).name}",
        {"which": a.which, "compress": compress, "quantile": a.quantile, "budget": a.budget},
    )
    from emulation.replay_measures import summarise

    rv = doc["summary"]["reactive"]["violation_s"]
    rows = {}
    for c, r in damaged.items():
        s_ = summarise(r)
        rows[c] = {
            "violation_s": s_["violation_s"],
            "reactive_violation_s": rv,
            "not_worse_than_reactive": s_["violation_s"] <= rv,
            "reserved_mbit": s_["reserved_mbit"],
        }
        console.print(
            f"corrupted ({c}): predictive {s_['violation_s']:.0f} violation-s vs reactive {rv:.0f}; "
            f"reserved {s_['reserved_mbit']:.0f} Mbit/s*s"
        )
    (out / "corrupted.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
