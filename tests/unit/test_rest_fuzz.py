"""Fuzzing the REST API with seeded, bounded malformed requests (see :mod:`tests.fuzz`).

In-process: 500 requests to every endpoint over a real SQLite store; after each one, no 5xx, a
strict-JSON body, a 4xx that names its field, and nothing stored by a request that was refused.
Then a real controller process (no switches needed) on loopback gets another 500 per endpoint
(another seed) and 200 malformed HTTP requests over raw sockets; it must answer JSON or close, never 5xx, stay
healthy, and log no traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import time

import pytest
from webob import Request

from controller.core import ControllerCore
from controller.rest import RestApi
from controller.store import Store
from emulation.controller_proc import ControllerProcess, free_port
from tests.fuzz import ENDPOINTS, raw_http, rest_requests
from tests.unit.test_hostile_input import RecordingEnforcer
from topologies import bundled, load_spec

TOKEN = "fuzz-token-0123456789"
PER_ENDPOINT = 500


def strict_json(text: str):
    def refuse(c):
        raise AssertionError(f"non-JSON constant {c} in a response")
    return json.loads(text, parse_constant=refuse)


def check_answer(status: int, content_type: str, text: str, req) -> dict | None:
    assert status < 500, (req, status, text[:300])
    if req.method in ("HEAD",):
        return None
    if content_type.startswith("text/plain") and req.path.startswith("/metrics") and status == 200:
        return None
    assert content_type.startswith("application/json"), (req, status, content_type, text[:200])
    body = strict_json(text)
    if status >= 400:
        assert isinstance(body, dict) and isinstance(body.get("error"), str), (req, body)
        assert isinstance(body.get("field"), str) and body["field"], (req, body)
        assert len(body["error"]) <= 600, (req, len(body["error"]))
    return body


def snapshot(db) -> tuple:
    c = sqlite3.connect(db)
    try:
        return tuple(c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("series", "points", "agent_samples", "agent_seq", "audit"))
    finally:
        c.close()


@pytest.fixture
def api(tmp_path):
    from prometheus_client import CollectorRegistry

    from controller.metrics import Metrics

    store = Store(tmp_path / "fuzz.db")
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    return RestApi(core, TOKEN, store=store, metrics=Metrics(CollectorRegistry()),
                   enforcer=RecordingEnforcer(), resync=lambda dpid: dpid == 1)


def test_500_malformed_requests_per_endpoint_in_process(api, tmp_path):
    cases = rest_requests(seed=20261202, per_endpoint=PER_ENDPOINT, token=TOKEN)
    assert len(cases) == PER_ENDPOINT * len(ENDPOINTS)
    statuses: dict[int, int] = {}
    for req in cases:
        before, applied = snapshot(tmp_path / "fuzz.db"), len(api.enforcer.applied)
        r = Request.blank(req.path, method=req.method, headers=dict(req.headers))
        if req.body is not None:
            r.body = req.body
        resp = r.get_response(api)
        statuses[resp.status_int] = statuses.get(resp.status_int, 0) + 1
        check_answer(resp.status_int, resp.content_type or "", resp.text if resp.body else "{}", req)
        if resp.status_int >= 400:
            assert snapshot(tmp_path / "fuzz.db") == before, req
            assert len(api.enforcer.applied) == applied, req
    assert sum(n for s, n in statuses.items() if s >= 400) > 0.6 * len(cases), statuses
    health = Request.blank("/api/v1/health").get_response(api)
    assert health.status_int == 200


def _send(port: int, data: bytes) -> bytes:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # the server sees the end of the request
        except OSError:
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def test_a_live_controller_survives_malformed_requests_and_raw_http(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    log = tmp_path / "controller.log"
    ctl = ControllerProcess(bundled("default"), free_port(), free_port(), log_path=log,
                            db_path=tmp_path / "live.db", extra_args=["--token-file", str(token_file)])
    with ctl:
        cases = rest_requests(seed=7, per_endpoint=PER_ENDPOINT, token=TOKEN)
        conn = http.client.HTTPConnection("127.0.0.1", ctl.rest_port, timeout=30)
        for req in cases:
            try:
                conn.request(req.method, req.path, body=req.body,
                             headers={k: v.encode("utf-8", "surrogatepass") for k, v in req.headers})
                resp = conn.getresponse()
                text = resp.read().decode("utf-8")
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", ctl.rest_port, timeout=30)
                continue
            check_answer(resp.status, resp.getheader("Content-Type", ""), text or "{}", req)
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", ctl.rest_port, timeout=30)
        conn.close()
        t0 = time.monotonic()
        for data in raw_http(seed=11, count=200, port=ctl.rest_port):
            answer = _send(ctl.rest_port, data)
            if not answer:
                continue  # closed without an answer: fine for a request that never completed
            head, _, body = answer.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            assert status < 500, (data[:80], head)
            if body:
                doc = strict_json(body.decode("utf-8"))
                if status >= 400:
                    assert doc.get("field"), (data[:80], doc)
        assert time.monotonic() - t0 < 120  # nothing hung: each connection ended by itself
        assert ctl.health()["status"] in ("starting", "ok")
        assert ctl.proc.poll() is None
    text = log.read_text()
    assert "Traceback" not in text and " ERROR " not in text, text[-2000:]
