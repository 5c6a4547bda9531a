"""What every command shares: exit statuses and argument types."""

from __future__ import annotations

import argparse
import os

from topologies import bundled

EXIT_OK, EXIT_FAIL, EXIT_INVALID = 0, 1, 2
POLICY_NAMES = ("static", "reactive", "predictive", "oracle")


def spec_arg(text: str) -> str:
    """A path, or the name of a bundled spec (``default``, ``abilene``)."""
    if not os.path.exists(text) and bundled(text).exists():
        return str(bundled(text))
    return text


def port_arg(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535: {v}")
    return v
