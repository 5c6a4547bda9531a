"""Every metric the Grafana dashboard queries is one the controller exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from controller.metrics import Metrics

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "netshadow-tenant.json"


def test_dashboard_queries_exported_metrics():
    registry = CollectorRegistry()
    Metrics(registry)
    exported = set()
    for fam in registry.collect():
        exported.add(fam.name)
        for s in fam.samples:
            exported.add(s.name)
    exported |= {n + suffix for n in list(exported) for suffix in ("_bucket", "_total")}
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]]
    exprs.append(doc["templating"]["list"][1]["query"])
    used = {m for e in exprs for m in re.findall(r"netshadow_[a-z_]+", e)}
    assert used and used <= exported, used - exported
