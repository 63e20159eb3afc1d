"""Projections on generated series with known answers, and the forecast command."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import add_account, add_usage
from tracker.core import units
from tracker.planning import projections

WEEKLY = np.array([120.0, 130.0, 125.0, 120.0, 110.0, 25.0, 20.0])  # Monday first


def weekly_series(start: dt.date, end: dt.date, *, noise: float, seed: int) -> pd.Series:
    """A weekly pattern with a slow upward drift and multiplicative log-normal noise."""
    rng = np.random.default_rng(seed)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    values = [
        WEEKLY[d.weekday()] * (1 + 0.001 * i) * rng.lognormal(0, noise) for i, d in enumerate(days)
    ]
    return pd.Series(values, index=pd.Index(days))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_backtest_beats_a_straight_run_rate_on_weekly_data(seed, capsys):
    series = weekly_series(dt.date(2025, 1, 1), dt.date(2025, 12, 31), noise=0.15, seed=seed)
    result = projections.backtest(
        series, before=dt.date(2026, 1, 1), months=6, origins=range(1, 28)
    )
    with capsys.disabled():
        print(  # noqa: T201 (the issue asks for the figures in the test output)
            f"\n[projections seed={seed}] backtest over {result.samples} origins: "
            f"model MAPE {result.model_mape:.2f} %, straight run-rate MAPE "
            f"{result.run_rate_mape:.2f} %, 80 % interval coverage {result.coverage_80:.0%}"
        )
    assert result.samples == 6 * 27
    assert result.model_mape is not None and result.run_rate_mape is not None
    # Bounds a straight run-rate fails on this data: under 4 % and under half its error.
    assert result.model_mape < 4.0 < result.run_rate_mape
    assert result.model_mape < result.run_rate_mape / 2
    assert 0.7 <= (result.coverage_80 or 0) <= 0.97


def test_flat_series_projects_exactly_and_runs_out_on_the_right_day():
    series = pd.Series(
        10.0, index=pd.Index([dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(80)])
    )
    p = projections.project_series(
        series, scope="org", today=dt.date(2026, 5, 20), budget=Decimal("250")
    )
    assert p.actual_to_date == Decimal("190.00")  # 1..19 May
    assert p.projected_total == Decimal("310.00")
    assert p.lower <= p.projected_total <= p.upper
    assert p.budget_exhausted_on == dt.date(2026, 5, 25)
    assert p.backtest_mape == Decimal(0)
    assert p.as_of == dt.date(2026, 5, 19)


def test_no_history_projects_zero():
    p = projections.project_series(
        pd.Series(dtype=float), scope="org", today=dt.date(2026, 5, 20), budget=None
    )
    assert p.projected_total == Decimal(0) and p.backtest_mape is None


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1e4), min_size=1, max_size=90),
    day=st.integers(min_value=1, max_value=28),
)
def test_interval_holds_the_projection_and_never_goes_below_actuals(values, day):
    today = dt.date(2026, 5, day)
    index = pd.Index([today - dt.timedelta(days=len(values) - i) for i in range(len(values))])
    p = projections.project_series(
        pd.Series(values, index=index), scope="org", today=today, budget=None
    )
    assert p.actual_to_date <= p.lower <= p.projected_total <= p.upper


def test_forecast_command_and_stored_projections(cli, committed_db):
    from tracker.core.db import make_session_factory

    factory = make_session_factory(committed_db)
    today = dt.datetime.now(dt.UTC).date()
    with factory.begin() as session:
        acc = add_account(session, "prod", budget="1000")
        for i in range(1, 70):
            add_usage(session, acc, today - dt.timedelta(days=i), "10")
    out = cli("forecast", "--json")
    assert out.code == 0, out.err
    rows = {r["scope"]: r for r in json.loads(out.out)}
    assert set(rows) == {"org", "service:openai", "account:prod"}
    month_days = (units.month_bounds(today)[1] - today.replace(day=1)).days + 1
    assert Decimal(rows["account:prod"]["projected_total"]) == Decimal(10 * month_days)
    assert rows["account:prod"]["budget"] is not None
    text = cli("forecast", "--scope", "account:prod")
    assert text.code == 0 and "BACKTEST MAPE" in text.out
    with factory.begin() as session:
        first = projections.write_projections(session=session, today=today)
        again = projections.write_projections(session=session, today=today)  # upsert
    assert len(first) == len(again) == 3
    assert cli("forecast", "--scope", "team:x").code == 1
