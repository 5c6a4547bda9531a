"""Reading iperf3's JSON report: a failed run is an error naming iperf3's message, even where
iperf3 3.12 exits 0."""

from __future__ import annotations

import json

import pytest

from emulation.iperf import IperfError, _udp_sum


def test_a_complete_report_gives_its_sum():
    out = json.dumps({"end": {"sum": {"bytes": 1200, "packets": 1, "seconds": 1.0}}})
    assert _udp_sum(out, "iperf3 h1->h2") == {"bytes": 1200, "packets": 1, "seconds": 1.0}


def test_an_error_reported_with_exit_0_is_raised_with_iperfs_message():
    # what iperf3 3.12 prints, exiting 0, when its server goes away during a UDP run
    out = json.dumps({"start": {}, "intervals": [], "end": {},
                      "error": "control socket has closed unexpectedly"})
    with pytest.raises(IperfError, match=r"iperf3 h4->h5: control socket has closed unexpectedly"):
        _udp_sum(out, "iperf3 h4->h5")


def test_a_report_without_a_sum_or_json_is_an_error():
    with pytest.raises(IperfError, match="no end.sum"):
        _udp_sum(json.dumps({"end": {}}), "iperf3 h1->h2")
    with pytest.raises(IperfError, match="no JSON report"):
        _udp_sum("iperf3: error - unable to connect", "iperf3 h1->h2")
