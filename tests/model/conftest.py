"""Model tier: TensorFlow, small seeded data. Skips with a reason without TensorFlow; with
``NETSHADOW_REQUIRE_TF=1`` (set by ``make test``) a missing TensorFlow is an error instead."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _missing() -> str | None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return "TensorFlow is not installed (pip install 'netshadow[models]')"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.model)
            if reason:
                if os.environ.get("NETSHADOW_REQUIRE_TF") == "1":
                    raise pytest.UsageError(f"model tier prerequisites missing: {reason}")
                item.add_marker(pytest.mark.skip(reason=reason))
