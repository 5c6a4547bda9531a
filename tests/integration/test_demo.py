"""`make demo` end to end (at half a second per trace step): isolation, the four policies on the
bundled trace, the table and a report with its plots embedded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulation import cleanup


def test_demo_runs_end_to_end(tmp_path):
    pytest.importorskip("tensorflow", reason="the demo trains the profiler's LSTM")
    r = subprocess.run([sys.executable, "-m", "netshadow", "demo", "--workdir", str(tmp_path),
                        "--step-seconds", "0.5", "--prefix", "ntj"], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "392 probes, 0 not as the spec says" in r.stdout
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # three applications + the comparison
    doc = json.loads((tmp_path / "report" / "replay.json").read_text())
    assert list(doc["summary"]) == ["static", "reactive", "predictive", "oracle"]
    assert doc["summary"]["static"]["violation_s"] == 0  # the peak is always reserved
    assert len({s["peaks"] for s in doc["summary"].values()}) == 1 and doc["summary"]["static"]["peaks"] > 0
    assert "report:" in r.stdout and "index.html" in r.stdout
    assert cleanup.find("ntj").empty()
