"""AppTests for the Savings page: who may open it, and the ledger's figures to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.ui.test_app import AppAs, metrics, today
from tracker.core.units import month_start
from tracker.models import Account, UsageRecord
from tracker.reporting.savings import by_kind, savings_ledger
from tracker.ui.components import money

PAGE = "pages/savings.py"
M = 1_000_000


def open_page(app_as: AppAs, user: str, role: str) -> AppTest:
    at = app_as(user, role).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_viewers_cannot_open_it(app_as: AppAs) -> None:
    at = app_as("vic", "viewer").run()
    with pytest.raises(ValueError):
        at.switch_page(PAGE).run()


@pytest.mark.parametrize(("user", "role"), [("fin", "finance"), ("alice", "admin")])
def test_the_month_s_savings_by_kind(
    app_as: AppAs, seeded_db: Engine, user: str, role: str
) -> None:
    first = month_start(today())
    with Session(seeded_db) as session, session.begin():
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None
        # Batch usage with cache reads, this month (the book's list prices of today).
        session.add(
            UsageRecord(
                account_id=account.id, day=first, model="gpt-4o-mini", usage_type="completions",
                service_tier="batch", input_tokens=M, cached_input_tokens=4 * M,
                output_tokens=M, cost_source="estimated",
            )
        )  # fmt: skip
    with Session(seeded_db) as session:
        lines = savings_ledger(session=session, start=first, end=today())
    totals = by_kind(lines)
    assert totals["batch"] > 0 and totals["cache"] > 0
    at = open_page(app_as, user, role)
    shown = metrics(at)
    assert shown["Saved in all"] == money(totals["total"])
    assert shown["Batch"] == money(totals["batch"])
    assert shown["Cache"] == money(totals["cache"])
    frame = at.dataframe[0].value
    assert "OpenAI" in set(frame["provider"])
    assert Decimal(str(frame["total"].sum())).quantize(Decimal("0.01")) == totals["total"].quantize(
        Decimal("0.01")
    )


def test_an_empty_period_says_so(app_as: AppAs) -> None:
    at = app_as("fin", "finance").run()
    at.query_params["from"] = "2019-01-01"
    at.query_params["to"] = "2019-01-31"
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert any("No priced usage" in i.value for i in at.info)
    assert dt.date(2019, 1, 1).isoformat() in at.info[0].value
