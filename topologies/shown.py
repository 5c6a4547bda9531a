"""Values in error messages (pure): every stage's errors echo the value at fault, cut short."""

from __future__ import annotations

from typing import Any


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (then ``...``): a value of megabytes must not
    become a message of megabytes."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."
