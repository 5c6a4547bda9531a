"""Strict JSON in and out (pure): what the REST API, plan files and the audit log accept.

Python's ``json`` module reads and writes ``NaN``, ``Infinity`` and ``-Infinity``, which are not
JSON (RFC 8259) and break every strict parser downstream; it turns ``1e400`` into ``inf``; and it
recurses once per nesting level, so a deeply nested document raises ``RecursionError``. Here:

* :func:`loads` refuses non-finite numbers (spelled out or overflowing), integers of more than
  40 digits, a key given twice in one object (RFC 8259 leaves the meaning open; Python would keep
  the last silently), documents nested deeper than :data:`MAX_DEPTH` and bodies larger than a
  limit, each with a :class:`JsonInputError` that says where;
* :func:`dumps` refuses to write a non-finite number (``allow_nan=False``), so nothing this
  project serves or stores is invalid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # nesting levels; every document netshadow reads is at most 5 deep


class JsonInputError(ValueError):
    """Input that is not strict, bounded JSON; ``field`` names what was wrong."""

    def __init__(self, field: str, reason: str):
        self.field = field
        super().__init__(f"{field}: {reason}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:40]} is out of range")
    return v


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(data: bytes | str, field: str = "body", max_bytes: int | None = None) -> Any:
    """Decode strict JSON; raise :class:`JsonInputError` naming ``field``."""
    if max_bytes is not None and len(data) > max_bytes:
        raise JsonInputError(field, f"{len(data)} bytes, more than the limit of {max_bytes}")
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonInputError(field, f"not UTF-8 (byte {e.start})") from None
    else:
        text = data
    if ("[" in text or "{" in text) and _depth(text) > MAX_DEPTH:
        raise JsonInputError(field, f"nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          parse_int=_bounded_int, object_pairs_hook=_unique_keys)
    except RecursionError:  # not reached after the depth check; kept as a guard
        raise JsonInputError(field, f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:
        raise JsonInputError(field, f"not valid JSON: {str(e)[:120]}") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k[:40]!r}")
        out[k] = v
    return out


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 40:  # int() of a huge digit string is quadratic; nothing needs it
        raise ValueError(f"integer {text[:20]}... has more than 40 digits")
    return int(text)


def dumps(obj: Any, **kw) -> str:
    """Encode as strict JSON; a non-finite number is a programming error (ValueError)."""
    return json.dumps(obj, allow_nan=False, **kw)
