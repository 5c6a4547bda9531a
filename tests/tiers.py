"""Shared rule of the test tiers: mark a tier's tests, and skip them with a reason when a
prerequisite is missing - unless the environment variable ``require_env`` is ``1`` (``make test``
sets it after installing everything), in which case a missing prerequisite stops the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def apply_tier(items, folder: Path, marker, reason: str | None, require_env: str, tier: str) -> None:
    mine = [it for it in items if folder in Path(it.fspath).parents]
    if mine and reason and os.environ.get(require_env) == "1":
        raise pytest.UsageError(f"{tier} prerequisites missing: {reason}")
    for item in mine:
        item.add_marker(marker)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
