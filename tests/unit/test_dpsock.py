# ruff: noqa: E501 - ss prints long lines
"""The datapath's receive-socket drops, from ``ss`` output."""

from __future__ import annotations

from emulation.dpsock import between, parse_send_buffer, parse_ss
from emulation.lab import LINK_QUEUE_MAX, LINK_QUEUE_MIN, link_queue_packets

SS = """Netid State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess
p_raw UNCONN 0      0                [0]:*                *     users:(("ovs-vswitchd",pid=7,fd=120)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d0)
p_raw UNCONN 0      0     *:nsls1-eth1       *     users:(("ovs-vswitchd",pid=7,fd=40)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d12)
p_raw UNCONN 0      0     *:nsls1-eth2       *     users:(("ovs-vswitchd",pid=7,fd=41)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d0)
p_raw UNCONN 0      0     *:ntms3-eth1       *     users:(("ovs-vswitchd",pid=7,fd=42)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o176,bl0,d5)
p_raw UNCONN 0      0     *:nsls1-eth1       *     users:(("tcpdump",pid=9,fd=3)) skmem:(r0,rb212992,t0,tb212992,f0,w0,o0,bl0,d99)
"""


def test_only_the_datapaths_sockets_under_the_prefix_count():
    assert parse_ss(SS, "nsl") == {"nsls1-eth1": 12, "nsls1-eth2": 0}
    assert parse_ss(SS) == {"nsls1-eth1": 12, "nsls1-eth2": 0, "ntms3-eth1": 5}
    # older ss prints no State column
    assert parse_ss("p_raw 0 0 *:nsls2-eth3 * users:((\"ovs-vswitchd\",pid=7,fd=4)) "
                    "skmem:(r0,rb1,t0,tb1,f0,w0,o0,bl0,d3)") == {"nsls2-eth3": 3}


def test_drops_during_a_run_are_the_difference_and_a_new_socket_counts_from_zero():
    assert between({"a": 10, "b": 4}, {"a": 15, "b": 4, "c": 2}) == {"a": 5, "c": 2}
    assert between({"a": 10}, {"a": 3}) == {"a": 3}  # recreated in between
    assert between({}, {}) == {}


def test_the_shared_send_socket_is_the_unbound_one():
    assert parse_send_buffer(SS) == 212992
    assert parse_send_buffer(SS.replace("[0]:*", "*:nsls9-eth9")) is None  # not made yet


def test_link_queues_are_what_three_full_ones_of_the_send_buffer_pay_for():
    assert link_queue_packets(212992) == 30  # the kernel's default: about 90 frames in all
    assert link_queue_packets(8 << 20) == LINK_QUEUE_MAX
    assert link_queue_packets(4096) == LINK_QUEUE_MIN
