"""The host agent against a live REST server and a real store: spooling while the controller is
down, ordered delivery afterwards, and a restarted agent resending without duplicates."""

from __future__ import annotations

import os

from controller.core import ControllerCore
from controller.rest import RestApi, serve
from controller.store import Store
from netshadow.agent import Agent, HostReader, Spool
from topologies import bundled, load_spec


def make_server(tmp_path, port=0):
    store = Store(tmp_path / "ctl.db")
    core = ControllerCore(load_spec(bundled("default")), now=0.0)
    server, thread = serve(RestApi(core, "tok", store=store), "127.0.0.1", port)
    return server, store


def test_reader_measures_own_namespace():
    r = HostReader()
    assert r.cpu_seconds() > 0
    assert r.memory_bytes() > 0
    rx, tx = r.net_bytes()
    assert rx >= 0 and tx >= 0
    assert os.getpid() in r._namespace_pids()


def test_spool_drains_in_order_and_survives_restart(tmp_path):
    server, store = make_server(tmp_path)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()  # the controller is down
    spool = Spool(tmp_path / "h1.db")
    agent = Agent(f"http://127.0.0.1:{port}", "h1", spool, HostReader(), token="tok")
    agent.read()
    for _ in range(5):
        spool.append(agent.read())
        assert agent.send_pending() == 0
    assert len(spool) == 5
    spool.close()

    # the agent restarts with the same spool, and the controller comes back on the same port
    server, store2 = make_server(tmp_path, port)
    try:
        spool = Spool(tmp_path / "h1.db")
        agent = Agent(f"http://127.0.0.1:{port}", "h1", spool, HostReader(), token="tok", batch=2)
        assert agent.send_pending() == 5
        assert len(spool) == 0
        # a resend of already acknowledged readings (lost ack) is not stored again
        spool.db.execute("INSERT INTO spool (seq, payload) VALUES (3, '{\"t\": 1.0, \"cpu\": 0.1}')")
        agent.send_pending()
        assert [q for q, _ in store2.agent_samples("h1")] == [1, 2, 3, 4, 5]
        agent.read()  # baseline of the restarted agent
        spool.append(agent.read())
        agent.send_pending()
        assert [q for q, _ in store2.agent_samples("h1")] == [1, 2, 3, 4, 5, 6]
    finally:
        server.shutdown()
        server.server_close()
