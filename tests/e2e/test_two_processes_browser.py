"""Two `streamlit run` processes on one database, as behind a load balancer: Chromium signs in
on each, a change made through one shows on the other after "Refresh data", and a session
started through one process is honoured by the other (a browser the balancer moves keeps
its sign-in).

What lives in one process (a tab's widgets, uploads, prepared downloads, the frames cache)
is why docs/operations.md asks for sticky sessions; sign-in and data live in the database.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import new_page, running_app
from tests.factories.dashboard import PASSWORD, expected_cost
from tracker.ui.components import percent

pytestmark = pytest.mark.e2e


def sign_in(page: Any, url: str, username: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible()


def budget_used(page: Any) -> Any:
    return page.get_by_test_id("stMetric").filter(has=page.get_by_text("Budget used", exact=True))


def test_two_app_processes_share_sign_in_and_data(
    seeded_pg: str, tmp_path: Path, browser: Any
) -> None:
    from playwright.sync_api import expect

    today = dt.datetime.now(dt.UTC).date()
    spent = expected_cost(today.replace(day=1), today, today)
    # The accounts' budgets add up to $120 until an organisation budget is set.
    before, after = percent(spent / 120 * 100), percent(spent / Decimal(750) * 100)
    assert before != after
    # Every process gets the same cookie secret (docs/operations.md, "Several app processes").
    shared = {"STREAMLIT_SERVER_COOKIE_SECRET": secrets.token_urlsafe(32)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_app(seeded_pg, tmp_path / "a", **shared) as (first, _),
        running_app(seeded_pg, tmp_path / "b", **shared) as (second, _),
    ):
        finance = new_page(browser.new_context(viewport={"width": 1400, "height": 1000}))
        admin = new_page(browser.new_context(viewport={"width": 1400, "height": 1000}))
        sign_in(finance, first, "fin")
        sign_in(admin, second, "alice")
        expect(budget_used(admin)).to_contain_text(before)  # now in the second one's cache

        # A change through the first process...
        finance.goto(f"{first}/budgets")
        finance.get_by_text("Set or clear a budget").click()
        finance.get_by_role("textbox", name="Monthly budget, USD").fill("750.00")
        finance.get_by_role("button", name="Save budget").click()
        expect(finance.get_by_text("Saved the budget of Organisation").first).to_be_visible()
        finance.goto(first)
        expect(budget_used(finance)).to_contain_text(after)

        # ...shows on the second once its cached figures are refreshed (or expire).
        admin.reload()
        expect(budget_used(admin)).to_contain_text(before)
        admin.get_by_role("button", name="Refresh data").click()
        expect(budget_used(admin)).to_contain_text(after)

        # The finance user's session, started through the first process, is good on the
        # second: the cookie holds only a token that the database resolves.
        finance.goto(second)
        expect(finance.get_by_text("Signed in as").first).to_contain_text("Fin (finance)")
        expect(budget_used(finance)).to_contain_text(after)
        expect(finance.get_by_role("button", name="Sign in")).to_have_count(0)
