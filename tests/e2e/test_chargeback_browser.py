"""The Chargeback page in Chromium, as finance sees it: teams with cost centers, a shared
bucket moved by a rule, the month's total, and the drill-down of one team."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.e2e.conftest import ARTIFACTS, new_page, running_app
from tests.factories.dashboard import PASSWORD, expected_cost
from tracker.attribution import teams
from tracker.attribution.chargeback import chargeback
from tracker.core.db import make_engine
from tracker.core.units import month_start
from tracker.planning import budgets
from tracker.ui.components import money

pytestmark = pytest.mark.e2e


def test_finance_reads_the_chargeback(seeded_pg: str, tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    today = dt.datetime.now(dt.UTC).date()
    engine = make_engine(seeded_pg)
    with Session(engine) as session, session.begin():
        teams.add_team(
            session=session, name="Web", cost_center="CC-100", gl_account="6100", actor="t"
        )
        teams.add_team(
            session=session, name="ML", cost_center="CC-200", gl_account="6200", actor="t"
        )
        teams.add_mapping(
            session=session, kind="account", value="OpenAI Prod", team="Web",
            valid_from=dt.date(2020, 1, 1), actor="t",
        )  # fmt: skip
        teams.add_rule(
            session=session,
            source="Unassigned",
            method="fixed",
            targets=[("Web", "25"), ("ML", "75")],
            valid_from=month_start(today),
            actor="t",
        )
        budgets.set_budget(session=session, scope="team:Web", monthly="50", actor="t")
    engine.dispose()
    total = expected_cost(month_start(today), today, today)
    with running_app(seeded_pg, tmp_path) as (url, _log):
        page = new_page(browser.new_context(viewport={"width": 1400, "height": 1400}))
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill("fin")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Chargeback", exact=True).click()
        expect(page.get_by_role("heading", name="Chargeback").first).to_be_visible()
        metric = page.get_by_test_id("stMetric").filter(has_text="Charged back")
        expect(metric).to_contain_text(money(total))
        expect(page.get_by_test_id("stMetric").filter(has_text="Unassigned")).to_contain_text(
            "$0.00"
        )
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        expect(page.get_by_role("button", name="Download the chargeback (CSV)")).to_be_visible()
        page.wait_for_timeout(2000)  # let the tables draw
        page.screenshot(path=str(ARTIFACTS / "chargeback.png"), full_page=True)

        # The team's budget, measured against the same chargeback.
        with Session(engine) as session:
            web = chargeback(session=session, month=today).by_team()["Web"]
        page.get_by_role("link", name="Budgets & alerts", exact=True).click()
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        # The grid draws on a canvas; its accessible cells carry the text.
        expect(page.locator("[role=gridcell]", has_text="Team Web").first).to_be_attached()
        page.wait_for_timeout(2000)  # let the tables draw
        page.screenshot(path=str(ARTIFACTS / "budgets-teams.png"), full_page=True)
        assert web > 0


def test_a_lead_groups_the_months_usage_by_user(
    seeded_pg: str, tmp_path: Path, browser: Any
) -> None:
    """The explorer's User grouping: each person of the OpenAI keys by name, with the cost."""
    from playwright.sync_api import expect

    with running_app(seeded_pg, tmp_path) as (url, _log):
        context = browser.new_context(viewport={"width": 1400, "height": 1200})
        page = new_page(context)
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill("fin")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Usage explorer", exact=True).click()
        expect(page.get_by_text("Group by").first).to_be_visible()
        group_by = page.get_by_test_id("stMultiSelect").filter(has_text="Group by")
        for chip in ("Day", "Provider"):
            group_by.get_by_role("button", name=f"Remove {chip}").click()
            page.wait_for_timeout(500)  # each removal reruns the page
        group_by.locator("input").fill("User")
        page.get_by_role("option", name="User", exact=True).click()
        page.keyboard.press("Escape")
        table = page.get_by_test_id("stDataFrame").first
        expect(table).to_be_visible()
        page.wait_for_timeout(2000)  # let the table draw
        # The grid draws on a canvas; its CSV download is the table's text.
        with page.expect_download() as download:
            page.get_by_role("button", name="Download this table (CSV)").click()
        shown = Path(download.value.path()).read_text()
        assert shown.splitlines()[0].startswith("user,")
        assert "Ada Park" in shown and "Tom Reyes" in shown

        # The view is in the URL: a colleague's link opens the same grouping and total.
        assert "group=User" in page.url
        metric = page.get_by_test_id("stMetric").filter(has_text="Cost in selection")
        total = metric.inner_text().split()[-1]
        shared = new_page(context)
        shared.goto(page.url)
        shared_metric = shared.get_by_test_id("stMetric").filter(has_text="Cost in selection")
        expect(shared_metric).to_contain_text(total)
        expect(shared.get_by_test_id("stMultiSelect").filter(has_text="Group by")).to_contain_text(
            "User"
        )
        page.mouse.move(0, 0)  # no tooltip over the table
        page.screenshot(path=str(ARTIFACTS / "usage-by-user.png"), full_page=True)
