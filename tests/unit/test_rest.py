"""The REST WSGI app, called in-process with WebOb requests (the live server is covered by the
integration tests)."""

from __future__ import annotations

import json

import pytest
from webob import Request

from controller.core import ControllerCore
from controller.rest import RestApi, load_token
from topologies import bundled, load_spec


@pytest.fixture
def api():
    spec = load_spec(bundled("default"))
    core = ControllerCore(spec, now=0.0)
    resynced = []

    def resync(dpid):
        resynced.append(dpid)
        return dpid == 1

    app = RestApi(core, token="s3cret", resync=resync, clock=lambda: 5.0)
    app.resynced = resynced
    return app


def call(app, path, method="GET", headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    resp = req.get_response(app)
    assert resp.content_type == "application/json"
    return resp.status_int, json.loads(resp.text)


def test_health(api):
    status, body = call(api, "/api/v1/health")
    assert status == 200 and body["status"] == "starting" and body["uptime_s"] == 5.0
    assert set(body["switches"]) == {"s1", "s2", "s3", "s4", "s5"}


def test_topology_and_tenants(api):
    _, topo = call(api, "/api/v1/topology")
    assert len(topo["links"]) == 6 and topo["links"][0]["a_port"] >= 1
    h1 = next(h for h in topo["hosts"] if h["name"] == "h1")
    assert h1["tenant"] == "red" and h1["port"] == 1
    _, ten = call(api, "/api/v1/tenants")
    assert [t["id"] for t in ten["tenants"]] == ["red", "blue", "green"]


def test_flows_filters(api):
    _, all_flows = call(api, "/api/v1/flows")
    _, s1 = call(api, "/api/v1/flows?switch=s1")
    _, red = call(api, "/api/v1/flows?tenant=red")
    assert 0 < s1["count"] < all_flows["count"]
    assert {f["switch"] for f in s1["flows"]} == {"s1"}
    assert {f["tenant"] for f in red["flows"]} == {"red"}
    assert all(f["cookie"].startswith("0x6e") for f in all_flows["flows"])


@pytest.mark.parametrize("path,status,field", [
    ("/api/v1/flows?switch=s99", 404, "switch"),
    ("/api/v1/flows?tenant=nobody", 404, "tenant"),
    ("/api/v1/flows?colour=red", 400, "colour"),
    ("/api/v1/nothing", 404, "path"),
])
def test_bad_requests_get_4xx_naming_field(api, path, status, field):
    code, body = call(api, path)
    assert code == status and body["field"] == field and body["error"]


def test_wrong_method(api):
    code, body = call(api, "/api/v1/health", method="DELETE")
    assert code == 405 and body["field"] == "method"


def test_mutations_need_the_token(api):
    url = "/api/v1/switches/s1/resync"
    assert call(api, url, "POST")[0] == 401
    assert call(api, url, "POST", {"Authorization": "Bearer wrong"})[0] == 401
    assert api.resynced == []
    code, body = call(api, url, "POST", {"Authorization": "Bearer s3cret"})
    assert code == 200 and body == {"switch": "s1", "resync": "sent"} and api.resynced == [1]
    code, body = call(api, "/api/v1/switches/s2/resync", "POST", {"Authorization": "Bearer s3cret"})
    assert code == 409 and body["field"] == "name"
    assert call(api, "/api/v1/switches/zz/resync", "POST", {"Authorization": "Bearer s3cret"})[0] == 404


def test_mutations_refused_without_configured_token():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    app = RestApi(core, token=None, resync=lambda d: True)
    code, body = call(app, "/api/v1/switches/s1/resync", "POST", {"Authorization": "Bearer x"})
    assert code == 403 and "no API token" in body["error"]


def test_internal_error_is_json_without_traceback(api, caplog):
    api.core.health = lambda now: 1 / 0
    code, body = call(api, "/api/v1/health")
    assert code == 500 and "Traceback" not in json.dumps(body)
    assert "ZeroDivisionError" in caplog.text


def test_openapi_describes_every_endpoint(api):
    _, doc = call(api, "/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.")
    for ep in api.endpoints:
        assert ep.method.lower() in doc["paths"][ep.path]
    assert doc["paths"]["/api/v1/switches/{name}/resync"]["post"]["security"] == [{"bearer": []}]


def test_load_token(tmp_path, monkeypatch):
    monkeypatch.delenv("NETSHADOW_API_TOKEN", raising=False)
    monkeypatch.delenv("NETSHADOW_API_TOKEN_FILE", raising=False)
    assert load_token() is None
    monkeypatch.setenv("NETSHADOW_API_TOKEN", "abc")
    assert load_token() == "abc"
    f = tmp_path / "tok"
    f.write_text("fromfile\n")
    assert load_token(str(f)) == "fromfile"
    f.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_token(str(f))
