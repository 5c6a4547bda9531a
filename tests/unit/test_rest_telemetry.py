"""REST telemetry endpoints (series, agent samples, /metrics) over a real SQLite store."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry
from webob import Request

from controller.core import ControllerCore
from controller.metrics import Metrics
from controller.rest import RestApi
from controller.store import Store
from controller.telemetry.samples import Sample
from topologies import bundled, load_spec

AUTH = {"Authorization": "Bearer tok"}


@pytest.fixture
def api(tmp_path):
    store = Store(tmp_path / "t.db")
    store.write([Sample(1000.0 + i, "app/red/web/fwd/bps", 10.0 * i) for i in range(6)])
    store.write([Sample(1000.0 + i, "link/s1-s2/s1>s2/util", 0.1) for i in range(6)])
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    return RestApi(core, "tok", store=store, metrics=Metrics(CollectorRegistry()),
                   wall_clock=lambda: 5000.0)  # the agent samples below are from t = 10-11 s


def call(app, path, method="GET", body=None, headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = json.dumps(body).encode() if not isinstance(body, bytes) else body
        req.content_type = "application/json"
    resp = req.get_response(app)
    return resp.status_int, (json.loads(resp.text) if resp.content_type == "application/json"
                             else resp.text)


def test_series_filters_and_resampling(api):
    _, body = call(api, "/api/v1/series?tenant=red&app=web&metric=bps")
    assert [s["name"] for s in body["series"]] == ["app/red/web/fwd/bps"]
    assert len(body["series"][0]["points"]) == 6
    _, body = call(api, "/api/v1/series?tenant=red&app=web&since=1002&until=1003")
    assert body["series"][0]["points"] == [[1002.0, 20.0], [1003.0, 30.0]]
    _, body = call(api, "/api/v1/series?series=app/red/web/fwd/bps&step=3")
    assert body["series"][0]["points"] == [[999.0, 5.0], [1002.0, 30.0], [1005.0, 50.0]]
    _, body = call(api, "/api/v1/series?kind=link")
    assert body["series"][0]["link"] == "s1-s2"
    _, body = call(api, "/api/v1/series?since=1970-01-01T00:16:43")
    assert body["since"] == 1003.0


@pytest.mark.parametrize("query,status,field", [
    ("tenant=nobody", 404, "tenant"),
    ("tenant=red&app=dns", 404, "app"),
    ("since=yesterday", 400, "since"),
    ("since=10&until=5", 400, "until"),
    ("step=0", 400, "step"),
    ("step=abc", 400, "step"),
    ("frobnicate=1", 400, "frobnicate"),
])
def test_series_bad_queries(api, query, status, field):
    code, body = call(api, f"/api/v1/series?{query}")
    assert code == status and body["field"] == field, body


def test_agent_samples_stored_once_and_acknowledged(api):
    batch = {"host": "h1", "samples": [{"seq": 1, "t": 10.0, "cpu": 0.25, "memory_bytes": 1000},
                                       {"seq": 2, "t": 11.0, "cpu": 0.5, "rx_bps": 8.0}]}
    code, body = call(api, "/api/v1/agents/samples", "POST", batch, AUTH)
    assert code == 200 and body == {"host": "h1", "acked": 2, "stored": 2}
    code, body = call(api, "/api/v1/agents/samples", "POST", batch, AUTH)
    assert body["acked"] == 2 and body["stored"] == 0 and body["dropped"] == 2
    assert "at or below 2" in body["dropped_because"]
    _, series = call(api, "/api/v1/series?tenant=red&metric=cpu")
    assert series["series"][0]["name"] == "host/red/h1/cpu"
    assert series["series"][0]["points"] == [[10.0, 0.25], [11.0, 0.5]]


@pytest.mark.parametrize("body,field", [
    ({"host": "h99", "samples": []}, "host"),
    ({"host": "h1", "samples": "x"}, "samples"),
    ({"host": "h1", "samples": [{"seq": 0, "t": 1.0}]}, "samples[0].seq"),
    ({"host": "h1", "samples": [{"seq": 1, "t": "now"}]}, "samples[0].t"),
    ({"host": "h1", "samples": [{"seq": 1, "t": 1.0, "cpu": -1}]}, "samples[0].cpu"),
    ({"host": "h1", "samples": [{"seq": 1, "t": 1.0, "gpu": 1}]}, "samples[0].gpu"),
    ({"host": "h1", "samples": [], "extra": 1}, "body"),
    (b"{not json", "body"),
])
def test_agent_samples_bad_input_changes_nothing(api, body, field):
    code, resp = call(api, "/api/v1/agents/samples", "POST", body, AUTH)
    assert 400 <= code < 500 and resp["field"] == field, resp
    assert api.store.agent_samples("h1") == []


def test_agent_samples_need_token(api):
    code, _ = call(api, "/api/v1/agents/samples", "POST", {"host": "h1", "samples": []})
    assert code == 401


def test_metrics_exposition(api):
    api.metrics.observe([Sample(1.0, "app/red/web/fwd/bps", 5e6), Sample(1.0, "link/s1-s2/s1>s2/util", None)])
    code, text = call(api, "/metrics")
    assert code == 200
    assert 'netshadow_app_bandwidth_bps{app="web",direction="fwd",tenant="red"} 5e+06' in text
    assert 'netshadow_link_utilisation{direction="s1>s2",link="s1-s2"} NaN' in text
    assert "netshadow_series_gaps_total 1.0" in text


def test_telemetry_disabled_without_store():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    code, body = call(RestApi(core, None), "/api/v1/series")
    assert code == 503 and body["field"] == "store"
