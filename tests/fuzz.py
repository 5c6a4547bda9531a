"""Seeded, bounded generators of malformed input for the fuzz tests: REST requests per endpoint,
and broken specs, traces, mappings and plans for the command line. Deterministic for a seed;
every generator yields a fixed number of cases."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

NASTY_TEXT = ["", " ", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "-1", "0",
              "9" * 60, "0x10", "true", "null", "[]", "{}", "\u2603", "caf\u00e9", "\x00", "%ff",
              "%c3%28", "%00", "%2e%2e%2f", "../../etc/passwd", "x" * 5000, "2026-13-45",
              "1970-01-01T00:00:00+25:00", "9999-12-31T23:59:59", "0001-01-01", "h1\nh2",
              "' OR 1=1 --", "<script>", "s1;rm -rf /", "\ud800"]
NASTY_JSON_VALUES: list[Any] = [None, True, False, 0, -1, 2**63, 2**64, -(2**63) - 1, 1e308, -1e308,
                                1e-300, 0.5, "", "x" * 3000, "\u2603", [], {}, [1, 2], {"a": 1},
                                [[[[[]]]]], "nan", "1e400", 10**30]
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 500]


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    path: str  # with the query string, already percent-encoded as it goes on the wire
    headers: tuple[tuple[str, str], ...]
    body: bytes | None


def _mutate(rng: random.Random, doc: Any) -> bytes:
    """One malformed variant of the JSON document ``doc``."""
    kind = rng.randrange(9)
    if kind == 0:  # a leaf replaced by a value of the wrong type or range
        return json.dumps(_replace_leaf(rng, doc, rng.choice(NASTY_JSON_VALUES))).encode()
    if kind == 1:  # a non-finite or overflowing number spelled in the text
        text = json.dumps(_replace_leaf(rng, doc, "__N__"))
        return text.replace('"__N__"', rng.choice(RAW_NUMBERS)).encode()
    if kind == 2:  # deep nesting
        n = rng.choice([100, 1000, 5000, 20000])
        return (b"[" * n + b"]" * n) if rng.random() < 0.5 else (b'{"a":' * n + b"1" + b"}" * n)
    if kind == 3:  # truncated
        text = json.dumps(doc).encode()
        return text[: rng.randrange(max(1, len(text)))]
    if kind == 4:  # not UTF-8 / binary
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
    if kind == 5:  # an unknown key somewhere
        return json.dumps(_replace_leaf(rng, doc, None, add_key=True)).encode()
    if kind == 6:  # the wrong top-level type
        return json.dumps(rng.choice([[doc], "x", 5, None, [], True])).encode()
    if kind == 7:  # duplicated keys (the last one is malformed)
        text = json.dumps(doc)
        if text.startswith("{") and len(text) > 2:
            return (text[:-1] + ', "' + rng.choice(list(doc) or ["k"]) + '": ' +
                    rng.choice(RAW_NUMBERS + ['"x"', "[]"]) + "}").encode()
        return text.encode() + b"}"
    return rng.choice([b"", b"{", b"}", b"[", b"{}{}", b"\xef\xbb\xbf{}", b'{"a":1,}', b"'x'",
                       b"{'a': 1}", b'"\\ud800"', b"[1,2", b"\x00"])


def _replace_leaf(rng: random.Random, doc: Any, value: Any, add_key: bool = False) -> Any:
    """A copy of ``doc`` with one randomly chosen leaf (or, with ``add_key``, one mapping gaining
    an unknown key) changed."""
    doc = json.loads(json.dumps(doc))
    paths: list[tuple[Any, Any]] = []

    def walk(node):
        if isinstance(node, dict):
            if add_key:
                paths.append((node, None))
            for k, v in node.items():
                paths.append((node, k))
                walk(v)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((node, i))
                walk(v)

    walk(doc)
    if not paths:
        return value
    parent, key = rng.choice(paths)
    if key is None:
        parent["zz_unknown_" + str(rng.randrange(100))] = rng.choice(NASTY_JSON_VALUES)
    else:
        parent[key] = value
    return doc


def valid_bodies(now: float) -> dict[str, Any]:
    return {
        "agent": {"host": "h1", "samples": [{"seq": 1, "t": now, "cpu": 0.5, "memory_bytes": 1000,
                                             "rx_bps": 1.0, "tx_bps": 2.0}]},
        "plan": {"name": "p", "allocations": [{"tenant": "red", "app": "video", "rate_mbps": 5,
                                               "burst_kbit": 100, "dscp": 10, "path": ["s1", "s2", "s4"]}],
                 "extra_policies": [{"tenant": "red", "from": ["h1"], "to": ["h2"], "apps": ["web"]}],
                 "cpu_quotas": {"h1": 0.5}, "valid_from": now, "valid_until": now + 60,
                 "reasons": ["forecast"]},
    }


ENDPOINTS = [  # method, path, query keys it knows, body kind
    ("GET", "/api/v1/health", (), None),
    ("GET", "/api/v1/topology", (), None),
    ("GET", "/api/v1/tenants", (), None),
    ("GET", "/api/v1/spec", (), None),
    ("GET", "/api/v1/flows", ("switch", "tenant"), None),
    ("POST", "/api/v1/switches/{name}/resync", (), None),
    ("GET", "/api/v1/series", ("tenant", "app", "metric", "kind", "series", "since", "until", "step"), None),
    ("POST", "/api/v1/agents/samples", (), "agent"),
    ("POST", "/api/v1/plans", ("dry_run", "watch_s"), "plan"),
    ("GET", "/api/v1/plans/current", (), None),
    ("GET", "/api/v1/plans/history", ("limit",), None),
    ("GET", "/metrics", (), None),
    ("GET", "/api/v1/openapi.json", (), None),
]


def _pct(text: str) -> str:
    """Percent-encode text for a query, except sequences that are already escapes."""
    from urllib.parse import quote

    if text.startswith("%") and len(text) == 3:
        return text
    return quote(text.encode("utf-8", "surrogatepass"), safe="%")


def rest_requests(seed: int, per_endpoint: int, token: str) -> list[FuzzRequest]:
    """``per_endpoint`` malformed requests for every endpoint of :data:`ENDPOINTS`."""
    rng = random.Random(seed)
    bodies = valid_bodies(time.time())
    out = []
    for method, path, known, body_kind in ENDPOINTS:
        for _ in range(per_endpoint):
            m = method if rng.random() < 0.85 else rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH",
                                                               "OPTIONS"])
            p = path.replace("{name}", _pct(rng.choice(["s1", "s9", "x" * 300, "\u2603", "%ff", "", "s1/..",
                                                        "S1", "s1%00"])))
            params = []
            for _ in range(rng.randrange(0, 4)):
                key = rng.choice(list(known) + ["frobnicate", "", "%ff", "since"]) if known else \
                    rng.choice(["frobnicate", "%ff", "dry_run", ""])
                params.append(f"{_pct(key)}={_pct(rng.choice(NASTY_TEXT + ['1', 'red', 'video', 's1']))}")
            if params:
                p += "?" + "&".join(params)
            headers = []
            auth = rng.randrange(6)
            if auth == 0:
                headers.append(("Authorization", f"Bearer {token}"))
            elif auth == 1:
                headers.append(("Authorization", rng.choice(["Bearer", "Bearer ", "Basic eDp5", "bearer x",
                                                             "Bearer " + "x" * 4000, "Bearer \u00e9t\u00e9",
                                                             f"Bearer {token}x", f"Bearer  {token[:-1]}"])))
            elif auth == 2:
                headers.append(("Authorization", f"Bearer {token}"))
                headers.append(("Content-Type", rng.choice(["text/plain", "application/x-www-form-urlencoded",
                                                            "multipart/form-data; boundary=x", "\u2603"])))
            body = None
            if m in ("POST", "PUT", "PATCH"):
                body = _mutate(rng, bodies[body_kind]) if body_kind else rng.choice(
                    [b"", b"{}", b"x" * 1000, b"[" * 2000])
            out.append(FuzzRequest(m, p, tuple(headers), body))
    return out


def raw_http(seed: int, count: int, port: int) -> list[bytes]:
    """Malformed HTTP/1.x requests as bytes for a socket."""
    rng = random.Random(seed)
    host = f"Host: 127.0.0.1:{port}\r\n".encode()
    fixed = [
        b"GET /api/v1/health\r\n\r\n",  # HTTP/0.9
        b"GET /api/v1/health HTTP/9.9\r\n" + host + b"\r\n",
        b"GET /api/v1/health HTTP/1.1\r\n" + host + b"X: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n" + host + b"\r\n",
        b"get /api/v1/health HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /api/v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"POST /api/v1/agents/samples HTTP/1.1\r\n" + host + b"Content-Length: -5\r\n\r\n",
        b"POST /api/v1/agents/samples HTTP/1.1\r\n" + host + b"Content-Length: 99999999999\r\n\r\n{}",
        b"POST /api/v1/agents/samples HTTP/1.1\r\n" + host + b"Transfer-Encoding: gzip\r\n\r\n",
        b"POST /api/v1/agents/samples HTTP/1.1\r\n" + host + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /api/v1/agents/samples HTTP/1.1\r\n" + host
        + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello
        b"\r\n\r\n",
        b"GET /api/v1/health HTTP/1.1\r\n" + host + b"Bad Header\r\n\r\n",
        b"GET /api/v1/series?since=%ff HTTP/1.1\r\n" + host + b"\r\n",
        b"GET /api/v1/\xff\xfe HTTP/1.1\r\n" + host + b"\r\n",
    ]
    out = list(fixed)
    while len(out) < count:
        base = rng.choice(fixed)
        cut = bytearray(base[: rng.randrange(1, len(base) + 1)])
        for _ in range(rng.randrange(0, 4)):
            if cut:
                cut[rng.randrange(len(cut))] = rng.randrange(256)
        out.append(bytes(cut) + b"\r\n\r\n")
    return out[:count]


# ---------------------------------------------------------------------- broken files for the CLI
def _walk(node, path=()):
    """Every (path, value) in a decoded document, containers included."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def _numeric_paths(doc) -> list[tuple]:
    return [p for p, v in _walk(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _set(doc, path, value):
    doc = json.loads(json.dumps(doc))
    if not path:
        return value
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _swap_container(rng: random.Random, doc):
    """A copy with one value replaced by a container of the wrong kind: a scalar by a list or a
    mapping, a list by a mapping, a mapping by a list. Never valid where the value was."""
    path, value = rng.choice([pv for pv in _walk(doc) if pv[0]])
    if isinstance(value, list):
        new: Any = {"zz": value}
    elif isinstance(value, dict):
        new = [value]
    else:
        new = rng.choice([[value], {"zz": value}, [], {}])
    return _set(doc, path, new)


def _unknown_key(rng: random.Random, doc):
    maps = [pv for pv in _walk(doc) if isinstance(pv[1], dict)]
    path, value = rng.choice(maps)
    return _set(doc, path, {**value, f"zz_unknown_{rng.randrange(1000)}": 1})


def _yaml_text(doc) -> bytes:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False).encode()


def _alias_bomb() -> bytes:
    lines = [b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"]
    for i in range(8):
        lines.append(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n".encode())
    return b"".join(lines)


STRUCTURAL_YAML = [
    b"",
    b"- just\n- a list\n",
    b"name: [unclosed\n",
    b"name: x\n\tswitches: []\n",
    b"\xff\xfe\x00binary\x00",
    _alias_bomb(),
    b"name: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    b"name: " + b"x" * (1024 * 1024 + 10) + b"\n",
    b"!!python/object/apply:os.system [echo pwned]\n",
    b"name: !!binary aGVsbG8=\n",
]


def broken_specs(seed: int, count: int, good: dict) -> list[tuple[str, bytes]]:
    """``count`` invalid specs (name, file bytes) derived from the valid decoded spec ``good``."""
    rng = random.Random(seed)
    out = [(f"structural{i}", b) for i, b in enumerate(STRUCTURAL_YAML)]
    out.append(("duplicate", _yaml_text(good) + b"name: again\n"))
    numbers = _numeric_paths(good)
    refs = [(p, v) for p, v in _walk(good) if isinstance(v, str) and p and p[-1] in ("switch", "a", "b")]
    while len(out) < count:
        k = rng.randrange(5)
        if k == 0:
            doc = _swap_container(rng, good)
        elif k == 1:
            doc = _unknown_key(rng, good)
        elif k == 2:
            doc = _set(good, rng.choice(numbers), rng.choice([-1, 0, float("nan"), float("inf"), -1e300, "x",
                                                               True]))
        elif k == 3:
            path, _ = rng.choice(refs)
            doc = _set(good, path, "s99")
        else:
            t = rng.randrange(len(good["tenants"]))
            doc = _set(good, ("tenants", t, "hosts"), good["tenants"][t]["hosts"] + ["h99"])
        out.append((f"mutated{len(out)}", _yaml_text(doc)))
    return out[:count]


def broken_plans(seed: int, count: int, good: dict) -> list[tuple[str, bytes]]:
    """``count`` invalid plan files derived from the valid plan ``good``."""
    rng = random.Random(seed)
    fixed = [b"", b"{", b"null", b"[]", b'"plan"', b"\xff\xfe{}", b"[" * 5000 + b"]" * 5000,
             json.dumps(good).encode()[:-1], b'{"name": "p", "valid_from": NaN}',
             b'{"name": "p", "allocations": [{"tenant": "red", "app": "video", "rate_mbps": Infinity}]}',
             json.dumps({**good, "name": "n" * 20_000}).encode(),
             json.dumps({"allocations": [{"tenant": "red", "app": "video", "rate_mbps": 150}]}).encode(),
             json.dumps({"allocations": [{"tenant": "red", "app": "video", "rate_mbps": 70},
                                         {"tenant": "red", "app": "web", "rate_mbps": 70}]}).encode(),
             b"{" + b'"a": 1, ' * 100_000 + b'"b": 2}']
    out = [(f"fixed{i}", b) for i, b in enumerate(fixed)]
    while len(out) < count:
        k = rng.randrange(4)
        if k == 0:
            doc = _swap_container(rng, good)
        elif k == 1:
            doc = _unknown_key(rng, good)
        elif k == 2:
            text = json.dumps(_set(good, rng.choice(_numeric_paths(good)), "__N__"))
            out.append((f"mutated{len(out)}", text.replace('"__N__"', rng.choice(RAW_NUMBERS)).encode()))
            continue
        else:
            text = json.dumps(good).encode()
            out.append((f"mutated{len(out)}", text[: rng.randrange(1, len(text) - 1)]))
            continue
        out.append((f"mutated{len(out)}", json.dumps(doc).encode()))
    return out[:count]


def broken_replay_inputs(seed: int, count: int, good_map: dict,
                         good_csv: str) -> list[tuple[str, bytes, bytes]]:
    """``count`` (name, mapping YAML, trace CSV) pairs of which one part is invalid."""
    rng = random.Random(seed)
    lines = good_csv.strip().splitlines()
    header, rows = lines[0], lines[1:]
    good_map_bytes = _yaml_text(good_map)

    def csv(hdr, rs):
        return ("\n".join([hdr, *rs]) + "\n").encode()

    def cell(value):  # one cell of one row replaced
        r = rng.randrange(len(rows))
        parts = rows[r].split(",")
        parts[rng.randrange(1, len(parts))] = value
        return csv(header, rows[:r] + [",".join(parts)] + rows[r + 1:])

    short_rows = [r.split(",", 1)[0] + ",1,2" for r in rows]  # a field fewer than the header
    same_time = ["2026-01-05T00:00," + r.split(",", 1)[1] for r in rows]
    decades = ["1970-01-01T00:00,1,1,1"] + [f"2026-01-05T00:00:{i:02d},1,1,1" for i in range(30)]
    traces = [b"", b"time\n", header.encode() + b"\n", csv(header, rows[:1]),
              csv(header.replace("time", "when"), rows), csv(header, short_rows),
              b"\xff\xfe\x00\x01" * 100, csv(header, same_time), csv(header, decades),
              csv(header, [r.replace("2026-01", "2026-99") for r in rows])]
    maps = [b"", b"- a list\n", b"scale: 1\n", b"scale: .nan\nflows: []\n", b"flows: 5\n",
            good_map_bytes.replace(b"scale: 1.0", b"scale: .inf"),
            good_map_bytes.replace(b"scale: 1.0", b"scale: 1.0e+300"),
            good_map_bytes.replace(b"scale: 1.0", b"scale: -2"),
            good_map_bytes + b"scale: 2\n",
            _alias_bomb()]
    out = [(f"trace{i}", good_map_bytes, t) for i, t in enumerate(traces)]
    out += [(f"map{i}", m, csv(header, rows)) for i, m in enumerate(maps)]
    flow_fields = {"column": "nosuchcolumn", "tenant": "nosuchtenant", "app": "web", "src": "h99",
                   "dst": "h1"}
    while len(out) < count:
        k = rng.randrange(6)
        if k == 0:
            out.append((f"mmut{len(out)}", _yaml_text(_swap_container(rng, good_map)), csv(header, rows)))
        elif k == 1:
            out.append((f"mmut{len(out)}", _yaml_text(_unknown_key(rng, good_map)), csv(header, rows)))
        elif k == 2:
            i = rng.randrange(len(good_map["flows"]))
            key = rng.choice(list(flow_fields))
            doc = _set(good_map, ("flows", i, key), flow_fields[key])
            out.append((f"mmut{len(out)}", _yaml_text(doc), csv(header, rows)))
        elif k == 3:
            out.append((f"cell{len(out)}", good_map_bytes, cell(rng.choice(["-1", "x", "inf", "1e400", "-inf",
                                                                           "1,2", "0x10", "nan!"]))))
        elif k == 4:
            doc = _set(good_map, ("flows", 1), good_map["flows"][0])
            out.append((f"mdup{len(out)}", _yaml_text(doc), csv(header, rows)))
        else:
            doc = _set(good_map, ("scale",), rng.choice([0, -1, "x", True, None, float("nan"), 1e12]))
            out.append((f"mscale{len(out)}", _yaml_text(doc), csv(header, rows)))
    return out[:count]
