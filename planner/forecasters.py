"""The one forecaster factory: a model by name, built to serve the quantile and horizon asked of it.

``netshadow run``, ``netshadow replay`` and the demo build their forecasters here, so they train
the same model the same way. Every setting is honoured or refused with a :class:`PlannerError`
naming it: a name that is no forecaster, a quantile outside (0.5, 1), a horizon outside
1..:data:`MAX_HORIZON`. Quantiles: the default interval (:data:`models.forecast.DEFAULT_QUANTILES`)
plus the one the planner allocates.

The LSTM's input window follows the history it is trained on (a sixth of it, 8 to 48 steps); with
less than :data:`MIN_LSTM_ROWS` steps it is not trained and persistence forecasts instead, which
the returned note says. ``gbm`` is LightGBM on lagged changes (:mod:`models.gbm`), one model per
horizon over all the series; the selection holds it beside the LSTM and the baselines.

A covariate (the RTT history of each application's path, :mod:`models.covariate`) adds one
candidate to the selection - persistence corrected by the RTT's rise - that replaces the pool per
series and horizon only where it beat the pool on the backtest; the other forecasters do not read
it.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.base import Forecaster
from models.forecast import DEFAULT_QUANTILES, Forecast
from models.series import SeriesSet

from .core import PlannerError

BASELINES = ("persistence", "seasonal_naive", "moving_average", "holt_winters", "autoregression", "ets")
LEARNED = ("lstm", "gbm")  # candidates fitted by a learning library (TensorFlow, LightGBM)
FORECASTERS = ("selection", *LEARNED, *BASELINES)
MAX_HORIZON = 1000
MIN_WINDOW, MAX_WINDOW = 8, 48
MIN_LSTM_ROWS = 6 * MIN_WINDOW


@dataclass(frozen=True)
class ForecasterChoice:
    """What a forecaster must serve; checked on construction."""

    name: str
    quantile: float = 0.9
    horizon: int = 1
    epochs: int = 20
    seed: int = 0
    season: int | None = None  # steps, for the seasonal baselines (None: inferred from the data)

    def __post_init__(self):
        if self.name not in FORECASTERS:
            raise PlannerError(f"forecaster: must be one of {', '.join(FORECASTERS)} (got {self.name!r})")
        q = self.quantile
        if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0.5 < q < 1:
            raise PlannerError(f"quantile: must be in (0.5, 1) (got {q!r})")
        h = self.horizon
        if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= MAX_HORIZON:
            raise PlannerError(f"horizon: must be an integer in 1..{MAX_HORIZON} steps (got {h!r})")
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 1000:
            raise PlannerError(f"epochs: must be an integer in 1..1000 (got {self.epochs!r})")
        s = self.season
        if s is not None and (not isinstance(s, int) or isinstance(s, bool) or not 2 <= s <= 100_000):
            raise PlannerError(f"season: must be an integer of 2..100000 steps (got {s!r})")

    @property
    def quantiles(self) -> tuple[float, ...]:
        return tuple(sorted(set(DEFAULT_QUANTILES) | {float(self.quantile)}))


def serves(model: Forecaster, choice: ForecasterChoice) -> bool:
    """Whether ``model`` serves ``choice``'s quantiles and horizon."""
    limit = getattr(model, "horizon", None)
    return tuple(model.quantiles) == choice.quantiles and (limit is None or limit >= choice.horizon)


def fit(choice: ForecasterChoice, series: SeriesSet, previous: Forecaster | None = None,
        retrain: bool = True, covariate: SeriesSet | None = None) -> tuple[Forecaster, str]:
    """A model of ``choice`` fitted on ``series`` and a note on what it is. A ``previous`` LSTM
    over the same series that serves ``choice`` is updated (``retrain``) or reused on the new data;
    otherwise a new one is trained. ``covariate``: see the module docstring."""
    from models.baselines import Persistence, all_baselines

    q = choice.quantiles
    if choice.name == "selection":
        return _selection(choice, series, previous, retrain, covariate)
    if choice.name == "gbm":
        from models.gbm import GradientBoosting

        return GradientBoosting(choice.season, quantiles=q).fit(series), "gbm"
    if choice.name != "lstm":
        by = {b.name: b for b in all_baselines(choice.season, quantiles=q)}
        return by[choice.name].fit(series), choice.name
    if series.rows < MIN_LSTM_ROWS:
        return (Persistence(quantiles=q).fit(series),
                f"persistence (the lstm needs {MIN_LSTM_ROWS} steps of history, have {series.rows})")

    if previous is not None and getattr(previous, "name", "") == "lstm" and \
            previous.series is not None and previous.series.names == series.names and \
            serves(previous, choice):
        if retrain:
            return previous.update(series, epochs=3), "lstm (updated)"
        return previous.bind(series), "lstm"
    return _lstm(choice, series.rows).fit(series), "lstm (trained)"


def _lstm(choice: ForecasterChoice, rows: int):
    from models.lstm import LSTMForecaster

    window = min(MAX_WINDOW, max(MIN_WINDOW, rows // 6))
    return LSTMForecaster(window=window, horizon=max(2, choice.horizon), epochs=choice.epochs,
                          seed=choice.seed, verbose=0, batch=256, patience=4,
                          quantiles=choice.quantiles)


def _selection(choice: ForecasterChoice, series: SeriesSet, previous, retrain: bool,
               covariate: SeriesSet | None = None):
    """The selection (:mod:`models.selection`) over the baselines, the gradient-boosted model
    (:mod:`models.gbm`) and, with enough history for its fitting part, the LSTM. A ``previous``
    selection over the same series that serves ``choice`` is reused (not ``retrain``) or fitted
    again with its LSTM updated from the weights it has (a few epochs), not trained anew."""
    from models.baselines import Persistence, all_baselines
    from models.covariate import Leading, bind_covariate
    from models.gbm import GradientBoosting
    from models.selection import HOLDOUT, Selection

    same = previous is not None and getattr(previous, "name", "") == "selection" and \
        previous.series is not None and previous.series.names == series.names and \
        serves(previous, choice)
    if same and not retrain:
        return bind_covariate(previous, covariate), "selection"
    cands = all_baselines(choice.season, quantiles=choice.quantiles)
    cands.append(GradientBoosting(choice.season, quantiles=choice.quantiles))
    if covariate is not None:
        cands.append(Leading(Persistence(quantiles=choice.quantiles),
                             quantiles=choice.quantiles).with_covariate(covariate))
    fitting_rows = int(series.rows * (1 - HOLDOUT))
    old = [c for c in previous.candidates if c.name == "lstm"] if same else []
    note = (f"selection of baselines (the lstm needs {MIN_LSTM_ROWS} steps of fitting history, "
            f"have {fitting_rows})")
    if old:
        old[0].epochs = 3
        cands.append(old[0])
        note = "selection (lstm updated)"
    elif fitting_rows >= MIN_LSTM_ROWS:
        cands.append(_lstm(choice, fitting_rows))
        note = "selection (lstm trained)"
    try:
        return Selection(cands, horizon=choice.horizon, quantiles=choice.quantiles).fit(series), note
    except ValueError as e:
        raise PlannerError(f"history: {e}") from None


def forecast(model: Forecaster, choice: ForecasterChoice, series: SeriesSet,
             covariate: SeriesSet | None = None) -> Forecast:
    """The ``choice.horizon`` steps after ``series`` from a fitted ``model`` (no refit), refused
    when the model cannot serve them; a model that reads a covariate reads ``covariate``."""
    from models.covariate import bind_covariate

    if not serves(model, choice):
        limit = getattr(model, "horizon", None)
        if tuple(model.quantiles) != choice.quantiles:
            raise PlannerError(f"quantile: {choice.quantile:g} is not served by the {model.name} "
                               f"model, which has {list(model.quantiles)}")
        raise PlannerError(f"horizon: {choice.horizon} steps are needed, the {model.name} model "
                           f"predicts at most {limit}")
    return bind_covariate(model, covariate).predict(choice.horizon, series)
