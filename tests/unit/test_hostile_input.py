"""Regression tests for hostile input to the REST API, the store and plans: each one a defect
found by feeding the controller malformed requests. Called in-process over a real SQLite store."""

from __future__ import annotations

import io
import json
import sqlite3

import pytest
from webob import Request

from controller.core import ControllerCore
from controller.plan import PlanError, load_plan, parse_plan
from controller.rest import RestApi
from controller.store import Store
from controller.telemetry.samples import Sample
from topologies import bundled, jsonio, load_spec

AUTH = {"Authorization": "Bearer tok"}
NOW = 1_800_000_000.0


class RecordingEnforcer:
    """Stands in for the OpenFlow side of plan enforcement: records what reached it."""

    def __init__(self):
        self.applied = []

    def apply(self, plan, actor, dry_run=False, watch_s=0.0):
        self.applied.append(plan)
        return {"plan": plan.name, "dry_run": dry_run, "diff": {}, "outcome": "dry run"}

    def audit(self, limit=100):
        return [{"plan": p.to_dict()} for p in self.applied[:limit]]


@pytest.fixture
def api(tmp_path):
    store = Store(tmp_path / "t.db")
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    return RestApi(core, "tok", store=store, wall_clock=lambda: NOW, enforcer=RecordingEnforcer())


def call(app, path, method="GET", body=None, headers=None):
    req = Request.blank(path, method=method, headers=headers or {})
    if body is not None:
        req.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        req.content_type = "application/json"
    resp = req.get_response(app)
    assert resp.content_type == "application/json", resp.text[:200]
    return resp.status_int, json.loads(resp.text, parse_constant=lambda c: pytest.fail(c))


def post_samples(api, host, samples):
    return call(api, "/api/v1/agents/samples", "POST", {"host": host, "samples": samples}, AUTH)


# ---------------------------------------------------------------------- 1. store transactions
def test_failed_insert_does_not_hand_its_series_id_to_another_host(api):
    code, body = post_samples(api, "h1", [{"seq": 2**63, "t": NOW, "cpu": 0.9}])
    assert code == 400 and body["field"] == "samples[0].seq"
    assert post_samples(api, "h4", [{"seq": 1, "t": NOW, "cpu": 0.2}])[0] == 200
    assert post_samples(api, "h1", [{"seq": 1, "t": NOW + 1, "cpu": 0.9}])[0] == 200
    _, got = call(api, "/api/v1/series?kind=host")
    points = {s["name"]: s["points"] for s in got["series"]}
    assert points == {"host/blue/h4/cpu": [[NOW, 0.2]], "host/red/h1/cpu": [[NOW + 1, 0.9]]}


def test_store_rollback_leaves_the_id_cache_as_it_was(tmp_path):
    store = Store(tmp_path / "s.db")
    with pytest.raises(OverflowError):  # SQLite's INTEGER cannot hold it: the transaction fails
        store.ingest_agent("h1", [(2**63, NOW, [Sample(NOW, "host/red/h1/cpu", 0.9)])], NOW)
    assert store._ids == {} and store.series_names() == []
    store.write([Sample(NOW, "host/blue/h4/cpu", 0.2)])
    store.write([Sample(NOW, "host/red/h1/cpu", 0.9)])
    got = store.query(["host/blue/h4/cpu", "host/red/h1/cpu"])
    assert got == {"host/blue/h4/cpu": [(NOW, 0.2)], "host/red/h1/cpu": [(NOW, 0.9)]}
    with pytest.raises(sqlite3.Error):
        store.write([Sample(NOW, "host/red/h2/cpu", 0.1), Sample(None, "host/red/h2/cpu", 0.1)])
    store.write([Sample(NOW, "host/red/h3/cpu", 0.3)])
    assert store.query(["host/red/h3/cpu"])["host/red/h3/cpu"] == [(NOW, 0.3)]
    assert store.query(["host/red/h2/cpu"])["host/red/h2/cpu"] == []


# ---------------------------------------------------------------------- 2. authentication
@pytest.mark.parametrize("value", ["Bearer \u2603", "Bearer t\u00f6k", "Bearer " + "x" * 5000, "\u2603"])
def test_any_wrong_token_is_a_401_not_a_500(api, value):
    req = Request.blank("/api/v1/plans?dry_run=1", method="POST")
    req.environ["HTTP_AUTHORIZATION"] = value.encode("utf-8").decode("latin-1")  # as WSGI gives it
    req.body = b"{}"
    resp = req.get_response(api)
    assert resp.status_int == 401 and resp.json["field"] == "Authorization"
    assert api.enforcer.applied == []


# ---------------------------------------------------------------------- 3. non-finite numbers
@pytest.mark.parametrize("since", ["nan", "inf", "-inf", "1e400", "-5", "9e12", "NaN"])
def test_non_finite_or_absurd_times_are_refused(api, since):
    code, body = call(api, f"/api/v1/series?since={since}")
    assert code == 400 and body["field"] == "since"


@pytest.mark.parametrize("raw", [
    b'{"host":"h1","samples":[{"seq":1,"t":1800000000,"cpu":Infinity}]}',
    b'{"host":"h1","samples":[{"seq":1,"t":1800000000,"cpu":NaN}]}',
    b'{"host":"h1","samples":[{"seq":1,"t":1800000000,"cpu":1e400}]}',
    b'{"host":"h1","samples":[{"seq":1,"t":-Infinity,"cpu":1}]}',
])
def test_non_finite_agent_values_are_refused_and_nothing_stored(api, raw):
    code, body = call(api, "/api/v1/agents/samples", "POST", raw, AUTH)
    assert code == 400 and body["field"] == "body"
    assert api.store.series_names() == [] and api.store.agent_samples("h1") == []


def test_dry_run_plan_with_nan_never_reaches_the_audit_log(api):
    code, body = call(api, "/api/v1/plans?dry_run=1", "POST", b'{"name":"p","valid_from":NaN}', AUTH)
    assert code == 400 and body["field"] == "body" and api.enforcer.applied == []
    with pytest.raises(ValueError):
        jsonio.dumps({"x": float("nan")})


# ---------------------------------------------------------------------- 4. exactly once
def test_duplicate_seq_inside_one_batch_is_refused(api):
    code, body = post_samples(api, "h1", [{"seq": 100, "t": NOW, "cpu": 0.1},
                                          {"seq": 100, "t": NOW, "cpu": 0.1}])
    assert code == 400 and body["field"] == "samples[1].seq"
    assert api.store.agent_samples("h1") == []


def test_store_keeps_one_reading_per_seq_even_if_the_caller_repeats_it(tmp_path):
    store = Store(tmp_path / "s.db")
    s = [Sample(NOW, "host/red/h1/cpu", 0.1)]
    assert store.ingest_agent("h1", [(7, NOW, s), (7, NOW, s)], NOW) == (7, 1)
    assert store.agent_samples("h1") == [(7, NOW)]


def test_late_readings_are_acknowledged_and_the_answer_says_they_were_dropped(api):
    assert post_samples(api, "h1", [{"seq": 5, "t": NOW, "cpu": 0.1}])[1]["stored"] == 1
    code, body = post_samples(api, "h1", [{"seq": 3, "t": NOW - 2, "cpu": 0.1},
                                          {"seq": 6, "t": NOW + 1, "cpu": 0.2}])
    assert code == 200 and body["acked"] == 6 and body["stored"] == 1 and body["dropped"] == 1
    assert "at or below 5" in body["dropped_because"]


# ---------------------------------------------------------------------- 6. malformed input
@pytest.mark.parametrize("raw,field", [
    (b"[" * 1000 + b"]" * 1000, "body"),
    (b'{"a":' * 5000 + b"1" + b"}" * 5000, "body"),
    (b"\xff\xfe{}", "body"),
    (b'{"name": 1' + b"0" * 5000 + b"}", "body"),
    (b"null", "plan"),
    (b'{"allocations": 5}', "allocations"),
    (b'{"allocations": {}}', "allocations"),
    (b'{"reasons": 5}', "reasons"),
    (b'{"reasons": "abc"}', "reasons"),
    (b'{"extra_policies": 5}', "extra_policies"),
    (b'{"extra_policies": [5]}', "extra_policies[0]"),
    (b'{"cpu_quotas": [1, 2]}', "cpu_quotas"),
    (b'{"valid_from": "x"}', "valid_from"),
    (b'{"valid_from": "tomorrow"}', "valid_from"),
    (b'{"valid_until": -1}', "valid_until"),
    (b'{"allocations": [{"tenant": ["red"], "app": "video", "rate_mbps": 5}]}', "allocations[0].tenant"),
    (b'{"allocations": [{"tenant": "red", "app": ["video"], "rate_mbps": 5}]}', "allocations[0].app"),
    (b'{"allocations": [{"tenant": "red", "app": "video", "rate_mbps": 1e-300}]}',
     "allocations[0].rate_mbps"),
    (b'{"allocations": [{"tenant": {}, "app": "video", "rate_mbps": 5}]}', "allocations[0].tenant"),
    (b'{"name": "' + b"n" * 10_000 + b'"}', "name"),
    (b'{"reasons": ["' + b"r" * 10_000 + b'"]}', "reasons[0]"),
])
def test_malformed_plans_get_a_4xx_naming_the_field(api, raw, field):
    code, body = call(api, "/api/v1/plans?dry_run=1", "POST", raw, AUTH)
    assert 400 <= code < 500 and body["field"] == field, body
    assert len(body["error"]) < 400
    assert api.enforcer.applied == []


@pytest.mark.parametrize("query,field", [
    ("since=%ff", "query"), ("tenant=%c3%28", "query"), ("step=%80", "query"),
    ("since=1&since=2", "since"), ("step=nan", "step"), ("step=inf", "step"),
])
def test_malformed_queries_get_a_4xx_naming_the_field(api, query, field):
    code, body = call(api, f"/api/v1/series?{query}")
    assert 400 <= code < 500 and body["field"] == field, body


def test_a_body_shorter_than_its_content_length_is_a_400(api):
    req = Request.blank("/api/v1/agents/samples", method="POST", headers=AUTH)
    req.environ["wsgi.input"] = io.BytesIO(b'{"host": "h1", "samples": []}')
    req.environ["CONTENT_LENGTH"] = "500"
    resp = req.get_response(api)
    assert resp.status_int == 400 and resp.json["field"] == "body"


# ---------------------------------------------------------------------- 8. plans that cannot be right
SPEC = load_spec(bundled("default"))


def test_allocations_beyond_a_hosts_access_link_are_refused():
    red = SPEC.tenant("red")
    client = next(p.sources[0] for p in red.policies)
    link = SPEC.host(client).link_mbps
    apps = sorted({a for p in red.policies if client in p.sources for a in p.apps})
    assert len(apps) >= 2, apps
    each = link * 0.6  # each fits alone, together they do not
    plan = {"allocations": [{"tenant": "red", "app": a, "rate_mbps": each} for a in apps[:2]]}
    with pytest.raises(PlanError) as e:
        parse_plan(plan, SPEC)
    assert e.value.field == "allocations[1].rate_mbps" and client in str(e.value)
    ok = {"allocations": [{"tenant": "red", "app": a, "rate_mbps": link * 0.4} for a in apps[:2]]}
    assert parse_plan(ok, SPEC).cost_mbps() == pytest.approx(link * 0.8)


@pytest.mark.parametrize("plan,field", [
    ({"extra_policies": [{"tenant": "red", "from": ["h1"], "to": ["h2"], "apps": ["video"],
                          "ports": [22]}]}, "extra_policies[0].ports"),
    ({"valid_from": float("nan")}, "valid_from"),
    ({"valid_from": float("inf")}, "valid_from"),
    ({"cpu_quotas": {"h1": float("nan")}}, "cpu_quotas.h1"),
])
def test_values_that_cannot_be_right_are_refused(plan, field):
    with pytest.raises(PlanError) as e:
        parse_plan(plan, SPEC)
    assert e.value.field == field


def test_plan_file_with_nan_names_the_file(tmp_path):
    p = tmp_path / "p.json"
    p.write_text('{"name": "x", "valid_from": NaN}')
    with pytest.raises(PlanError) as e:
        load_plan(str(p), SPEC)
    assert str(p) in str(e.value) and "NaN" in str(e.value)


def test_error_messages_do_not_echo_huge_values():
    with pytest.raises(PlanError) as e:
        parse_plan({"name": "n" * 20_000}, SPEC)
    assert len(str(e.value)) < 300


# ---------------------------------------------------------------------- 9. agent timestamps
def test_agent_points_from_the_future_are_refused(api):
    code, body = post_samples(api, "h1", [{"seq": 1, "t": NOW + 30 * 365 * 86400, "cpu": 0.5}])
    assert code == 400 and body["field"] == "samples[0].t" and "clock" in body["error"]
    assert api.store.agent_samples("h1") == []


def test_agent_points_older_than_the_retention_are_acknowledged_not_kept(api):
    code, body = post_samples(api, "h1", [{"seq": 1, "t": NOW - 30 * 86400, "cpu": 0.5},
                                          {"seq": 2, "t": NOW, "cpu": 0.4}])
    assert code == 200 and body["acked"] == 2 and body["stored"] == 1 and body["dropped"] == 1
    assert "retention" in body["dropped_because"]
    assert api.store.query(["host/red/h1/cpu"])["host/red/h1/cpu"] == [(NOW, 0.4)]


def test_the_audit_log_is_bounded(tmp_path, monkeypatch):
    import controller.store as store_mod

    monkeypatch.setattr(store_mod, "MAX_AUDIT_ENTRIES", 5)
    store = Store(tmp_path / "a.db")
    for i in range(8):
        store.record_audit(NOW + i, "api", "dry_run", {"name": f"p{i}"}, {}, "dry run")
    store.prune(NOW)
    assert [e["plan"]["name"] for e in store.audit(100)] == ["p7", "p6", "p5", "p4", "p3"]


def test_too_many_policy_additions_are_refused():
    extra = [{"tenant": "red", "from": ["h1"], "to": ["h2"], "apps": ["web"]}] * 101
    with pytest.raises(PlanError) as e:
        parse_plan({"extra_policies": extra}, SPEC)
    assert e.value.field == "extra_policies"


def test_a_series_query_stops_reading_at_the_point_limit(tmp_path, monkeypatch):
    import controller.rest as rest_mod
    from controller.store import TooManyPoints

    store = Store(tmp_path / "q.db")
    store.write([Sample(NOW + i, "host/red/h1/cpu", 0.1) for i in range(50)])
    with pytest.raises(TooManyPoints):
        store.query(["host/red/h1/cpu"], max_points=10)
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    api = RestApi(core, "tok", store=store, wall_clock=lambda: NOW)
    monkeypatch.setattr(rest_mod, "MAX_POINTS", 10)
    code, body = call(api, "/api/v1/series?kind=host")
    assert code == 400 and body["field"] == "step"
    monkeypatch.setattr(rest_mod, "MAX_POINTS", 50)
    assert call(api, "/api/v1/series?kind=host")[0] == 200


@pytest.mark.parametrize("raw,field", [
    (b'{"host": "h1", "host": "h4", "samples": []}', "body"),
    (b'{"name": "p", "allocations": [{"tenant": "red", "tenant": "blue", "app": "dns", "rate_mbps": 1}]}',
     "body"),
])
def test_a_key_given_twice_is_refused_not_silently_the_last(api, raw, field):
    path = "/api/v1/agents/samples" if b"host" in raw else "/api/v1/plans?dry_run=1"
    code, body = call(api, path, "POST", raw, AUTH)
    assert code == 400 and body["field"] == field and "duplicate key" in body["error"]
    assert api.store.series_names() == [] and api.enforcer.applied == []


def test_a_burst_below_one_kbit_is_refused():
    with pytest.raises(PlanError) as e:
        parse_plan({"allocations": [{"tenant": "red", "app": "video", "rate_mbps": 5,
                                     "burst_kbit": 1e-300}]}, SPEC)
    assert e.value.field == "allocations[0].burst_kbit"
