"""The Reconciliation page in Chromium, as finance sees it at month-end: last month's billed vs
estimated, "—" where a side is missing, and a re-price preview that writes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.e2e.conftest import ARTIFACTS, new_page, running_app
from tests.factories.dashboard import PASSWORD
from tracker.core.db import make_engine
from tracker.costs.reconcile import reconcile
from tracker.models import AuditLog
from tracker.ui.components import money, period_presets

pytestmark = pytest.mark.e2e


def test_finance_reconciles_last_month(seeded_pg: str, tmp_path: Path, browser: Any) -> None:
    from playwright.sync_api import expect

    today = dt.datetime.now(dt.UTC).date()
    start, end = period_presets(today)["Last month"]
    engine = make_engine(seeded_pg)
    with Session(engine) as session:
        totals = reconcile(session=session, start=start, end=end).totals
    with running_app(seeded_pg, tmp_path) as (url, _log):
        page = new_page(browser.new_context(viewport={"width": 1400, "height": 1600}))
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill("fin")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Reconciliation", exact=True).click()
        expect(page.get_by_role("heading", name="Reconciliation").first).to_be_visible()
        billed = page.get_by_test_id("stMetric").filter(has_text="Billed")
        expect(billed).to_contain_text(money(totals.billed))
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        # The grid draws on a canvas; its accessible cells carry the text.
        expect(page.locator("[role=gridcell]", has_text="Estimate only").first).to_be_attached()
        expect(page.locator("[role=gridcell]", has_text="None")).to_have_count(0)
        page.get_by_role("button", name="Preview").click()
        expect(page.get_by_text("nothing written").first).to_be_visible()
        expect(page.get_by_role("button", name="Apply re-price")).to_be_visible()
        page.wait_for_timeout(2000)  # let the tables draw
        page.screenshot(path=str(ARTIFACTS / "reconciliation.png"), full_page=True)
    with Session(engine) as session:
        reprices = session.scalar(select(func.count()).where(AuditLog.action == "pricing.reprice"))
    engine.dispose()
    assert reprices == 0  # a preview writes nothing
