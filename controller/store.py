"""The telemetry store: SQLite in WAL mode, one file, schema versioned with migrations.

Everything that touches SQL lives in this module, so a server database (PostgreSQL/TimescaleDB)
can replace it behind the same methods.

Layout: ``series`` names every time series (see :mod:`controller.telemetry.samples`);
``points`` holds (series, t, value, note) with ``value`` NULL for a gap; ``agent_seq`` holds the
last sequence number accepted from each host agent and ``agent_samples`` one row per accepted
agent sample, so a resent sample is recognised and never stored twice.

Durability: the poller's samples go through :class:`BatchWriter`, a thread that commits one
transaction per ``flush_interval_s`` (default 1 s). A crash or ``kill -9`` loses at most the
samples of the last unflushed interval - one poll cycle at the defaults: the samples of every
series for that second. WAL with ``synchronous=NORMAL`` keeps committed transactions across a
process crash; the file opens cleanly afterwards (SQLite replays the WAL). Agent samples are
written synchronously and acknowledged only after their transaction commits.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .telemetry.samples import Sample

LOG = logging.getLogger("netshadow.store")

MIGRATIONS: list[list[str]] = [
    # version 1
    [
        "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE points (series_id INTEGER NOT NULL REFERENCES series(id), t REAL NOT NULL,"
        " value REAL, note TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX points_series_t ON points (series_id, t)",
        "CREATE INDEX points_t ON points (t)",
        "CREATE TABLE agent_seq (host TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
        "CREATE TABLE agent_samples (host TEXT NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL,"
        " received REAL NOT NULL)",
        "CREATE INDEX agent_samples_host ON agent_samples (host, seq)",
    ],
    # version 2: the audit log of plan changes
    [
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, t REAL NOT NULL, actor TEXT NOT NULL,"
        " action TEXT NOT NULL, plan TEXT NOT NULL, detail TEXT NOT NULL, outcome TEXT NOT NULL)",
    ],
    # version 3: scan history, per host pair and port (controller.scans)
    [
        "CREATE TABLE scans (id INTEGER PRIMARY KEY, t REAL NOT NULL, origin TEXT NOT NULL,"
        " src TEXT NOT NULL, dst TEXT NOT NULL, proto TEXT NOT NULL, port INTEGER,"
        " expected INTEGER NOT NULL, reachable INTEGER NOT NULL, rtt_ms REAL)",
        "CREATE INDEX scans_pair_t ON scans (src, dst, t)",
        "CREATE INDEX scans_t ON scans (t)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
MAX_AUDIT_ENTRIES = 10_000  # the newest are kept; plans are at most 256 KiB each


class StoreError(RuntimeError):
    """The store file cannot be used (unreadable, or written by a newer netshadow)."""


class TooManyPoints(ValueError):
    """A query would return more than the ``max_points`` it was allowed."""


class Store:
    def __init__(self, path: str | Path, retention_s: float = 7 * 86400):
        if retention_s <= 0:
            raise StoreError(f"retention_s: must be > 0 (got {retention_s!r})")
        self.path = str(path)
        self.retention_s = retention_s
        self._local = threading.local()
        self._ids: dict[str, int] = {}
        self._ids_lock = threading.Lock()
        self._migrate()

    # ------------------------------------------------------------------ connections
    def _conn(self) -> sqlite3.Connection:
        """One connection per thread (sqlite3 connections are not shared across threads)."""
        c = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except sqlite3.Error as e:
                raise StoreError(f"db: cannot open {self.path}: {e}") from None
            try:
                c.execute("PRAGMA journal_mode=WAL")
                c.execute("PRAGMA synchronous=NORMAL")
                c.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as e:
                c.close()
                raise StoreError(f"db: {self.path} is not a netshadow store: {e}") from None
            self._local.conn = c
        return c

    def _migrate(self) -> None:
        c = self._conn()
        try:
            version = c.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise StoreError(f"db: {self.path} is not a netshadow store: {e}") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"db: {self.path} has schema version {version}, newer than this "
                             f"netshadow's {SCHEMA_VERSION}")
        for v in range(version, SCHEMA_VERSION):
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in MIGRATIONS[v]:
                    c.execute(stmt)
                c.execute(f"PRAGMA user_version = {v + 1}")
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            LOG.info("store %s migrated to schema version %d", self.path, v + 1)

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    # ------------------------------------------------------------------ writes
    def _series_id(self, c: sqlite3.Connection, name: str, new: dict[str, int]) -> int:
        """The id of series ``name``, creating it inside the caller's open transaction. Ids created
        there go into ``new`` and reach the shared cache only once that transaction commits
        (:meth:`_transaction`): an id from a rolled-back insert would be handed to the next new
        series, and one series' points would land under another's name."""
        sid = self._ids.get(name) or new.get(name)
        if sid is None:
            c.execute("INSERT OR IGNORE INTO series (name) VALUES (?)", (name,))
            sid = c.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
            new[name] = sid
        return sid

    def _transaction(self, c: sqlite3.Connection, body: Callable[[dict[str, int]], object],
                     begin: str = "BEGIN") -> object:
        """Run ``body(new_ids)`` in one transaction; on any failure roll back and leave the
        in-memory state (the id cache) exactly as it was."""
        new: dict[str, int] = {}
        c.execute(begin)
        try:
            out = body(new)
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        if new:
            with self._ids_lock:
                self._ids.update(new)
        return out

    def write(self, samples: Iterable[Sample]) -> int:
        """Write samples in one transaction; returns how many."""
        c = self._conn()

        def body(new):
            rows = [(self._series_id(c, s.series, new), s.t, s.value, s.note) for s in samples]
            c.executemany("INSERT INTO points (series_id, t, value, note) VALUES (?, ?, ?, ?)", rows)
            return len(rows)

        return self._transaction(c, body)

    def agent_last_seq(self, host: str) -> int:
        """The last sequence number stored from ``host`` (0: none yet)."""
        row = self._conn().execute("SELECT seq FROM agent_seq WHERE host = ?", (host,)).fetchone()
        return row[0] if row else 0

    def ingest_agent(self, host: str, batch: list[tuple[int, float, list[Sample]]],
                     now: float) -> tuple[int, int]:
        """Store agent samples ``(seq, t, samples)`` with ``seq`` above the last one accepted from
        ``host``, atomically; a seq that occurs twice in ``batch`` is stored once (the first).
        Returns (last accepted seq, number of readings newly stored)."""
        c = self._conn()

        def body(new):
            row = c.execute("SELECT seq FROM agent_seq WHERE host = ?", (host,)).fetchone()
            last = row[0] if row else 0
            fresh, seen = [], set()
            for seq, t, ss in sorted(batch, key=lambda b: b[0]):
                if seq > last and seq not in seen:
                    seen.add(seq)
                    fresh.append((seq, t, ss))
            points = [(self._series_id(c, s.series, new), s.t, s.value, s.note)
                      for _, _, ss in fresh for s in ss]
            c.executemany("INSERT INTO points (series_id, t, value, note) VALUES (?, ?, ?, ?)", points)
            c.executemany("INSERT INTO agent_samples (host, seq, t, received) VALUES (?, ?, ?, ?)",
                          [(host, seq, t, now) for seq, t, _ in fresh])
            if fresh:
                last = fresh[-1][0]
                c.execute("INSERT INTO agent_seq (host, seq) VALUES (?, ?) ON CONFLICT(host) "
                          "DO UPDATE SET seq = excluded.seq", (host, last))
            return last, len(fresh)

        return self._transaction(c, body, "BEGIN IMMEDIATE")

    def prune(self, now: float) -> int:
        """Delete points older than the retention; returns how many."""
        c = self._conn()
        cur = c.execute("DELETE FROM points WHERE t < ?", (now - self.retention_s,))
        n = cur.rowcount
        c.execute("DELETE FROM agent_samples WHERE t < ?", (now - self.retention_s,))
        c.execute("DELETE FROM scans WHERE t < ?", (now - self.retention_s,))
        c.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (MAX_AUDIT_ENTRIES,))
        return n

    def record_scans(self, results) -> int:
        """Store :class:`controller.scans.ScanResult` rows in one transaction; how many."""
        rows = [(r.t, r.origin, r.src, r.dst, r.proto, r.port, int(r.expected), int(r.reachable),
                 r.rtt_ms) for r in results]
        c = self._conn()

        def body(new):
            c.executemany("INSERT INTO scans (t, origin, src, dst, proto, port, expected, reachable,"
                          " rtt_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return len(rows)

        return self._transaction(c, body)

    def scans(self, since: float | None = None, until: float | None = None, src: str | None = None,
              dst: str | None = None, origin: str | None = None, limit: int = 1000) -> list:
        """Stored scan results, newest first, at most ``limit``."""
        from .scans import ScanResult

        where, args = ["t >= ?", "t <= ?"], [-1e300 if since is None else since,
                                              1e300 if until is None else until]
        for col, v in (("src", src), ("dst", dst), ("origin", origin)):
            if v is not None:
                where.append(f"{col} = ?")
                args.append(v)
        rows = self._conn().execute(
            "SELECT t, origin, src, dst, proto, port, expected, reachable, rtt_ms FROM scans WHERE "
            + " AND ".join(where) + " ORDER BY t DESC, id DESC LIMIT ?", (*args, limit))
        return [ScanResult(t, o, s, d, p, port, bool(e), bool(r), rtt)
                for t, o, s, d, p, port, e, r, rtt in rows]

    # ------------------------------------------------------------------ reads
    def series_names(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT name FROM series ORDER BY name")]

    def query(self, names: list[str], since: float | None = None, until: float | None = None,
              step: float | None = None,
              max_points: int | None = None) -> dict[str, list[tuple[float, float | None]]]:
        """Points of ``names`` in ``[since, until]``; with ``step`` (seconds), means per bucket of
        ``step`` seconds starting at multiples of ``step`` (a bucket of only gaps is a gap). With
        ``max_points``, stops reading and raises :class:`TooManyPoints` once more would come."""
        c = self._conn()
        out: dict[str, list] = {n: [] for n in names}
        total = 0
        lo = -1e300 if since is None else since
        hi = 1e300 if until is None else until
        for name in names:
            row = c.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()
            if row is None:
                continue
            if step:
                rows = c.execute(
                    "SELECT CAST(t / ? AS INTEGER) * ? AS b, AVG(value) FROM points "
                    "WHERE series_id = ? AND t >= ? AND t <= ? GROUP BY b ORDER BY b",
                    (step, step, row[0], lo, hi))
            else:
                rows = c.execute("SELECT t, value FROM points WHERE series_id = ? AND t >= ? "
                                 "AND t <= ? ORDER BY t", (row[0], lo, hi))
            pts = out[name]
            for t, v in rows:
                pts.append((float(t), v))
                total += 1
                if max_points is not None and total > max_points:
                    raise TooManyPoints(f"more than {max_points} points")
        return out

    def record_audit(self, t: float, actor: str, action: str, plan: dict, detail: dict,
                     outcome: str) -> None:
        """Append to the audit log; strict JSON only (a NaN would break every reader of it)."""
        from topologies.jsonio import dumps

        self._conn().execute("INSERT INTO audit (t, actor, action, plan, detail, outcome) "
                             "VALUES (?, ?, ?, ?, ?, ?)",
                             (t, actor, action, dumps(plan), dumps(detail), outcome))

    def audit(self, limit: int = 100) -> list[dict]:
        import json

        rows = self._conn().execute("SELECT t, actor, action, plan, detail, outcome FROM audit "
                                    "ORDER BY id DESC LIMIT ?", (limit,))
        return [{"t": t, "actor": a, "action": act, "plan": json.loads(p), "detail": json.loads(d),
                 "outcome": o} for t, a, act, p, d, o in rows]

    def agent_samples(self, host: str) -> list[tuple[int, float]]:
        return list(self._conn().execute(
            "SELECT seq, t FROM agent_samples WHERE host = ? ORDER BY seq", (host,)))


class BatchWriter:
    """Writes samples off the OpenFlow event path: ``put`` queues, a thread commits one
    transaction per ``flush_interval_s`` and prunes old points every ``prune_every_s``."""

    def __init__(self, store: Store, flush_interval_s: float = 1.0, prune_every_s: float = 60.0,
                 on_write: Callable[[int, float], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        self.store = store
        self.flush_interval_s = flush_interval_s
        self.prune_every_s = prune_every_s
        self.on_write = on_write
        self.on_error = on_error
        self.q: queue.Queue[list[Sample]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="netshadow-store", daemon=True)
        self._last_prune = 0.0

    def start(self) -> BatchWriter:
        self._thread.start()
        return self

    def put(self, samples: list[Sample]) -> None:
        if samples:
            self.q.put(samples)

    def flush(self) -> int:
        batch: list[Sample] = []
        while True:
            try:
                batch.extend(self.q.get_nowait())
            except queue.Empty:
                break
        if not batch:
            return 0
        t0 = time.perf_counter()
        try:
            n = self.store.write(batch)
        except Exception as e:  # noqa: BLE001 - logged, counted, and the writer keeps going
            LOG.exception("store write of %d samples failed", len(batch))
            if self.on_error:
                self.on_error(e)
            return 0
        if self.on_write:
            self.on_write(n, time.perf_counter() - t0)
        return n

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()
            now = time.time()
            if now - self._last_prune >= self.prune_every_s:
                self._last_prune = now
                try:
                    self.store.prune(now)
                except Exception as e:  # noqa: BLE001
                    LOG.exception("store prune failed")
                    if self.on_error:
                        self.on_error(e)
        self.flush()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
