"""The controller's REST API: a WSGI application (WebOb + Routes) served from a thread.

Every response is JSON. Client mistakes get a 4xx whose body is ``{"error": ..., "field": ...}``;
an unexpected exception is logged with its traceback and answered with a JSON 500 that carries no
traceback. Mutating endpoints need ``Authorization: Bearer <token>``; the token comes from a file
or the ``NETSHADOW_API_TOKEN`` environment variable (see :func:`load_token`). Without a token
configured, mutating endpoints refuse every request (403) rather than run unauthenticated.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import os
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from routes import Mapper
from webob import Request, Response

from topologies import wire

from .cookies import Cookie
from .core import ControllerCore
from .telemetry.samples import Sample, host_series, parse_series

LOG = logging.getLogger("netshadow.rest")
API = "/api/v1"


class ApiError(Exception):
    """A client error: HTTP ``status``, a message, and the request field it concerns."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def load_token(path: str | None = None) -> str | None:
    """The API token: from ``path`` if given, else ``$NETSHADOW_API_TOKEN_FILE``, else
    ``$NETSHADOW_API_TOKEN``; ``None`` when none is configured."""
    path = path or os.environ.get("NETSHADOW_API_TOKEN_FILE")
    if path:
        token = Path(path).read_text().strip()
        if not token:
            raise ValueError(f"token file: {path} is empty")
        return token
    return os.environ.get("NETSHADOW_API_TOKEN") or None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Callable[[Request, dict], Any]
    mutating: bool = False
    params: tuple[tuple[str, str], ...] = ()


AGENT_METRICS = ("cpu", "memory_bytes", "rx_bps", "tx_bps", "cpu_quota")
MAX_AGENT_BATCH = 10000
MAX_POINTS = 200_000


def _parse_time(fld: str, text: str) -> float:
    """Seconds since the epoch, or an ISO 8601 time (UTC when it has no offset)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{fld}: not a time (epoch seconds or ISO 8601): {text!r}", fld) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class RestApi:
    """WSGI app over a :class:`ControllerCore`. ``resync`` re-programs a switch (by dpid);
    ``store`` and ``metrics`` enable the telemetry endpoints."""

    def __init__(self, core: ControllerCore, token: str | None,
                 resync: Callable[[int], bool] | None = None, clock=time.monotonic,
                 store=None, metrics=None, wall_clock=time.time, enforcer=None):
        self.core = core
        self.token = token
        self.resync = resync
        self.clock = clock
        self.store = store
        self.metrics = metrics
        self.wall_clock = wall_clock
        self.enforcer = enforcer
        self.endpoints = [
            Endpoint("GET", f"{API}/health", "Controller and per-switch state", self.get_health),
            Endpoint("GET", f"{API}/topology", "Switches, links, hosts and port numbers",
                     self.get_topology),
            Endpoint("GET", f"{API}/tenants", "Tenants, their applications and policies",
                     self.get_tenants),
            Endpoint("GET", f"{API}/spec", "The network spec in force (a shadow replica builds from it)",
                     self.get_spec),
            Endpoint("GET", f"{API}/flows", "Flow rules the controller installs, with decoded cookies",
                     self.get_flows, params=(("switch", "switch name"), ("tenant", "tenant id"))),
            Endpoint("POST", f"{API}/switches/{{name}}/resync",
                     "Clear a connected switch and install its rules again", self.post_resync,
                     mutating=True),
            Endpoint("GET", f"{API}/series", "Stored time series, optionally resampled",
                     self.get_series,
                     params=(("tenant", "tenant id"), ("app", "application (or icmp, arp)"),
                             ("metric", "bps, pps, util, cpu, memory_bytes, rx_bps, tx_bps, ..."),
                             ("kind", "app, link, switch, meter, host"),
                             ("series", "one exact series name"),
                             ("since", "epoch seconds or ISO 8601"), ("until", "epoch seconds or ISO 8601"),
                             ("step", "resampling step in seconds (mean per bucket)"))),
            Endpoint("POST", f"{API}/agents/samples",
                     "Host agent readings; answers the last sequence number stored", self.post_agent,
                     mutating=True),
            Endpoint("POST", f"{API}/plans", "Validate a plan and apply it (only the changes, "
                     "confirmed, rolled back on failure); answers the diff", self.post_plan,
                     mutating=True, params=(("dry_run", "1: compute the diff only"),
                                            ("watch_s", "seconds to watch guaranteed throughput "
                                                        "after the apply; roll back on regression"))),
            Endpoint("GET", f"{API}/plans/current", "The plan in force", self.get_plan_current),
            Endpoint("GET", f"{API}/plans/history", "The audit log of plan changes",
                     self.get_plan_history, params=(("limit", "entries, newest first"),)),
            Endpoint("GET", "/metrics", "Prometheus exposition", self.get_metrics),
            Endpoint("GET", f"{API}/openapi.json", "This description", self.get_openapi),
        ]
        self.mapper = Mapper()
        for i, ep in enumerate(self.endpoints):
            self.mapper.connect(None, ep.path, endpoint=i, conditions={"method": [ep.method]})

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            resp = self._dispatch(req)
        except ApiError as e:
            body = {"error": e.message}
            if e.field:
                body["field"] = e.field
            resp = self._json(body, e.status)
        except Exception:  # noqa: BLE001 - the API must answer; the traceback goes to the log
            LOG.exception("REST handler failed for %s %s", req.method, req.path)
            resp = self._json({"error": "internal error; see the controller log"}, 500)
        return resp(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        match = self.mapper.match(environ=req.environ)
        if match is None:
            if self.mapper.match(req.path):
                raise ApiError(405, f"method {req.method} not allowed on {req.path}", "method")
            raise ApiError(404, f"no such endpoint: {req.path}", "path")
        ep = self.endpoints[int(match.pop("endpoint"))]
        allowed = {name for name, _ in ep.params}
        for key in req.GET:
            if key not in allowed:
                raise ApiError(400, f"unknown query parameter {key!r}; allowed: {sorted(allowed)}",
                               key)
        if ep.mutating:
            self._authorise(req)
        result = ep.handler(req, match)
        return result if isinstance(result, Response) else self._json(result)

    def _authorise(self, req: Request) -> None:
        if self.token is None:
            raise ApiError(403, "mutating endpoints are disabled: no API token is configured",
                           "Authorization")
        header = req.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip(), self.token):
            raise ApiError(401, "missing or wrong bearer token", "Authorization")

    @staticmethod
    def _json_body(req: Request) -> Any:
        try:
            return json.loads(req.body or b"null")
        except ValueError:
            raise ApiError(400, "body: not valid JSON", "body") from None

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body, indent=1, sort_keys=True), status=status,
                        content_type="application/json", charset="utf-8")

    # ------------------------------------------------------------------ handlers
    def get_health(self, req, args):
        return self.core.health(self.clock())

    def get_topology(self, req, args):
        spec = self.core.spec
        w = wire(spec)
        health = self.core.health(self.clock())["switches"]
        return {
            "name": spec.name,
            "switches": [{"name": s.name, "dpid": s.dpid, "state": health[s.name]["state"]}
                         for s in spec.switches],
            "links": [{"a": lk.a, "a_port": pa, "b": lk.b, "b_port": pb,
                       "capacity_mbps": lk.capacity_mbps}
                      for lk, ((_, pa), (_, pb)) in zip(spec.links, w.link_ports, strict=False)],
            "hosts": [{"name": h.name, "ip": h.ip, "mac": h.mac, "switch": h.switch,
                       "port": w.host_port[h.name][1], "link_mbps": h.link_mbps,
                       "tenant": spec.tenant_of(h.name).id if any(
                           h.name in t.hosts for t in spec.tenants) else None}
                      for h in spec.hosts],
        }

    def get_spec(self, req, args):
        spec = self.core.plan.effective_spec(self.core.spec) if self.core.plan else self.core.spec
        return spec.to_dict()

    def get_tenants(self, req, args):
        return {"tenants": self.core.spec.to_dict()["tenants"]}

    def get_flows(self, req, args):
        spec = self.core.spec
        dpid = tenant = None
        if "switch" in req.GET:
            try:
                dpid = spec.switch(req.GET["switch"]).dpid
            except KeyError:
                raise ApiError(404, f"switch: no switch named {req.GET['switch']!r}", "switch") from None
        if "tenant" in req.GET:
            ids = [t.id for t in spec.tenants]
            if req.GET["tenant"] not in ids:
                raise ApiError(404, f"tenant: no tenant {req.GET['tenant']!r}", "tenant")
            tenant = ids.index(req.GET["tenant"]) + 1
        names = {s.dpid: s.name for s in spec.switches}
        flows = []
        for r in self.core.rules(dpid, tenant):
            c = Cookie.decode(r.cookie)
            item = r.to_json()
            item["switch"] = names[r.dpid]
            item["tenant"] = spec.tenants[c.tenant - 1].id if c.tenant else None
            item["app_code"] = c.app
            item["direction"] = c.direction
            flows.append(item)
        return {"count": len(flows), "flows": flows}

    def post_resync(self, req, args):
        try:
            dpid = self.core.spec.switch(args["name"]).dpid
        except KeyError:
            raise ApiError(404, f"name: no switch named {args['name']!r}", "name") from None
        if self.resync is None or not self.resync(dpid):
            raise ApiError(409, f"name: switch {args['name']!r} is not connected", "name")
        return {"switch": args["name"], "resync": "sent"}

    # ------------------------------------------------------------------ telemetry
    def _need_store(self):
        if self.store is None:
            raise ApiError(503, "telemetry store is disabled in this controller", "store")
        return self.store

    def get_series(self, req, args):
        store = self._need_store()
        q = req.GET
        spec = self.core.spec
        if "tenant" in q and q["tenant"] not in [t.id for t in spec.tenants]:
            raise ApiError(404, f"tenant: no tenant {q['tenant']!r}", "tenant")
        if "app" in q and "tenant" in q:
            apps = [a.name for a in spec.tenant(q["tenant"]).applications] + ["icmp", "arp"]
            if q["app"] not in apps:
                raise ApiError(404, f"app: tenant {q['tenant']!r} has no application {q['app']!r}",
                               "app")
        since = _parse_time("since", q["since"]) if "since" in q else None
        until = _parse_time("until", q["until"]) if "until" in q else None
        if since is not None and until is not None and until < since:
            raise ApiError(400, f"until: {q['until']!r} is before since {q['since']!r}", "until")
        step = None
        if "step" in q:
            try:
                step = float(q["step"])
            except ValueError:
                raise ApiError(400, f"step: not a number: {q['step']!r}", "step") from None
            if not 0 < step <= 86400:
                raise ApiError(400, f"step: must be > 0 and <= 86400 seconds (got {step:g})", "step")
        names = []
        for name in store.series_names():
            f = parse_series(name)
            if "series" in q and name != q["series"]:
                continue
            if any(k in q and f.get(k) != q[k] for k in ("tenant", "app", "metric", "kind")):
                continue
            names.append(name)
        data = store.query(names, since, until, step)
        total = sum(len(v) for v in data.values())
        if total > MAX_POINTS:
            raise ApiError(400, f"step: {total} points exceed the limit of {MAX_POINTS}; narrow "
                                "since/until or set a larger step", "step")
        return {"step": step, "since": since, "until": until,
                "series": [{"name": n, **parse_series(n), "points": data[n]} for n in names]}

    def post_agent(self, req, args):
        store = self._need_store()
        body = self._json_body(req)
        if not isinstance(body, dict) or set(body) - {"host", "samples"}:
            raise ApiError(400, "body: must be an object with keys 'host' and 'samples'", "body")
        host = body.get("host")
        try:
            tenant = self.core.spec.tenant_of(host).id
        except (KeyError, TypeError):
            raise ApiError(404, f"host: no host {host!r} in a tenant of the spec", "host") from None
        items = body.get("samples")
        if not isinstance(items, list) or len(items) > MAX_AGENT_BATCH:
            raise ApiError(400, f"samples: must be a list of at most {MAX_AGENT_BATCH}", "samples")
        batch = []
        for i, it in enumerate(items):
            f = f"samples[{i}]"
            if not isinstance(it, dict):
                raise ApiError(400, f"{f}: must be an object", f)
            unknown = set(it) - {"seq", "t", *AGENT_METRICS}
            if unknown:
                raise ApiError(400, f"{f}.{sorted(unknown)[0]}: unknown field", f"{f}.{sorted(unknown)[0]}")
            seq, t = it.get("seq"), it.get("t")
            if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
                raise ApiError(400, f"{f}.seq: must be an integer >= 1 (got {seq!r})", f"{f}.seq")
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ApiError(400, f"{f}.t: must be epoch seconds (got {t!r})", f"{f}.t")
            samples = []
            for m in AGENT_METRICS:
                v = it.get(m)
                if v is None:
                    continue
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                    raise ApiError(400, f"{f}.{m}: must be a number >= 0 (got {v!r})", f"{f}.{m}")
                samples.append(Sample(float(t), host_series(tenant, host, m), float(v)))
            batch.append((seq, float(t), samples))
        last, stored = store.ingest_agent(host, batch, self.wall_clock())
        if self.metrics is not None and batch:
            self.metrics.observe(max(batch, key=lambda b: b[0])[2])
        return {"host": host, "acked": last, "stored": stored}

    # ------------------------------------------------------------------ plans
    def _need_enforcer(self):
        if self.enforcer is None:
            raise ApiError(503, "plan enforcement is not available in this controller", "plans")
        return self.enforcer

    def post_plan(self, req, args):
        from .enforcer import ApplyError
        from .plan import PlanError, parse_plan

        enforcer = self._need_enforcer()
        dry = req.GET.get("dry_run", "0")
        if dry not in ("0", "1", "true", "false"):
            raise ApiError(400, f"dry_run: must be 0 or 1 (got {dry!r})", "dry_run")
        try:
            watch_s = float(req.GET.get("watch_s", "0"))
        except ValueError:
            raise ApiError(400, f"watch_s: not a number: {req.GET['watch_s']!r}", "watch_s") from None
        if not 0 <= watch_s <= 3600:
            raise ApiError(400, f"watch_s: must be 0-3600 seconds (got {watch_s:g})", "watch_s")
        body = self._json_body(req)
        try:
            plan = parse_plan(body, self.core.spec)
        except PlanError as e:
            raise ApiError(400, str(e), e.field) from None
        try:
            result = enforcer.apply(plan, actor="api", dry_run=dry in ("1", "true"), watch_s=watch_s)
        except ApplyError as e:
            raise ApiError(e.status, str(e), "plan") from None
        if result["outcome"].startswith("rolled back"):
            return Response(json.dumps(result, indent=1), status=409, content_type="application/json",
                            charset="utf-8")
        return result

    def get_plan_current(self, req, args):
        plan = self.core.plan
        enforcement = {s.name: s.enforcement for s in self.core.switches.values()}
        return {"plan": plan.to_dict() if plan is not None else None, "enforcement": enforcement,
                "tc_classes": [r.to_json() for r in self.core.compiled.shapes]}

    def get_plan_history(self, req, args):
        try:
            limit = int(req.GET.get("limit", "100"))
        except ValueError:
            raise ApiError(400, f"limit: not an integer: {req.GET['limit']!r}", "limit") from None
        if not 1 <= limit <= 10000:
            raise ApiError(400, f"limit: must be 1-10000 (got {limit})", "limit")
        return {"history": self._need_enforcer().audit(limit)}

    def get_metrics(self, req, args):
        if self.metrics is None:
            raise ApiError(503, "metrics are disabled in this controller", "metrics")
        from prometheus_client import CONTENT_TYPE_LATEST

        resp = Response(body=self.metrics.exposition())
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    def get_openapi(self, req, args):
        paths: dict[str, dict] = {}
        for ep in self.endpoints:
            op: dict[str, Any] = {
                "summary": ep.summary,
                "responses": {"200": {"description": "JSON"},
                              "4XX": {"description": "JSON error naming the field"}},
            }
            params = [{"name": n, "in": "query", "required": False, "description": d,
                       "schema": {"type": "string"}} for n, d in ep.params]
            params += [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                       for n in ("name",) if "{" + n + "}" in ep.path]
            if params:
                op["parameters"] = params
            if ep.mutating:
                op["security"] = [{"bearer": []}]
            paths.setdefault(ep.path, {})[ep.method.lower()] = op
        return {
            "openapi": "3.0.3",
            "info": {"title": "netshadow controller", "version": "1"},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "paths": paths,
        }


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.debug("%s - %s", self.address_string(), fmt % args)


def serve(app, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Start serving ``app`` on ``host:port`` in a daemon thread; returns (server, thread)."""
    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="netshadow-rest", daemon=True)
    thread.start()
    return server, thread
