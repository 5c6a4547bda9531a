"""Scan history, pure parts: a posted scan is validated by name, stored and read back newest
first (and pruned with the telemetry), the REST endpoints answer and refuse, drift is dated from
its newest unbroken run, the suspect links are those only failing pairs cross, and the allocator
moves an application off them; the RTT history is the profiler's covariate per application."""

from __future__ import annotations

import json

import numpy as np
import pytest
from webob import Request

from controller.allocator import AllocatorState, allocate
from controller.core import ControllerCore
from controller.metrics import Metrics
from controller.plan import Allocation, Plan
from controller.rest import RestApi
from controller.scans import ScanError, ScanResult, parse_scans
from controller.store import Store
from models.series import SeriesKey
from planner.scans import drift, latest, rtt_covariate, suspect_links
from topologies import bundled, load_spec

SPEC = load_spec(bundled("default"))
NOW = 1_800_000_000.0


def row(src="h7", dst="h8", proto="tcp", port=873, expected=True, reachable=True, rtt=0.5):
    return {"src": src, "dst": dst, "proto": proto, "port": port, "expected": expected,
            "reachable": reachable, "rtt_ms": rtt}


def res(t, **kw) -> ScanResult:
    return parse_scans({"origin": "production", "t": t, "results": [row(**kw)]}, SPEC, NOW)[0]


@pytest.mark.parametrize("body, field", [
    ({"origin": "mars", "t": 1, "results": [row()]}, "origin"),
    ({"origin": "shadow", "t": NOW + 3600, "results": [row()]}, "t"),
    ({"origin": "shadow", "t": 1, "results": []}, "results"),
    ({"origin": "shadow", "t": 1, "results": [row(src="h99")]}, "results[0].src"),
    ({"origin": "shadow", "t": 1, "results": [row(proto="sctp")]}, "results[0].proto"),
    ({"origin": "shadow", "t": 1, "results": [row(proto="icmp", port=1)]}, "results[0].port"),
    ({"origin": "shadow", "t": 1, "results": [row(port=0)]}, "results[0].port"),
    ({"origin": "shadow", "t": 1, "results": [row(reachable=1)]}, "results[0].reachable"),
    ({"origin": "shadow", "t": 1, "results": [row(rtt=-1)]}, "results[0].rtt_ms"),
    ({"origin": "shadow", "t": 1, "results": [{**row(), "extra": 1}]}, "results[0].extra"),
    ({"origin": "shadow", "t": 1, "results": [row()], "more": 1}, "body"),
])
def test_a_bad_scan_is_refused_by_name(body, field):
    with pytest.raises(ScanError) as e:
        parse_scans(body, SPEC, NOW)
    assert e.value.field == field


def test_scans_are_stored_read_newest_first_and_pruned(tmp_path):
    st = Store(tmp_path / "s.db", retention_s=100)
    st.record_scans([res(NOW - 50), res(NOW - 10, reachable=False, rtt=None), res(NOW - 5, dst="h1",
                                                                                  expected=False,
                                                                                  reachable=False)])
    got = st.scans(src="h7", dst="h8")
    assert [r.t for r in got] == [NOW - 10, NOW - 50] and got[0].reachable is False
    assert ScanResult.from_dict(json.loads(json.dumps(got[0].to_dict()))) == got[0]
    st.prune(NOW + 93)  # keeps what is younger than 100 s then
    assert [r.t for r in st.scans()] == [NOW - 5]


def _api(tmp_path):
    store = Store(tmp_path / "s.db")
    core = ControllerCore(SPEC, NOW)
    return RestApi(core, "tok", store=store, metrics=Metrics(), wall_clock=lambda: NOW), store


def _call(api, method, path, body=None, token="tok"):
    req = Request.blank(path, method=method)
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    if token:
        req.headers["Authorization"] = f"Bearer {token}"
    resp = req.get_response(api)
    return resp.status_int, json.loads(resp.body)


def test_the_scans_endpoints_store_serve_and_refuse(tmp_path):
    api, _ = _api(tmp_path)
    body = {"origin": "production", "t": NOW - 1, "results": [row(), row(dst="h1", expected=False,
                                                                       reachable=True)]}
    assert _call(api, "POST", "/api/v1/scans", body, token=None)[0] == 401
    assert _call(api, "POST", "/api/v1/scans", {**body, "origin": "x"})[0] == 400
    assert _call(api, "POST", "/api/v1/scans", body) == (200, {"stored": 2})
    status, got = _call(api, "GET", "/api/v1/scans?src=h7")
    assert status == 200 and len(got["scans"]) == 2
    assert [(d["dst"], d["reachable"]) for d in got["drift"]] == [("h1", True)]  # a policy drift
    for q, code in (("limit=0", 400), ("src=zz", 404), ("until=1&since=2", 400), ("x=1", 400)):
        status, err = _call(api, "GET", f"/api/v1/scans?{q}")
        assert status == code and err["field"], (q, err)
    text = api.metrics.exposition().decode()
    assert 'netshadow_scan_conforms{dst="h1",origin="production",port="873",proto="tcp",src="h7"} 0.0' in text


def test_drift_is_dated_from_its_newest_unbroken_run():
    hist = [res(NOW - 30, reachable=False, rtt=None), res(NOW - 20), res(NOW - 10, reachable=False, rtt=None),
            res(NOW - 5, reachable=False, rtt=None)]
    (d,) = drift(hist)
    assert d.since == NOW - 10 and "topology drift" in d.text()
    assert drift(hist + [res(NOW - 1)]) == []
    assert len(latest(hist)) == 1


def test_suspect_links_are_the_ones_only_failing_pairs_cross():
    failing = [res(NOW, src="h7", dst="h8", reachable=False, rtt=None),  # s5-s1-s3
               res(NOW, src="h4", dst="h5", port=80, reachable=False, rtt=None)]  # s1-s3-s4
    answering = [res(NOW, src="h6", dst="h5", port=80),  # s3-s4
                 res(NOW, src="h1", dst="h2", port=80)]  # s1-s2-s4
    down = suspect_links(SPEC, failing + answering, None)
    assert down == {frozenset(("s1", "s3")), frozenset(("s1", "s5"))}
    # green's application on another path answers: the links of that path are cleared, not s1-s3
    moved = Plan("p", (Allocation("green", "backup", 1.0, path=("s5", "s2", "s4", "s3")),))
    ok = res(NOW, src="h7", dst="h8")
    assert frozenset(("s1", "s3")) in suspect_links(SPEC, failing[1:] + answering + [ok], moved)


def test_the_allocator_moves_an_application_off_a_link_the_scans_say_is_down():
    down = frozenset({frozenset(("s1", "s3")), frozenset(("s1", "s5"))})
    plan = allocate(SPEC, {("green", "metrics"): 5.0}, {("green", "metrics"): 5.0}, None, 0.0,
                    AllocatorState(), avoid=down)
    a = plan.allocation("green", "metrics")
    assert a.path == ("s5", "s2", "s4", "s3") and a.rate_mbps >= 5.0
    assert any("the scans say" in r for r in plan.reasons)
    # an application with clients on several switches cannot be moved: said, not hidden
    plan = allocate(SPEC, {("blue", "dns"): 2.0}, {}, None, 0.0, AllocatorState(),
                    avoid=frozenset({frozenset(("s3", "s4"))}))
    assert plan.allocation("blue", "dns").path is None
    assert any("no other path" in r for r in plan.reasons)


def test_the_rtt_covariate_is_per_application_held_between_scans_and_nan_elsewhere():
    keys = [SeriesKey("green", "backup"), SeriesKey("green", "metrics"), SeriesKey("red", "web"),
            SeriesKey("green", "h7", "cpu")]
    t0 = NOW - 100
    hist = [res(t0 + 1, rtt=2.0), res(t0 + 3, rtt=4.0),  # step 0: the backup port, twice
            res(t0 + 1, proto="icmp", port=None, rtt=1.0),  # metrics is UDP: ICMP stands in
            res(t0 + 41, rtt=8.0), res(t0 + 41, proto="icmp", port=None, rtt=3.0),
            res(t0 + 41, src="h1", dst="h2", port=80, reachable=False, rtt=None),  # no answer
            res(t0 + 92, rtt=6.0),  # this cycle's scan, after the last complete step: in it
            res(t0 + 99, rtt=50.0)]  # after the forecast's time: not counted
    cov = rtt_covariate(SPEC, keys, hist, t0, 8, 10.0, hold_steps=2, until=t0 + 95)
    v = cov.values
    assert cov.names == tuple(k.name for k in keys) and cov.step_s == 10.0
    assert list(v[:, 0]) == pytest.approx([3.0, 3.0, 3.0, np.nan, 8.0, 8.0, 8.0, 6.0], nan_ok=True)
    assert list(v[:, 1][:5]) == pytest.approx([1.0, 1.0, 1.0, np.nan, 3.0], nan_ok=True)
    assert np.isnan(v[:, 2]).all() and np.isnan(v[:, 3]).all()  # never answered; compute
    assert rtt_covariate(SPEC, keys, hist[5:6], t0, 8, 10.0, 2) is None  # nothing measured
