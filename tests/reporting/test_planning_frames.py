"""The page-side helpers of tracker.planning: chart path, floors, run-out day, masking."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from tracker.planning.budgets import scope_label
from tracker.planning.projections import Projection
from tracker.reporting import budgets as budget_report
from tracker.reporting import forecast

MONTH = dt.date(2026, 5, 1)
TODAY = dt.date(2026, 5, 4)


def projection(**changes: object) -> Projection:
    values: dict[str, object] = {
        "scope": "org",
        "month": MONTH,
        "as_of": TODAY - dt.timedelta(days=1),
        "actual_to_date": Decimal("30.00"),
        "projected_total": Decimal("300.00"),
        "lower": Decimal("250.00"),
        "upper": Decimal("360.00"),
        "run_rate_total": Decimal("310.00"),
        "budget": Decimal("200.00"),
        "budget_exhausted_on": dt.date(2026, 5, 20),
        "backtest_mape": Decimal("5.5"),
        "run_rate_mape": Decimal("12.25"),
        "backtest_samples": 7,
        "daily": [{"day": f"2026-05-0{d}", "actual": 10.0} for d in (1, 2, 3)]
        + [
            {"day": (TODAY + dt.timedelta(days=i)).isoformat(), "forecast": 270 / 28}
            for i in range(28)
        ],
    }
    values.update(changes)
    return Projection(**values)  # type: ignore[arg-type]


def test_projection_path_meets_the_stored_figures() -> None:
    path = forecast.projection_path(projection())
    actual = path.dropna(subset=["actual"])
    assert list(actual["actual"]) == [10.0, 20.0, 30.0]
    last = path.iloc[-1]
    assert last["day"] == dt.date(2026, 5, 31)
    assert (last["forecast"], last["lower"], last["upper"]) == (300.0, 250.0, 360.0)
    # The band starts with no width at the last actual day and only widens.
    band = path.dropna(subset=["upper"])
    assert band.iloc[0]["lower"] == band.iloc[0]["upper"] == 30.0
    width = band["upper"] - band["lower"]
    assert width.is_monotonic_increasing


def test_projection_path_without_history_starts_at_zero() -> None:
    empty = projection(
        actual_to_date=Decimal(0),
        projected_total=Decimal(0),
        lower=Decimal(0),
        upper=Decimal(0),
        daily=[],
    )
    path = forecast.projection_path(empty)
    assert len(path) == 1 and path.iloc[0]["forecast"] == 0.0


def test_month_end_is_never_below_the_spend_so_far() -> None:
    p = projection()
    assert forecast.month_end_floor(p, Decimal("120.00")) == Decimal("300.00")
    assert forecast.month_end_floor(p, Decimal("301.50")) == Decimal("301.50")


def test_the_interval_is_never_below_the_spend_so_far() -> None:
    p = projection()
    assert forecast.interval_floor(p, Decimal("0")) == (p.lower, p.upper)
    spent = (p.lower + p.upper) / 2
    assert forecast.interval_floor(p, spent) == (spent, p.upper)
    assert forecast.interval_floor(p, p.upper + 1) == (p.upper + 1, p.upper + 1)


@pytest.mark.parametrize(
    ("spent", "budget", "expected"),
    [
        (Decimal("100"), Decimal("200"), dt.date(2026, 5, 20)),  # the model's day
        (Decimal("200"), Decimal("200"), TODAY),  # today's usage used it up
        (Decimal("50"), None, dt.date(2026, 5, 20)),
    ],
)
def test_runs_out_on(spent: Decimal, budget: Decimal | None, expected: dt.date) -> None:
    got = forecast.runs_out_on(projection(), spent_to_date=spent, budget=budget, today=TODAY)
    assert got == expected


def test_open_excess_counts_an_account_and_its_models_once() -> None:
    frame = pd.DataFrame(
        [
            ("a", TODAY, "all models", Decimal("20.125"), None),
            ("a", TODAY, "gpt-4o", Decimal("18.00"), None),
            ("b", TODAY, "o3", Decimal("6.00"), None),
            ("b", TODAY, "o4-mini", Decimal("7.00"), None),
            ("c", TODAY, "all models", Decimal("99"), dt.datetime(2026, 5, 4, tzinfo=dt.UTC)),
        ],
        columns=["account", "day", "model", "excess", "acknowledged_at"],
    )
    assert forecast.open_excess(frame) == Decimal("33.125")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("email:finance@example.org", "email:f…@example.org"),
        (
            "slack:https://hooks.slack.com/services/T0/B0/secretXYZ9",
            "slack:https://hooks.slack.com/…XYZ9",
        ),
        ("webhook:not a url", "webhoo…"),  # unparsable: notify's mask_raw
    ],
)
def test_channels_are_shown_masked(raw: str, shown: str) -> None:
    assert budget_report.display_channel(raw) == shown


def test_scope_labels() -> None:
    assert scope_label("org") == "Organisation"
    assert scope_label("service:openai") == "Service OpenAI"
    assert scope_label("account:Prod") == "Account Prod"


def test_blank_dimensions_read_not_reported_and_amounts_stay() -> None:
    import pandas as pd

    from tracker.reporting import usage

    frame = pd.DataFrame(
        {"day": ["2026-12-01"], "user": [""], "model": ["gpt-4o"], "cost": [Decimal("1.5")]}
    )
    shown = usage.label_blanks(frame)
    assert shown.loc[0, "user"] == "(not reported)" and shown.loc[0, "model"] == "gpt-4o"
    assert shown.loc[0, "cost"] == Decimal("1.5") and frame.loc[0, "user"] == ""
