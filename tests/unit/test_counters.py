"""The rate core: counter wrap, reset, duplicate and missing replies never give a wrong rate."""

from __future__ import annotations

import pytest

from controller.telemetry.counters import WRAP, CounterTracker, Reading


@pytest.fixture
def tr():
    return CounterTracker(min_dt_s=0.2, max_dt_s=5.0, max_bps=1e9)


def test_steady_counter(tr):
    assert tr.update("k", Reading(10.0, 1000, 10, 100.0)) is None  # first sight: baseline
    d = tr.update("k", Reading(11.0, 126_000, 110, 101.0))
    assert (d.bytes, d.packets, d.dt, d.gap) == (125_000, 100, 1.0, False)


def test_wrap_of_a_64_bit_counter(tr):
    tr.update("k", Reading(10.0, WRAP - 500, 5, 100.0))
    d = tr.update("k", Reading(11.0, 1500, 7, 101.0))
    assert d.bytes == 2000 and d.packets == 2 and not d.gap


def test_reset_of_a_recreated_entry_counts_only_new_bytes(tr):
    tr.update("k", Reading(10.0, 9_000_000, 9000, 500.0))
    d = tr.update("k", Reading(11.0, 4000, 4, 0.5))  # re-added half a second ago
    assert d.bytes == 4000 and not d.gap


def test_reset_with_unknown_history_is_a_gap(tr):
    tr.update("k", Reading(10.0, 9_000_000, 9000, 500.0))
    d = tr.update("k", Reading(13.0, 4000, 4, 2.5))  # re-created, but 3 s passed: ambiguous?
    assert not d.gap and d.bytes == 4000  # younger than the interval: all its bytes are new
    d = tr.update("k", Reading(14.0, 100, 1, 0.1))
    assert d.bytes == 100
    tr.update("j", Reading(10.0, 50, 1, 10.0))
    d = tr.update("j", Reading(12.0, 10, 1, 4.0))  # re-created 4 s ago, last reading 2 s ago
    assert d.gap and d.bytes == 0 and "restarted" in d.reason


def test_duplicate_reply_is_ignored_and_keeps_the_baseline(tr):
    tr.update("k", Reading(10.0, 1000, 1, 100.0))
    assert tr.update("k", Reading(10.05, 1000, 1, 100.05)) is None
    d = tr.update("k", Reading(11.0, 2000, 2, 101.0))
    assert d.bytes == 1000 and d.dt == pytest.approx(1.0)


def test_late_reply_right_after_the_next_one_cannot_spike(tr):
    tr.update("k", Reading(10.0, 0, 0, 100.0))
    tr.update("k", Reading(11.0, 125_000, 100, 101.0))
    # a reply delayed in the network arrives 50 ms after the next one, with a newer count
    assert tr.update("k", Reading(11.05, 131_250, 105, 101.05)) is None


def test_missing_replies_give_a_gap_not_an_average(tr):
    tr.update("k", Reading(10.0, 0, 0, 100.0))
    d = tr.update("k", Reading(20.0, 1_250_000, 1000, 110.0))
    assert d.gap and "no reading for 10.0 s" in d.reason
    d = tr.update("k", Reading(21.0, 1_375_000, 1100, 111.0))  # the new baseline works
    assert d.bytes == 125_000 and not d.gap


def test_implausible_rate_is_a_gap(tr):
    tr.update("k", Reading(10.0, 0, 0, 100.0))
    d = tr.update("k", Reading(11.0, 10**12, 1, 101.0))  # 8 Tbit/s
    assert d.gap and "implausible" in d.reason


def test_new_entry_inside_the_window_counts_from_zero(tr):
    d = tr.update("k", Reading(11.0, 5000, 5, 0.4), window_s=1.0)
    assert d.bytes == 5000 and d.t0 == pytest.approx(10.6)
    assert tr.update("old", Reading(11.0, 5000, 5, 30.0), window_s=1.0) is None


def test_bad_parameters():
    with pytest.raises(ValueError, match="min_dt_s"):
        CounterTracker(min_dt_s=5, max_dt_s=1)
