"""Waiting in tests: for a condition, with a deadline, never for a fixed time (a loaded CI
machine makes every fixed sleep too short one day)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, interval_s: float = 0.2) -> T:
    """Call ``condition`` until it returns something truthy (returned) or ``timeout_s`` passes
    (AssertionError naming ``what`` and the last value)."""
    deadline = time.monotonic() + timeout_s
    last: T = condition()
    while not last:
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} (last: {last!r})")
        time.sleep(interval_s)  # the polling interval between checks, inside the deadline
        last = condition()
    return last
