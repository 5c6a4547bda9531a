"""Exponential smoothing chosen by information criterion: statsforecast's AutoETS as a candidate.

The hand-written :class:`models.baselines.HoltWinters` searches a coarse grid of three smoothing
parameters for one model form (additive level, trend and season). ETS (Hyndman et al. 2002;
*Forecasting: Principles and Practice*, ch. 8) picks the form too - error, trend (none,
additive, damped) and season (none, additive, multiplicative) - and estimates the parameters and
initial states by maximum likelihood, choosing among the forms by AICc. Nixtla's ``statsforecast``
implements it (a port of R's ``forecast::ets``); measured on the generalisation suite
(``benchmarks/library_candidates.py``) its MAE was 0.92x / 0.92x / 0.99x the hand-written
Holt-Winters' at h = 1 / 3 / 12 on the median scenario. Holt-Winters stays a candidate beside it:
statsforecast's ETS, like R's, fits no season longer than :data:`MAX_SEASON` steps, so on a
5-minute or half-hourly series it is non-seasonal, and a daily season held by Holt-Winters is
what wins on such a series with a strong one.

**No undamped trend.** The forms searched have no trend or a damped one (Gardner & McKenzie
1985; the damped trend is the robust default of automatic forecasting, FPP 8.2). An undamped
trend fitted with near-zero smoothing is a straight line through the history, extrapolated
without end; ``benchmarks/library_candidates.py`` shows what that costs on
``nab-ec2_network_in_257a54-2d-history`` (the library's default search, ``sf_autoets``, against
this one, ``ets``).

How it forecasts: ``fit`` asks the library for the model of each series (form, smoothing
parameters; one search per form family, the lower AICc kept). An aligned forecast over any
window of values (:class:`models.base.Forecaster`) runs the library's state-space filter
(``pegelsresid_C``) over the window with those parameters, from initial states the library's
own heuristic (``initstate``) draws from the window's first steps, and projects each step's
state ``h`` steps ahead in closed form (level plus the damped trend, plus or times the season's
state for the target's phase) - one pass over the window for every origin, where calling the
library's forecast once per origin would filter the window again each time. Gaps read as the
value before them. A series the library cannot fit (too short) or a window the fitted form
cannot take (a multiplicative one over zeros) is forecast by persistence there, and the note
says so where it is the fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import Forecaster
from .baselines import _shift, infer_season

MAX_SEASON = 24  # statsforecast's ETS, like R's ets, fits no longer season
MIN_ROWS = 10  # steps a series needs to be fitted (the library's initial states read ten)
# the forms searched (the library's model string, damped): no trend, or a damped one
FORMS = (("ZNZ", None), ("ZAZ", True))


class ETS(Forecaster):
    """statsforecast's AutoETS per series (see the module docstring). ``season`` in steps
    (inferred when None); the model is seasonal only when it is 2..:data:`MAX_SEASON` steps."""

    name = "ets"

    def __init__(self, season: int | None = None, **kw):
        super().__init__(**kw)
        self.season = season
        self.models: list[dict | None] = []  # per series: the library's fitted model, or None
        self.failed: dict[str, str] = {}  # series name -> why it is forecast by persistence

    @property
    def period(self) -> int:
        """The season the ETS model may hold, in steps (1: none)."""
        return self.season if self.season is not None and 2 <= self.season <= MAX_SEASON else 1

    def _learn(self, series):
        from statsforecast.models import AutoETS

        if self.season is None:
            self.season = infer_season(series)
        self.models, self.failed = [], {}
        values = _filled(series.values)
        for j, name in enumerate(series.names):
            y = values[:, j][np.isfinite(values[:, j])]
            if len(y) < MIN_ROWS:
                self.models.append(None)
                self.failed[name] = f"{len(y)} steps are too few to fit (at least {MIN_ROWS})"
                continue
            fits, why = [], ""
            for form, damped in FORMS:
                try:
                    fits.append(AutoETS(season_length=self.period, model=form, damped=damped).fit(y).model_)
                except Exception as e:  # noqa: BLE001 - the library raises bare Exception on some forms
                    why = str(e)
            self.models.append(min(fits, key=lambda f: f["aicc"]) if fits else None)
            if not fits:
                self.failed[name] = f"the library could not fit it ({why})"

    def context(self, horizon=1):
        # the filter starts from states drawn from the window's first steps; a window as long as
        # Holt-Winters' lets them settle (it is the selection's window anyway)
        return max(4 * (self.season or 1), 4 * MIN_ROWS) + horizon

    def point(self, values, h):
        values = np.asarray(values, dtype=float)
        out = _shift(values, h)  # persistence where a series has no model
        filled = _filled(values)
        for j, model in enumerate(self.models):
            if model is not None:
                f = _aligned(model, filled[:, j], h)
                if f is not None:
                    out[:, j] = f
        return np.maximum(out, 0.0)

    def components(self, name: str) -> str | None:
        """The fitted form of a series as the library names it - error, trend, season, then
        ``D`` for a damped trend or ``N`` (``AAND``: additive error, damped additive trend, no
        season); None when the series is forecast by persistence."""
        m = self.models[self.series.names.index(name)]
        return None if m is None else m["components"]

    def note(self, name: str) -> str:
        return f"persistence: {self.failed[name]}" if name in self.failed else ""


def _filled(values: np.ndarray) -> np.ndarray:
    """Gaps read as the value before them (a leading gap stays NaN)."""
    return pd.DataFrame(values).ffill().to_numpy(dtype=float)


def _aligned(model: dict, y: np.ndarray, h: int) -> np.ndarray | None:
    """(T,) row ``i``: the forecast of ``y[i]`` from the states after ``y[i - h]`` (NaN before
    the filter has read a step); None when the window cannot be filtered with this model (too
    short, or values the model's form cannot take)."""
    from statsforecast.ets import initstate, pegelsresid_C

    T = len(y)
    ok = np.flatnonzero(np.isfinite(y))
    first = int(ok[0]) if len(ok) else T
    err, trend, season, damped = model["components"][:4]
    m = int(model["m"]) if season != "N" else 1
    x = y[first:]
    # the initial states are drawn from the first ``span`` steps (three seasons: the library
    # decomposes them), so nothing is forecast from a state before them: it would read them
    span = max(MIN_ROWS, 3 * m if season != "N" else 0)
    if len(x) < span + h:
        return None
    alpha, beta, gamma, phi = (float(v) for v in model["par"][:4])
    try:
        with np.errstate(all="ignore"):
            init = initstate(x[:span], m, trend, season)
            if season != "N":  # the last season's state is implied: the seasons sum to 0 (or m)
                first_season = 2 if trend != "N" else 1
                init = np.append(init, m * (season == "M") - init[first_season:].sum())
            _, _, states, _ = pegelsresid_C(x, m, init, err, trend, season, damped == "D", alpha,
                                            beta, gamma, phi, 3)
    except Exception:  # noqa: BLE001 - e.g. a multiplicative season over zeros
        return None
    # states[k] holds the state after x[k - 1]; the forecast of x[k - 1 + h] is made from it
    level = states[:, 0]
    slope = states[:, 1] if trend != "N" else np.zeros(len(states))
    if trend == "N":
        damp = 0.0
    elif damped == "D":  # phi + phi^2 + ... + phi^h (FPP 8.2; the library adds phi twice)
        damp = float(np.sum(phi ** np.arange(1, h + 1)))
    else:
        damp = float(h)
    f = level + damp * slope
    if season != "N":
        # the season's states, newest first; the target's phase is (m - h) mod m of them
        s = states[:, (2 if trend != "N" else 1) + (m - h) % m]
        f = f + s if season == "A" else f * s
    out = np.full(T, np.nan)
    # states[k] (k = 0..len(x)) forecasts row first + k - 1 + h
    k = np.arange(span, len(states))  # states after reading x[k - 1], i.e. row first + k - 1
    rows = first + k - 1 + h
    keep = rows < T
    out[rows[keep]] = f[k[keep]]
    return np.where(np.isfinite(out), out, np.nan)
