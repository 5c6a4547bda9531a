"""The API's server (waitress) on loopback: slow or idle clients hold no worker thread, idle
connections are closed, protocol errors are JSON, and many concurrent connects are accepted."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import requests

from controller.core import ControllerCore
from controller.rest import RestApi, RestServer
from tests.waiting import wait_for
from topologies import bundled, load_spec


@pytest.fixture
def server():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    srv = RestServer(RestApi(core, "tok"), "127.0.0.1", 0, threads=4, channel_timeout_s=2.0).start()
    try:
        yield srv
    finally:
        srv.shutdown()


def health(srv) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{srv.port}/api/v1/health", timeout=5)


def test_300_half_sent_requests_hold_no_thread_and_are_closed(server):
    threads_before = threading.active_count()
    socks = []
    try:
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            s.sendall(b"POST /api/v1/agents/samples HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            socks.append(s)
        assert health(server).status_code == 200  # answered while 300 requests hang
        assert threading.active_count() <= threads_before + 1
        # the idle, never-completed requests are closed by the server after the channel timeout
        s = socks[0]
        s.settimeout(30)
        assert wait_for(lambda: s.recv(1024) == b"", 30, "the server closing an idle connection")
    finally:
        for s in socks:
            s.close()


def test_http_0_9_and_oversized_headers_get_an_answer_not_a_hang(server):
    big = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"
    for data, status in ((b"GET /api/v1/health\r\n\r\n", 200), (big, 431)):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            try:
                s.sendall(data)
            except OSError:
                pass
            answer = b""
            while True:  # both answers close the connection
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except ConnectionResetError:
            pass
        finally:
            s.close()
        head = answer.split(b"\r\n", 1)[0]
        assert int(head.split()[1]) == status, answer[:200]
        if status != 200:
            assert b"application/json" in answer
            body = answer.split(b"\r\n\r\n", 1)[1]
            assert json.loads(body)["field"] == "headers"


def test_50_concurrent_connects_are_all_accepted(server):
    failures, done = [], []

    def client():
        try:
            r = health(server)
            done.append(r.status_code)
        except requests.RequestException as e:
            failures.append(e)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and done == [200] * 50


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_a_server_whose_wake_up_pipe_is_gone_still_answers_and_stops(server):
    trigger = server._server.trigger
    trigger.pull_trigger(trigger.close)  # closed in the event loop's own thread
    wait_for(lambda: trigger._closed, 10, "the wake-up pipe to be closed")
    assert health(server).status_code == 200
    server.shutdown()
    assert not server._thread.is_alive()
    assert refused(server.port)


def test_a_server_never_started_shuts_down_and_frees_the_port():
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    srv = RestServer(RestApi(core, "tok"), "127.0.0.1", 0, threads=1)
    srv.shutdown()
    assert refused(srv.port)


def test_shutdown_frees_the_port(server):
    server.shutdown()
    wait_for(lambda: refused(server.port), 10, "the port to stop accepting after shutdown")
