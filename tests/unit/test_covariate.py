"""The RTT covariate (models.covariate): where the RTT rises before demand does, persistence
corrected by the rise is chosen and forecasts better; where the RTT says nothing its response is
near zero and it costs nothing; the covariate is aligned by time, and one on another step is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import Persistence, all_baselines
from models.covariate import Leading
from models.selection import Selection
from models.series import SeriesSet
from netshadow.loop import _covariate_chosen
from planner.forecasters import ForecasterChoice, fit, forecast

STEP = 60.0
START = pd.Timestamp("2026-01-05", tz="UTC")
NAME = "t/web/bandwidth"


def bursts(rows: int, seed: int = 0, lead: int = 2,
           gap: tuple[int, int] = (25, 45)) -> tuple[SeriesSet, SeriesSet]:
    """Demand with ramps up to bursts at random times, and an RTT that rises ``lead`` steps
    before the demand does (a queue building ahead of the peak), with noise."""
    rng = np.random.default_rng(seed)
    demand = np.full(rows, 10.0)
    t = 8
    while t < rows - 12:
        ramp = np.linspace(10, 10 + rng.uniform(15, 30), 5)
        demand[t:t + 5] = ramp
        demand[t + 5:t + 9] = ramp[-1]
        demand[t + 9:t + 12] = np.linspace(ramp[-1], 10, 3)
        t += int(rng.integers(*gap))
    demand = demand + rng.normal(0, 0.5, rows)
    rtt = 1.0 + 0.2 * np.roll(demand - 10, -lead) + rng.normal(0, 0.2, rows)
    return (SeriesSet(START, STEP, (NAME,), demand.clip(0)[:, None]),
            SeriesSet(START, STEP, (NAME,), rtt.clip(0.05)[:, None]))


def _mae(model, s: SeriesSet, split: int, h: int) -> float:
    v = s.values
    med, _ = model.forecast(v, h, s.start)
    return float(np.nanmean(np.abs(med[split:] - v[split:])))


def test_a_leading_rtt_is_chosen_and_forecasts_better_than_persistence_on_new_data():
    demand, rtt = bursts(900, seed=1)
    split = 700
    sel = Selection(all_baselines(season=None) + [Leading(Persistence()).with_covariate(rtt)],
                    horizon=3).fit(demand.slice(0, split))
    picked = sel.choice()[NAME]
    assert picked[1]["pool"] == picked[2]["pool"] == ["persistence+rtt"]  # replaces the pool
    assert _covariate_chosen(sel)[NAME][:2] == [1, 2]  # as the loop's cycle record says it
    lead = next(c for c in sel.candidates if c.name == "persistence+rtt")
    assert lead.beta(1)[0] > 0  # demand follows a rising RTT upwards
    pers = Persistence().fit(demand.slice(0, split))
    for h in (1, 2):  # on the steps after the fitting history
        assert _mae(sel, demand, split, h) < 0.85 * _mae(pers, demand, split, h)


def test_an_uninformative_covariate_costs_nothing_out_of_sample():
    """Noise gets a response near zero (an eighth of a leading RTT's at most), so where it wins a
    backtest its forecast is persistence's; on these bursts persistence beats the pool, so the
    selection with noise offered is no worse than the one without."""
    for seed in range(6):
        demand, rtt = bursts(900, seed=seed)
        noise = SeriesSet(START, STEP, (NAME,),
                          1 + np.random.default_rng(100 + seed).normal(0, 0.3, (900, 1)).clip(-0.9))
        split = 700
        informative = Leading(Persistence()).with_covariate(rtt).fit(demand.slice(0, split))
        lead = Leading(Persistence()).with_covariate(noise)
        with_cov = Selection(all_baselines(season=None) + [lead], horizon=1).fit(demand.slice(0, split))
        without = Selection(all_baselines(season=None), horizon=1).fit(demand.slice(0, split))
        assert abs(lead.beta(1)[0]) < informative.beta(1)[0] / 6
        assert _mae(with_cov, demand, split, 1) <= 1.03 * _mae(without, demand, split, 1)


def test_the_covariate_is_aligned_by_time_wherever_it_starts():
    demand, rtt = bursts(400, seed=3)
    late = rtt.slice(50, 400)  # scans began 50 steps after the demand series
    a = Leading(Persistence()).with_covariate(rtt).fit(demand)
    b = Leading(Persistence()).with_covariate(late).fit(demand)
    fa, fb = a.predict(3), b.predict(3)
    # the newest steps are known to both covariates, so both correct the forecast alike
    assert fa.series[0].median == pytest.approx(fb.series[0].median, rel=0.05)
    assert fa.series[0].median != pytest.approx(Persistence().fit(demand).predict(3).series[0].median)
    # where the covariate is unknown at the origin the forecast is the base's
    b.with_covariate(rtt.slice(0, 100))
    assert b.predict(3).series[0].median == pytest.approx(
        Persistence().fit(demand).predict(3).series[0].median)


def test_a_covariate_on_another_step_or_without_a_rise_is_refused_naming_it():
    demand, rtt = bursts(200, seed=4)
    other = SeriesSet(START, 2 * STEP, (NAME,), rtt.values[:100])
    with pytest.raises(ValueError, match="covariate: step 120 s is not the series' 60 s"):
        Leading(Persistence()).with_covariate(other).fit(demand)
    with pytest.raises(ValueError, match="covariate: none is bound"):
        Leading(Persistence()).fit(demand)
    elsewhere = SeriesSet(START, STEP, ("t/other/bandwidth",), rtt.values)
    with pytest.raises(ValueError, match="covariate: no rise"):
        Leading(Persistence()).with_covariate(elsewhere).fit(demand)


def test_the_planner_offers_the_covariate_only_when_it_is_given_and_rebinds_it():
    demand, rtt = bursts(59, seed=5, gap=(13, 16))  # too short a history for the lstm
    choice = ForecasterChoice(name="selection", horizon=3)
    plain, _ = fit(choice, demand)
    assert "persistence+rtt" not in plain.names
    model, _ = fit(choice, demand, covariate=rtt)
    assert model.choice()[NAME][1]["chosen"] == "persistence+rtt"
    with_rtt = forecast(model, choice, demand, covariate=rtt).series[0].median
    without = forecast(model, choice, demand, covariate=None).series[0].median
    # unbound, the covariate's candidate forecasts as persistence does
    assert without[0] == pytest.approx(float(demand.values[-1, 0]))
    assert with_rtt != pytest.approx(without)
