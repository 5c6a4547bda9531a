"""The controller's REST API: a WSGI application (WebOb + Routes) served by waitress in a thread.

Every response is JSON (strict: no NaN or Infinity; see :mod:`topologies.jsonio`), including the
protocol errors the server itself answers (400, 413, 431, 505). Client mistakes get a 4xx whose
body is ``{"error": ..., "field": ...}``; an unexpected exception is logged with its traceback and
answered with a JSON 500 that carries no traceback. Requests are bounded: bodies of at most
:data:`MAX_BODY_BYTES` (plans :data:`controller.plan.MAX_PLAN_BYTES`), JSON at most
:data:`topologies.jsonio.MAX_DEPTH` levels deep, headers of at most 64 KiB.

Mutating endpoints need ``Authorization: Bearer <token>``; the token comes from a file or the
``NETSHADOW_API_TOKEN`` environment variable (see :func:`load_token`). Without a token
configured, mutating endpoints refuse every request (403) rather than run unauthenticated.
"""

from __future__ import annotations

import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routes import Mapper
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask
from webob import Request, Response

from topologies import jsonio, wire
from topologies.shown import shown

from .cookies import Cookie
from .core import ControllerCore
from .enforcement import Outcome
from .plan import MAX_EPOCH_S, MAX_PLAN_BYTES
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


AGENT_METRICS = ("cpu", "cpu_throttled", "memory_bytes", "rx_bps", "tx_bps", "cpu_quota",
                 "memory_limit")
MAX_AGENT_BATCH = 10000
MAX_POINTS = 200_000
MAX_SEQ = 2**63 - 1  # SQLite's INTEGER
MAX_BODY_BYTES = 4 * 1024 * 1024  # a full agent batch is about 1 MB
MAX_FUTURE_S = 300.0  # agent clock skew tolerated ahead of the controller's clock


def _parse_time(fld: str, text: str) -> float:
    """Seconds since the epoch, or an ISO 8601 time (UTC when it has no offset); finite and in
    [0, 2100-01-01]."""
    try:
        t = float(text)
    except ValueError:
        try:
            dt = datetime.fromisoformat(text)
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            t = dt.timestamp()
        except (ValueError, OverflowError, OSError):
            raise ApiError(400, f"{fld}: not a time (epoch seconds or ISO 8601): {shown(text)}",
                           fld) from None
    if not 0 <= t <= MAX_EPOCH_S:  # also refuses nan and inf
        raise ApiError(400, f"{fld}: must be a finite time between 1970 and 2100 (got {shown(text)})",
                       fld)
    return t


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
            Endpoint("POST", f"{API}/scans", "Store a scan's results (reachability and RTT per host "
                     "pair and port)", self.post_scans, mutating=True),
            Endpoint("GET", f"{API}/scans", "Scan history, newest first, and the latest result per "
                     "pair and port", self.get_scans,
                     params=(("src", "host"), ("dst", "host"), ("origin", "shadow or production"),
                             ("since", "epoch seconds or ISO 8601"), ("until", "epoch seconds or ISO 8601"),
                             ("limit", "results, newest first (1-10000, default 1000)"))),
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
            LOG.exception("REST handler failed for %s %r", req.method,
                          environ.get("PATH_INFO", "")[:200])
            resp = self._json({"error": "internal error; see the controller log", "field": "server"},
                              500)
        return resp(environ, start_response)

    def _dispatch(self, req: Request) -> Response:
        try:
            path = req.path
        except UnicodeDecodeError:
            raise ApiError(400, "path: not UTF-8 (percent-encode UTF-8 bytes only)", "path") from None
        match = self.mapper.match(environ=req.environ)
        if match is None:
            if self.mapper.match(path):
                raise ApiError(405, f"method {shown(req.method)} not allowed on {shown(path)}",
                               "method")
            raise ApiError(404, f"no such endpoint: {shown(path, 200)}", "path")
        ep = self.endpoints[int(match.pop("endpoint"))]
        allowed = {name for name, _ in ep.params}
        try:
            query = req.GET
            keys = list(query)
            for key in keys:
                query.getall(key)
        except UnicodeDecodeError:
            raise ApiError(400, "query: not UTF-8 (percent-encode UTF-8 bytes only)", "query") from None
        for key in keys:
            if len(query.getall(key)) > 1:
                raise ApiError(400, f"{shown(key)}: query parameter given more than once",
                               key[:60] or "query")
        for key in keys:
            if key not in allowed:
                raise ApiError(400, f"unknown query parameter {shown(key)}; allowed: {sorted(allowed)}",
                               key[:60] or "query")
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
        # WSGI hands headers over as latin-1 text; compare bytes, so that any value (non-ASCII
        # included) is simply a wrong token
        given = value.strip().encode("latin-1", "replace")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.token.encode("utf-8")):
            raise ApiError(401, "missing or wrong bearer token", "Authorization")

    @staticmethod
    def _json_body(req: Request, max_bytes: int = MAX_BODY_BYTES) -> Any:
        length = req.content_length
        if length is not None and length > max_bytes:
            raise ApiError(413, f"body: {length} bytes, more than the limit of {max_bytes}", "body")
        try:
            raw = req.body_file.read(max_bytes + 1) if length is None else req.body
        except OSError:
            raise ApiError(400, "body: ended before its Content-Length", "body") from None
        if length is not None and len(raw) < length:
            raise ApiError(400, f"body: {len(raw)} bytes, fewer than its Content-Length {length}",
                           "body")
        try:
            return jsonio.loads(raw or b"null", "body", max_bytes)
        except jsonio.JsonInputError as e:
            raise ApiError(413 if "limit" in str(e) else 400, str(e), e.field) from None

    @staticmethod
    def _json(body: Any, status: int = 200) -> Response:
        return Response(jsonio.dumps(body, indent=1, sort_keys=True), status=status,
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
                raise ApiError(404, f"switch: no switch named {shown(req.GET['switch'])}",
                               "switch") from None
        if "tenant" in req.GET:
            ids = [t.id for t in spec.tenants]
            if req.GET["tenant"] not in ids:
                raise ApiError(404, f"tenant: no tenant {shown(req.GET['tenant'])}", "tenant")
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
            raise ApiError(404, f"name: no switch named {shown(args['name'])}", "name") from None
        if self.resync is None or not self.resync(dpid):
            raise ApiError(409, f"name: switch {shown(args['name'])} is not connected", "name")
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
            raise ApiError(404, f"tenant: no tenant {shown(q['tenant'])}", "tenant")
        if "app" in q and "tenant" in q:
            apps = [a.name for a in spec.tenant(q["tenant"]).applications] + ["icmp", "arp"]
            if q["app"] not in apps:
                raise ApiError(404, f"app: tenant {shown(q['tenant'])} has no application "
                                    f"{shown(q['app'])}", "app")
        since = _parse_time("since", q["since"]) if "since" in q else None
        until = _parse_time("until", q["until"]) if "until" in q else None
        if since is not None and until is not None and until < since:
            raise ApiError(400, f"until: {shown(q['until'])} is before since {shown(q['since'])}", "until")
        step = None
        if "step" in q:
            try:
                step = float(q["step"])
            except ValueError:
                raise ApiError(400, f"step: not a number: {shown(q['step'])}", "step") from None
            if not 0.001 <= step <= 86400:
                raise ApiError(400, f"step: must be 0.001-86400 seconds (got {step:g})", "step")
        names = []
        for name in store.series_names():
            f = parse_series(name)
            if "series" in q and name != q["series"]:
                continue
            if any(k in q and f.get(k) != q[k] for k in ("tenant", "app", "metric", "kind")):
                continue
            names.append(name)
        from .store import TooManyPoints

        try:
            data = store.query(names, since, until, step, max_points=MAX_POINTS)
        except TooManyPoints:
            raise ApiError(400, f"step: more than {MAX_POINTS} points; narrow since/until or set a "
                                "larger step", "step") from None
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
            raise ApiError(404, f"host: no host {shown(host)} in a tenant of the spec", "host") from None
        items = body.get("samples")
        if not isinstance(items, list) or len(items) > MAX_AGENT_BATCH:
            raise ApiError(400, f"samples: must be a list of at most {MAX_AGENT_BATCH}", "samples")
        now = self.wall_clock()
        oldest = now - store.retention_s
        batch, first_of = [], {}
        for i, it in enumerate(items):
            f = f"samples[{i}]"
            if not isinstance(it, dict):
                raise ApiError(400, f"{f}: must be an object", f)
            unknown = set(it) - {"seq", "t", *AGENT_METRICS}
            if unknown:
                k = sorted(unknown)[0]
                raise ApiError(400, f"{f}.{shown(k, 40)[1:-1]}: unknown field", f"{f}.{k[:40]}")
            seq, t = it.get("seq"), it.get("t")
            if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
                raise ApiError(400, f"{f}.seq: must be an integer 1-{MAX_SEQ} (got {shown(seq)})",
                               f"{f}.seq")
            if seq in first_of:
                raise ApiError(400, f"{f}.seq: {seq} is also the seq of samples[{first_of[seq]}]; "
                                    "each reading has its own", f"{f}.seq")
            first_of[seq] = i
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ApiError(400, f"{f}.t: must be epoch seconds (got {shown(t)})", f"{f}.t")
            if t > now + MAX_FUTURE_S:
                raise ApiError(400, f"{f}.t: {t:.0f} is {t - now:.0f} s ahead of the controller's "
                                    f"clock (at most {MAX_FUTURE_S:g} s); check the host's clock",
                               f"{f}.t")
            samples = []
            for m in AGENT_METRICS:
                v = it.get(m)
                if v is None:
                    continue
                if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                        or not v >= 0):
                    raise ApiError(400, f"{f}.{m}: must be a finite number >= 0 (got {shown(v)})",
                                   f"{f}.{m}")
                samples.append(Sample(float(t), host_series(tenant, host, m), float(v)))
            batch.append((seq, float(t), samples if t >= oldest else []))
        # one agent posts one batch at a time, so the seq read here is the one ingest starts from
        last_before = store.agent_last_seq(host)
        last, stored = store.ingest_agent(host, batch, now)
        if self.metrics is not None and batch:
            self.metrics.observe(max(batch, key=lambda b: b[0])[2])
        stale = sum(1 for seq, _, _ in batch if seq <= last_before)
        old = sum(1 for seq, t, _ in batch if seq > last_before and t < oldest)
        answer = {"host": host, "acked": last, "stored": stored - old}
        if stale or old:
            answer["dropped"] = stale + old
            why = []
            if stale:
                why.append(f"{stale} with seq at or below {last_before}, the last already stored "
                           "(resent or out of order)")
            if old:
                why.append(f"{old} older than the store's retention of {store.retention_s:g} s "
                           "(acknowledged, points not kept)")
            answer["dropped_because"] = "; ".join(why)
        return answer

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
            raise ApiError(400, f"dry_run: must be 0 or 1 (got {shown(dry)})", "dry_run")
        try:
            watch_s = float(req.GET.get("watch_s", "0"))
        except ValueError:
            raise ApiError(400, f"watch_s: not a number: {shown(req.GET['watch_s'])}", "watch_s") from None
        if not 0 <= watch_s <= 3600:
            raise ApiError(400, f"watch_s: must be 0-3600 seconds (got {watch_s:g})", "watch_s")
        body = self._json_body(req, MAX_PLAN_BYTES)
        try:
            plan = parse_plan(body, self.core.spec)
        except PlanError as e:
            raise ApiError(400, str(e), e.field) from None
        try:
            result = enforcer.apply(plan, actor="api", dry_run=dry in ("1", "true"), watch_s=watch_s)
        except ApplyError as e:
            raise ApiError(e.status, str(e), "plan") from None
        if result["outcome"] in (Outcome.ROLLED_BACK.value, Outcome.ROLLBACK_FAILED.value):
            return self._json(result, 409)
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
            raise ApiError(400, f"limit: not an integer: {shown(req.GET['limit'])}", "limit") from None
        if not 1 <= limit <= 1000:
            raise ApiError(400, f"limit: must be 1-1000 (got {limit})", "limit")
        return {"history": self._need_enforcer().audit(limit)}

    def post_scans(self, req, args):
        from .scans import ScanError, parse_scans

        store = self._need_store()
        try:
            results = parse_scans(self._json_body(req), self.core.spec, self.wall_clock())
        except ScanError as e:
            raise ApiError(400, str(e), e.field) from None
        n = store.record_scans(results)
        if self.metrics is not None:
            self.metrics.observe_scans(results)
        return {"stored": n}

    def get_scans(self, req, args):
        store = self._need_store()
        q = req.GET
        hosts = {h.name for h in self.core.spec.hosts}
        for k in ("src", "dst"):
            if k in q and q[k] not in hosts:
                raise ApiError(404, f"{k}: no host {shown(q[k])} in the spec", k)
        if "origin" in q and q["origin"] not in ("shadow", "production"):
            raise ApiError(400, f"origin: must be shadow or production (got {shown(q['origin'])})",
                           "origin")
        since = _parse_time("since", q["since"]) if "since" in q else None
        until = _parse_time("until", q["until"]) if "until" in q else None
        if since is not None and until is not None and until < since:
            raise ApiError(400, f"until: {shown(q['until'])} is before since {shown(q['since'])}", "until")
        try:
            limit = int(q.get("limit", "1000"))
        except ValueError:
            raise ApiError(400, f"limit: not an integer: {shown(q['limit'])}", "limit") from None
        if not 1 <= limit <= 10_000:
            raise ApiError(400, f"limit: must be 1-10000 (got {limit})", "limit")
        rows = store.scans(since, until, q.get("src"), q.get("dst"), q.get("origin"), limit)
        latest: dict = {}
        for r in rows:  # newest first: the first seen per (origin, case) is its latest
            latest.setdefault((r.origin, r.case), r)
        return {"scans": [r.to_dict() for r in rows],
                "latest": [r.to_dict() for r in latest.values()],
                "drift": [r.to_dict() for r in latest.values() if not r.conforms]}

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


class _JsonErrorTask(ErrorTask):
    """waitress answers protocol errors itself (malformed request line, 413, 431, 505); here as
    JSON like every other answer, with the part of the request at fault as ``field``. An
    unsupported transfer coding (waitress: 501) is answered 400: the request is the problem."""

    FIELDS = {400: "request", 413: "body", 431: "headers", 501: "Transfer-Encoding",
              505: "version"}

    def execute(self):
        e = self.request.error
        code, reason = e.code, e.reason
        if code == 501:  # a transfer coding waitress does not implement: the client's choice
            code, reason = 400, "Bad Request"
        body = jsonio.dumps({"error": f"{e.reason}: {str(e.body)[:200]}",
                             "field": self.FIELDS.get(e.code, "request")}).encode()
        self.status = f"{code} {reason}"
        self.response_headers.append(("Content-Type", "application/json; charset=utf-8"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class _JsonErrorChannel(HTTPChannel):
    error_task_class = _JsonErrorTask


class RestServer:
    """The API served by waitress (a production WSGI server): connections are read by one
    event loop and only complete requests reach one of ``threads`` workers, so slow or idle
    clients hold no thread; idle connections close after ``channel_timeout_s``; the listen
    backlog is ``backlog``."""

    POLL_S = 0.5  # the event loop's poll timeout, seconds: the longest a stop can wait

    def __init__(self, app, host: str, port: int, threads: int = 8, backlog: int = 1024,
                 channel_timeout_s: float = 30.0):
        self._server = create_server(
            app, host=host, port=port, threads=threads, backlog=backlog,
            channel_timeout=channel_timeout_s, cleanup_interval=max(1, int(channel_timeout_s // 3)),
            connection_limit=1000, ident="netshadow",
            max_request_header_size=64 * 1024, max_request_body_size=MAX_BODY_BYTES,
            asyncore_use_poll=True, clear_untrusted_proxy_headers=True)
        self._server.channel_class = _JsonErrorChannel
        # waitress warns whenever requests wait for a worker; under load that is every request
        # (connections, and so queued requests, are bounded by connection_limit)
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.host, self.port = host, self._server.effective_port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="netshadow-rest", daemon=True)
        self._closed = False

    @property
    def server_address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def start(self) -> RestServer:
        self._thread.start()
        return self

    def _serve(self) -> None:
        """waitress's event loop, one bounded poll at a time, until ``shutdown`` sets the stop
        flag; then every socket (and the wake-up pipe) is closed here, in the loop's own thread.
        The flag, not the wake-up pipe, ends the loop, so a pipe that is already gone delays the
        end by at most one poll (``POLL_S``) and never stops it."""
        server = self._server
        try:
            while server._map and not self._stop.is_set():
                wasyncore.loop(timeout=self.POLL_S, map=server._map, use_poll=True, count=1)
        finally:
            wasyncore.close_all(server._map, ignore_all=True)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop the event loop (which closes the listening socket and every connection), wait
        for it, then stop the workers. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread.ident is None:  # never started: nothing runs the loop
            wasyncore.close_all(self._server._map, ignore_all=True)
        else:
            trigger = self._server.trigger
            # wake the loop now rather than at its next poll; a closed pipe's descriptor number
            # may already belong to another file, so it is not written to
            if not getattr(trigger, "_closed", False):
                try:
                    trigger.pull_trigger()
                except OSError:
                    pass  # closed meanwhile: the loop still sees the flag within one poll
            self._thread.join(timeout_s)
        self._server.task_dispatcher.shutdown(timeout=timeout_s)

    server_close = shutdown


def serve(app, host: str, port: int) -> tuple[RestServer, threading.Thread]:
    """Start serving ``app`` on ``host:port`` in a daemon thread; returns (server, thread)."""
    server = RestServer(app, host, port).start()
    return server, server._thread
