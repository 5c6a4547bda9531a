"""REST API under load: 50 concurrent clients on 127.0.0.1 against the controller's API served by
waitress (what the controller runs) and, as the baseline in the same run, by the standard
library's threaded development server (what it ran before: ``wsgiref`` with a listen backlog of
5). Bounded: ``--seconds`` per server (default 10; at most 30).

    .venv/bin/python benchmarks/rest_load.py [--clients 50] [--seconds 10]

Each server runs in a child process over the same app and the same store: the default spec's
telemetry layout with one minute of one-second points in every series (what the poller writes
for it). Every client opens a new connection per request (as curl or a Prometheus scrape does),
alternating ``GET /api/v1/health`` and a one-minute ``GET /api/v1/series?kind=link`` query.
Reported per server: requests, connect failures (refused or not accepted within 5 s), other
errors, and p50/p99 latency of each request kind.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def fill_store(path: Path, now: float) -> int:
    """One minute of points for every series the poller writes for the default spec."""
    from controller.store import Store
    from controller.telemetry.samples import Sample, app_series, link_series, switch_series
    from topologies import bundled, load_spec

    spec = load_spec(bundled("default"))
    names = [link_series(lk.a, lk.b, a, b, m) for lk in spec.links for a, b in ((lk.a, lk.b), (lk.b, lk.a))
             for m in ("bps", "util")]
    names += [app_series(t.id, a.name, d, m) for t in spec.tenants for a in t.applications
              for d in ("fwd", "rev") for m in ("bps", "pps")]
    names += [switch_series(s.name, m) for s in spec.switches for m in ("rx_bps", "tx_bps", "flows")]
    store = Store(path)
    store.write([Sample(now - 60 + i, n, float(i)) for n in names for i in range(60)])
    store.close()
    return len(names)


def serve(kind: str, port: int, db: str) -> None:
    """Child process: the REST app over ``db`` on 127.0.0.1:``port``."""
    from controller.core import ControllerCore
    from controller.rest import RestApi
    from controller.store import Store
    from topologies import bundled, load_spec

    app = RestApi(ControllerCore(load_spec(bundled("default")), now=0.0), "t", store=Store(db))
    if kind == "waitress":
        from controller.rest import serve as serve_api

        serve_api(app, "127.0.0.1", port)
    else:
        import socketserver
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class Server(socketserver.ThreadingMixIn, WSGIServer):
            daemon_threads = True
            allow_reuse_address = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, *a):
                pass

        server = make_server("127.0.0.1", port, app, server_class=Server, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()  # until the parent closes it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, clients: int, seconds: float, since: float) -> dict:
    lat: dict[str, list[float]] = {"health": [], "series": []}
    counts = {"requests": 0, "connect_failures": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    paths = {"health": "/api/v1/health", "series": f"/api/v1/series?kind=link&since={since:.0f}"}

    def client(i: int) -> None:
        kind = "health" if i % 2 else "series"
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.connect()
            except OSError:
                with lock:
                    counts["connect_failures"] += 1
                conn.close()
                continue
            try:
                conn.request("GET", paths[kind])
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
            finally:
                conn.close()
            dt = time.perf_counter() - t0
            with lock:
                counts["requests"] += 1
                if ok:
                    lat[kind].append(dt)
                else:
                    counts["errors"] += 1
            kind = "series" if kind == "health" else "health"

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def pct(xs, q):
        return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) >= 2 else float("nan")
    return {**counts, **{f"{k}_p{q}_ms": pct(v, q) for k, v in lat.items() for q in (50, 99)},
            "per_second": counts["requests"] / seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve, a.port, a.db)
        return 0
    if not 1 <= a.clients <= 200 or not 1 <= a.seconds <= 30:
        ap.error("--clients must be 1-200 and --seconds 1-30 (a bounded load)")
    now = time.time()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "load.db"
        n = fill_store(db, now)
        print(f"store: {n} series x 60 one-second points; {a.clients} clients, {a.seconds:g} s per server, "
              "a new connection per request\n")
        rows = {}
        for kind in ("waitress", "stdlib"):
            port = free_port()
            child = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), "--db",
                                      str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert child.stdout.readline().strip() == "ready"
                rows[kind] = load(port, a.clients, a.seconds, now - 60)
            finally:
                child.stdin.close()
                child.wait(timeout=10)
        cols = ["requests", "per_second", "connect_failures", "errors", "health_p50_ms", "health_p99_ms",
                "series_p50_ms", "series_p99_ms"]
        print(f"{'server':10}" + "".join(f"{c:>18}" for c in cols))
        for kind, r in rows.items():
            print(f"{kind:10}" + "".join(f"{r[c]:>18.1f}" if isinstance(r[c], float) else f"{r[c]:>18}"
                                          for c in cols))
        w, s = rows["waitress"], rows["stdlib"]
        print(f"\nwaitress / stdlib: throughput {w['per_second'] / max(s['per_second'], 1e-9):.2f}x, "
              f"health p99 {w['health_p99_ms'] / s['health_p99_ms']:.2f}x, "
              f"series p99 {w['series_p99_ms'] / s['series_p99_ms']:.2f}x")
        return 0 if w["connect_failures"] == 0 and w["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
