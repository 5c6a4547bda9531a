"""The SQLite store: migrations, queries with resampling, agent de-duplication, retention, and a
kill -9 that loses at most the last unflushed batch."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from controller.store import SCHEMA_VERSION, BatchWriter, Store, StoreError
from controller.telemetry.samples import Sample


def test_new_store_is_wal_and_versioned(tmp_path):
    s = Store(tmp_path / "t.db")
    c = sqlite3.connect(tmp_path / "t.db")
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    s.close()
    Store(tmp_path / "t.db").close()  # reopening migrates nothing and keeps working


def test_newer_schema_is_refused(tmp_path):
    c = sqlite3.connect(tmp_path / "t.db")
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(StoreError, match="newer"):
        Store(tmp_path / "t.db")


def test_not_a_database(tmp_path):
    (tmp_path / "x.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a netshadow store"):
        Store(tmp_path / "x.db")


def test_write_query_resample_and_gaps(tmp_path):
    s = Store(tmp_path / "t.db")
    s.write([Sample(100.0 + i, "app/red/web/fwd/bps", float(i)) for i in range(10)])
    s.write([Sample(110.0, "app/red/web/fwd/bps", None, "no reply")])
    raw = s.query(["app/red/web/fwd/bps"], since=102, until=105)["app/red/web/fwd/bps"]
    assert raw == [(102.0, 2.0), (103.0, 3.0), (104.0, 4.0), (105.0, 5.0)]
    res = s.query(["app/red/web/fwd/bps"], step=5)["app/red/web/fwd/bps"]
    assert res == [(100.0, 2.0), (105.0, 7.0), (110.0, None)]
    assert s.query(["nothing/here"]) == {"nothing/here": []}
    assert s.series_names() == ["app/red/web/fwd/bps"]


def test_agent_batches_are_deduplicated(tmp_path):
    s = Store(tmp_path / "t.db")

    def batch(seqs):
        return [(q, 100.0 + q, [Sample(100.0 + q, "host/red/h1/cpu", 0.5)]) for q in seqs]

    assert s.ingest_agent("h1", batch([1, 2, 3]), now=200.0) == (3, 3)
    assert s.ingest_agent("h1", batch([2, 3, 4]), now=201.0) == (4, 1)  # resend after lost ack
    assert s.ingest_agent("h1", batch([]), now=202.0) == (4, 0)
    assert [q for q, _ in s.agent_samples("h1")] == [1, 2, 3, 4]
    assert len(s.query(["host/red/h1/cpu"])["host/red/h1/cpu"]) == 4


def test_retention(tmp_path):
    s = Store(tmp_path / "t.db", retention_s=60)
    s.write([Sample(t, "switch/s1/flows", 1.0) for t in (0.0, 50.0, 100.0)])
    assert s.prune(now=120.0) == 2  # older than 120 - 60 s
    assert [t for t, _ in s.query(["switch/s1/flows"])["switch/s1/flows"]] == [100.0]
    with pytest.raises(StoreError, match="retention_s"):
        Store(tmp_path / "u.db", retention_s=0)


def test_batch_writer_flushes_on_stop(tmp_path):
    s = Store(tmp_path / "t.db")
    written = []
    w = BatchWriter(s, flush_interval_s=30, on_write=lambda n, sec: written.append(n)).start()
    w.put([Sample(1.0, "switch/s1/flows", 3.0)] * 5)
    w.stop()
    assert written == [5]
    assert len(s.query(["switch/s1/flows"])["switch/s1/flows"]) == 5


WRITER = textwrap.dedent("""
    import sys, time
    from controller.store import BatchWriter, Store
    from controller.telemetry.samples import Sample
    w = BatchWriter(Store(sys.argv[1]), flush_interval_s=1.0).start()
    n = 0
    while True:
        w.put([Sample(time.time(), f"switch/s{i}/flows", float(n)) for i in range(100)])
        n += 100
        print(n, flush=True)
        time.sleep(0.1)
""")


def test_kill_9_loses_at_most_the_unflushed_batch(tmp_path):
    db = tmp_path / "crash.db"
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        queued = []
        for line in p.stdout:  # several flush intervals of writing, however slow the machine
            queued.append(int(line))
            if queued[-1] >= 3500:
                break
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        queued += [int(x) for x in p.stdout.read().split()]
    finally:
        if p.poll() is None:
            p.kill()
    s = Store(db)  # opens cleanly after the crash
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = c.execute("SELECT COUNT(*) FROM points").fetchone()[0]
    per_second = 100 * 10
    assert stored > 0 and stored <= queued[-1]
    assert queued[-1] - stored <= per_second * 1.5  # one flush interval (+ scheduling slack)
    s.close()
