"""How the ``netshadow`` command reports a failure: one line on stderr, at most
:data:`MAX_LINE` characters, so that a value of megabytes or a multi-line library message never
floods a terminal or a log."""

from __future__ import annotations

import sys

MAX_LINE = 300


def one_line(message: str, limit: int = MAX_LINE) -> str:
    """``message`` with every run of whitespace (newlines included) as one space, cut to
    ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error(message: str) -> None:
    print(one_line(message), file=sys.stderr)
