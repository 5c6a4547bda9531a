"""Turn cumulative OpenFlow counters into rates without ever inventing traffic.

Each counter (a flow entry, a port, a meter) is tracked by a key. A new reading is compared with
the previous one of the same key:

* ``duration`` (seconds the entry/port has existed, from the reply) going *down* means the entry
  was re-created (flow removed and re-added, switch re-programmed, bridge restarted): the counter
  restarted at zero. If the entry is younger than the time since the previous reading, all of
  its bytes are new and the delta is the current value; otherwise some of its bytes predate our
  baseline in an unknown way, and the reading only rebaselines (a gap, not a guess).
* bytes going down while ``duration`` keeps growing is a 64-bit counter wrap: the delta is taken
  modulo 2**64.
* a reading less than ``min_dt_s`` after the previous one (a duplicate or a late reply arriving
  right after the next one) is dropped, so it can never produce a spike.
* more than ``max_dt_s`` since the previous reading (missed replies, a disconnected switch) gives a
  gap and a new baseline: a rate averaged over a long hole would hide what happened in it.
* a rate above ``max_bps`` (physically impossible on the network) is reported as a gap.

Entries seen for the first time are new if their duration is below the time since the tracker's
previous cycle for that switch (``window_s``); they then contribute all their bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

WRAP = 2**64


@dataclass(frozen=True)
class Reading:
    """One cumulative counter reading at wall time ``t`` (seconds)."""

    t: float
    bytes: int
    packets: int
    duration_s: float


@dataclass(frozen=True)
class Delta:
    """Bytes and packets counted in ``[t0, t1]``; ``gap`` means the interval has no valid delta."""

    t0: float
    t1: float
    bytes: int
    packets: int
    gap: bool = False
    reason: str = ""

    @property
    def dt(self) -> float:
        return self.t1 - self.t0


class CounterTracker:
    def __init__(self, min_dt_s: float = 0.2, max_dt_s: float = 5.0, max_bps: float = 1e11):
        if not 0 < min_dt_s < max_dt_s:
            raise ValueError(f"min_dt_s/max_dt_s: need 0 < min_dt_s < max_dt_s "
                             f"(got {min_dt_s!r}, {max_dt_s!r})")
        self.min_dt_s = min_dt_s
        self.max_dt_s = max_dt_s
        self.max_bps = max_bps
        self.last: dict[object, Reading] = {}

    def forget(self, key) -> None:
        self.last.pop(key, None)

    def update(self, key, r: Reading, window_s: float | None = None) -> Delta | None:
        """Record ``r``; return the delta since the previous reading of ``key``, or ``None`` when
        there is nothing to report (first sight of an old entry, or a duplicate)."""
        prev = self.last.get(key)
        if prev is None:
            self.last[key] = r
            if window_s is not None and r.duration_s <= window_s:
                # created since the last cycle: everything it counted is new
                return Delta(r.t - r.duration_s, r.t, r.bytes, r.packets)
            return None
        dt = r.t - prev.t
        if dt < self.min_dt_s:
            return None  # duplicate or late reply: keep the older baseline
        self.last[key] = r
        if dt > self.max_dt_s:
            return Delta(prev.t, r.t, 0, 0, gap=True, reason=f"no reading for {dt:.1f} s")
        if r.duration_s + 1e-3 < prev.duration_s:
            # the entry was re-created between the readings
            if r.duration_s <= dt:
                return self._checked(Delta(prev.t, r.t, r.bytes, r.packets))
            return Delta(prev.t, r.t, 0, 0, gap=True, reason="counter restarted")
        db, dp = r.bytes - prev.bytes, r.packets - prev.packets
        if db < 0 or dp < 0:
            db %= WRAP
            dp %= WRAP
        return self._checked(Delta(prev.t, r.t, db, dp))

    def _checked(self, d: Delta) -> Delta:
        if d.dt > 0 and d.bytes * 8 / d.dt > self.max_bps:
            return Delta(d.t0, d.t1, 0, 0, gap=True,
                         reason=f"implausible rate {d.bytes * 8 / d.dt:.3g} bit/s")
        return d
