"""The violation budget held online, per application (pure).

The operator sets a budget: the long-run share of steps in which an application's demand may
exceed the rate in force (default 1 %). No forecaster's quantile can be trusted to deliver that on
traffic it was never tuned on, so the planner does not trust it: it adds a **margin** to the
forecast's allocated quantile and moves the margin by the application's own outcomes, the online
quantile tracking of adaptive conformal inference (Gibbs & Candès, NeurIPS 2021) applied to the
margin, as in the quantile tracking of conformal PID control (Angelopoulos, Candès & Tibshirani,
NeurIPS 2023)::

    margin <- clip(margin + rate * (violated - budget), -limit, +limit)

A violated step raises the margin by ``rate * (1 - budget)``; a clean step lowers it by
``rate * budget``, so it settles where violations occur in ``budget`` of the steps. Because the
margin is bounded, the measured violation share after ``T`` steps is within
``(limit + rate) / (rate * T)`` of the budget whatever the forecaster does (the standard bound of
the update above). The margin is in units of the series' own *scale*, the mean absolute change
between consecutive measured steps, so one rate serves a 1 Mbit/s DNS flow and a 500 Mbit/s
backbone pair; a negative margin allocates below the forecast quantile where it over-covers.
Before any outcome is measured the margin is ``initial_margin`` (default one scale unit: until it
has shown otherwise, a forecaster is assumed to be as far off as repeating the last step).

**Floor.** A forecast far below what was just measured is not believed without evidence: the
requirement is at least the newest measurement plus the ``budget`` quantile of the one-step
changes measured in the observed window (the largest drop that recent history shows). A
forecast that collapses towards zero under a steady flow therefore allocates what the flow is
using, and a forecast of a drop that history does show is believed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon


@dataclass
class Margin:
    """One application's tracked margin (in scale units) and its measured outcomes."""

    margin: float = 0.0
    steps: int = 0
    violated: int = 0

    @property
    def share(self) -> float | None:
        """The measured violation share (None before the first scored step)."""
        return self.violated / self.steps if self.steps else None

    def update(self, violated: bool, budget: float, rate: float, limit: float,
               adapt: bool = True) -> None:
        """One measured step; ``adapt=False`` counts it without moving the margin (a violation
        no margin could have prevented, see :mod:`planner.core`)."""
        self.steps += 1
        self.violated += bool(violated)
        if adapt:
            self.margin = float(np.clip(self.margin + rate * (float(violated) - budget), -limit, limit))

    def as_list(self) -> list:
        return [self.margin, self.steps, self.violated]

    @classmethod
    def from_list(cls, v) -> Margin:
        m, s, n = v
        return cls(float(m), int(s), int(n))


DAY_S = 86400.0  # the window of :class:`Recent`
BUCKET_S = 3600.0  # ... kept in buckets of this many seconds


@dataclass
class Recent:
    """One application's outcomes over about the last day (whole hours, the newest partial):
    the evidence the planner's lift to the reactive reference reads (:mod:`planner.core`, step
    4). Counts since the start would make the lift deaf to a forecaster that turns bad after a
    long good run (its violations drown in the steps before), and would hold one that recovered
    until reacting's own violations caught up with its bad day's; in a day's window both pass
    within a day.

    ``buckets``: hour index (time // :data:`BUCKET_S`) -> [the planner's scored steps, its
    violated steps, the steps the reactive reference violated]."""

    buckets: dict[int, list[int]]

    def add(self, t: float, scored: bool = False, violated: bool = False,
            reference_violated: bool = False) -> None:
        """One outcome at time ``t`` (s): a step the planner scored (``violated`` or not), or one
        the reactive reference violated."""
        self._forget(t)
        b = self.buckets.setdefault(int(t // BUCKET_S), [0, 0, 0])
        b[0] += bool(scored)
        b[1] += bool(scored and violated)
        b[2] += bool(reference_violated)

    def totals(self, now: float) -> tuple[int, int, int]:
        """(scored steps, violated steps, reference's violated steps) over the day before
        ``now`` (s)."""
        self._forget(now)
        n, v, r = (sum(b[i] for b in self.buckets.values()) for i in range(3))
        return n, v, r

    def _forget(self, now: float) -> None:
        """Drop the buckets that ended a day or more before ``now`` (s)."""
        first = int((now - DAY_S) // BUCKET_S) + 1
        for old in [i for i in self.buckets if i < first]:
            del self.buckets[old]

    def as_list(self) -> list:
        return [[i, *b] for i, b in sorted(self.buckets.items())]

    @classmethod
    def from_list(cls, v) -> Recent:
        return cls({int(i): [int(a), int(b), int(c)] for i, a, b, c in v})


def scale(col: np.ndarray) -> float:
    """The series' scale, Mbit/s: the mean absolute change between consecutive measured steps of
    ``col`` (a small fraction of its level when it is constant; 0 when it is all zero or empty)."""
    v = col[np.isfinite(col)]
    if len(v) == 0:
        return 0.0
    d = np.abs(np.diff(v))
    s = float(d.mean()) if len(d) else 0.0
    return max(s, 0.01 * float(np.abs(v).mean()))


def floor(col: np.ndarray, budget: float) -> float | None:
    """The lowest requirement believed, Mbit/s: the newest measured value of ``col`` plus the
    ``budget`` quantile of its one-step changes (never above the newest value); None when fewer
    than two consecutive steps were measured."""
    finite = np.isfinite(col)
    if finite.sum() < 1:
        return None
    last = float(col[np.flatnonzero(finite)[-1]])
    d = np.diff(col)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return None
    return max(0.0, last + min(0.0, float(np.quantile(d, budget))))


MIN_SCORED = 12  # forecasts scored against persistence before the test below may speak


def worse_than_persistence(actual: np.ndarray, median: np.ndarray, previous: np.ndarray) -> float | None:
    """How likely forecasts no worse than persistence are to have done this badly: the one-sided
    p-value of the Wilcoxon signed-rank test that the absolute errors of the forecast ``median``
    of each step exceed those of repeating the step before (``previous``) - paired, step by step,
    so the series' own difficulty cancels. Each forecaster's errors are taken about their own
    median: a constant offset is what the budget's margin corrects, so only the spread beyond it
    counts against a forecaster. None with fewer than :data:`MIN_SCORED` scored steps or when
    the two forecasts' errors are equal at every step (persistence itself).

    This is evidence on every step's forecast, not only on the rare violated ones: a noisy or
    late forecaster shows it within an hour of five-minute steps, long before its violations
    are beyond doubt (:mod:`planner.core`, step 4)."""
    a, m, p = (np.asarray(v, dtype=float) for v in (actual, median, previous))
    ok = np.isfinite(a) & np.isfinite(m) & np.isfinite(p)
    if ok.sum() < MIN_SCORED:
        return None
    e, q = a[ok] - m[ok], a[ok] - p[ok]
    d = np.abs(e - np.median(e)) - np.abs(q - np.median(q))
    if not np.any(d):
        return None
    return float(wilcoxon(d, alternative="greater").pvalue)
