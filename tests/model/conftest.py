"""Model tier: TensorFlow, small seeded data. Skips with a reason without TensorFlow; with
``NETSHADOW_REQUIRE_TF=1`` (set by ``make test``) a missing TensorFlow is an error instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiers import apply_tier


def _missing() -> str | None:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return "TensorFlow is not installed (pip install 'netshadow[models]')"
    return None


def pytest_collection_modifyitems(config, items):
    apply_tier(items, Path(__file__).parent, pytest.mark.model, _missing(), "NETSHADOW_REQUIRE_TF",
               "model tier")
