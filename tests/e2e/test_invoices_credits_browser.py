"""The Invoices and Credits pages in Chromium with data in them: statuses in the status
palette, the explaining days, the ledger and its burn-down chart; screenshots for a reviewer
in tests/artifacts/invoices-credits/ (not committed)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tests.e2e.conftest import ARTIFACTS, new_page, running_app
from tests.e2e.test_every_page_browser import VIEWPORT, _sign_in
from tests.factories import add_account, add_usage
from tracker.core.db import make_engine
from tracker.costs import invoices
from tracker.planning import credits


def seed(url: str, today: dt.date) -> None:
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        account = add_account(session, "Billing", "anthropic")
        add_usage(session, account, dt.date(2025, 10, 6), "120.000001")
        add_usage(session, account, dt.date(2025, 10, 7), "79.999999")
        add_usage(session, account, dt.date(2025, 10, 31), "3.5", billed=False)
        for number, amount in (("A-1", "200.00"), ("A-2", "201.50"), ("A-3", "204.08")):
            invoices.add_invoice(
                session=session, actor="fin", provider="anthropic", account="Billing",
                invoice_number=number, period="2025-10", issued_on="2025-11-02", amount=amount,
            )  # fmt: skip
        router = add_account(session, "Router", "openrouter")
        router.balance_remaining, router.balance_currency = Decimal("310.25"), "USD"
        for n in range(1, 60):
            add_usage(session, router, today - dt.timedelta(days=n), "6.5")
        credits.add_grant(
            session=session, account="Router", amount="500", actor="fin",
            starts_on=today - dt.timedelta(days=30), priority=1, note="Prepaid top-up",
        )  # fmt: skip
        credits.add_grant(
            session=session, account="Router", amount="100", actor="fin",
            starts_on=today - dt.timedelta(days=30), expires_on=today - dt.timedelta(days=10),
            priority=0, note="Promo",
        )  # fmt: skip
    engine.dispose()


def test_invoices_and_credits_with_data(seeded_pg: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    today = dt.datetime.now(dt.UTC).date()
    seed(seeded_pg, today)
    folder = ARTIFACTS / "invoices-credits"
    folder.mkdir(parents=True, exist_ok=True)
    with running_app(seeded_pg, tmp_path) as (server, _log):
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = new_page(context)
            _sign_in(page, server, "fin")
            for title, shot in (("Invoices", "invoices.png"), ("Credits", "credits.png")):
                page.locator("[data-testid=stSidebar]").get_by_role(
                    "link", name=title, exact=True
                ).click()
                expect(page.get_by_role("heading", name=title).first).to_be_visible()
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
                page.wait_for_timeout(800)
                height = page.evaluate(
                    "document.querySelector('[data-testid=stMain]').scrollHeight"
                )
                page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, 8000)})
                page.wait_for_timeout(300)
                page.screenshot(path=str(folder / shot), full_page=True)
                assert page.get_by_test_id("stException").count() == 0, title
                page.set_viewport_size(VIEWPORT)
            expect(page.get_by_text("Burn-down")).to_be_visible()
        finally:
            context.close()
