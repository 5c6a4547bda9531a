"""The reactive threshold allocator: raises after use passes the threshold, lowers after a
cooldown, never below use."""

from __future__ import annotations

import pytest

from controller.plan import Allocation, Plan
from controller.reactive import ReactiveSettings, ReactiveState, react

S = ReactiveSettings(raise_at=0.9, lower_at=0.5, step=0.25, min_step_mbps=1.0, cooldown_s=60)
K = ("red", "video")


def cur(rate):
    return Plan("cur", (Allocation("red", "video", rate),))


def test_raises_only_after_use_passes_the_threshold():
    st = ReactiveState()
    assert react({K: 17.0}, cur(20), 0, st, S).allocation(*K).rate_mbps == 20
    p = react({K: 19.0}, cur(20), 0, st, S)
    assert p.allocation(*K).rate_mbps == 25 and "raised" in p.reasons[0]
    # a jump far above the step goes straight to what the use needs
    assert react({K: 45.0}, cur(20), 0, st, S).allocation(*K).rate_mbps == pytest.approx(50)


def test_lowers_after_the_cooldown_only_and_never_below_use():
    st = ReactiveState()
    assert react({K: 5.0}, cur(20), 0, st, S).allocation(*K).rate_mbps == 20
    assert react({K: 5.0}, cur(20), 59, st, S).allocation(*K).rate_mbps == 20
    assert react({K: 5.0}, cur(20), 60, st, S).allocation(*K).rate_mbps == 15
    # a step larger than the gap to the use stops at the use
    tight = ReactiveSettings(lower_at=0.5, step=0.25, min_step_mbps=1.0, cooldown_s=60, floor_mbps=0.1)
    st = ReactiveState()
    react({K: 0.7}, cur(1.5), 0, st, tight)
    assert react({K: 0.7}, cur(1.5), 60, st, tight).allocation(*K).rate_mbps == 0.7


def test_starts_from_the_initial_allocation():
    p = react({K: 1.0}, None, 0, ReactiveState(), S, initial_mbps={K: 8.0})
    assert p.allocation(*K).rate_mbps == 8.0
