"""A TCP connection's smoothed RTT read from the kernel over sock_diag: the busiest connection to
the address and port is the one read, an idle one beside it is not."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from emulation import tcprtt


def _reply(dst: str, dport: int, rtt_us: int, acked: int) -> bytes:
    info = bytearray(tcprtt.TCPI_BYTES_ACKED + 8)
    struct.pack_into("=I", info, tcprtt.TCPI_RTT, rtt_us)
    struct.pack_into("=Q", info, tcprtt.TCPI_BYTES_ACKED, acked)
    attr = struct.pack("=HH", 4 + len(info), tcprtt.INET_DIAG_INFO) + bytes(info)
    msg = struct.pack("=BBBB", socket.AF_INET, tcprtt.TCP_ESTABLISHED, 0, 0) + \
        struct.pack("!HH16s16s", 40000, dport, bytes(16), socket.inet_aton(dst) + bytes(12)) + \
        bytes(12) + bytes(20) + attr  # interface, cookie; expires .. inode
    return struct.pack("=IHHII", 16 + len(msg), tcprtt.SOCK_DIAG_BY_FAMILY, 2, 1, 0) + msg


def test_a_dump_reply_gives_each_sockets_address_rtt_and_bytes():
    done = struct.pack("=IHHII", 20, tcprtt.NLMSG_DONE, 2, 1, 0) + bytes(4)
    got, finished = tcprtt.parse(_reply("10.0.0.2", 5201, 1830, 10_000) +
                                 _reply("10.0.0.2", 5201, 90, 37) + done)
    assert finished and got == [("10.0.0.2", 5201, 1830, 10_000), ("10.0.0.2", 5201, 90, 37)]


def test_an_error_reply_is_raised():
    err = struct.pack("=IHHII", 36, tcprtt.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    with pytest.raises(OSError, match="sock_diag"):
        tcprtt.parse(err)


def test_the_kernels_rtt_of_the_busiest_connection_is_sampled():
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    idle = socket.create_connection(("127.0.0.1", port))  # like iperf3's control connection
    busy = socket.create_connection(("127.0.0.1", port))
    peers = [srv.accept()[0], srv.accept()[0]]
    stop = threading.Event()

    def drain(s):
        while not stop.is_set() and s.recv(65536):
            pass

    readers = [threading.Thread(target=drain, args=(p,), daemon=True) for p in peers]
    for t in readers:
        t.start()
    try:
        busy.sendall(bytes(1 << 20))
        samples = tcprtt.rtt_series("127.0.0.1", port, 0.01, 0.3)
        assert len(samples) >= 10 and all(0 < s < 50 for s in samples), samples
        flows = [f for f in tcprtt.sample(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                                        tcprtt.NETLINK_SOCK_DIAG), 1)
                 if f[:2] == ("127.0.0.1", port)]
        assert len(flows) == 2 and max(f[3] for f in flows) >= 1 << 20
    finally:
        stop.set()
        for s in (idle, busy, *peers, srv):
            s.close()
