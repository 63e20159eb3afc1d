"""The real thing: `streamlit run app.py` against a seeded PostgreSQL, driven by Chromium.

Uses Debian's Chromium (`/usr/bin/chromium`) through Playwright for Python. Without it the
test is skipped locally and fails under CI=true. A screenshot of the Overview is saved to
tests/artifacts/overview.png.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS
from tests.factories.dashboard import PASSWORD, expected_cost
from tracker.ui.components import money

pytestmark = pytest.mark.e2e


def test_a_fresh_server_shows_every_page_url_only_the_sign_in_form(
    server: str, chromium: Path
) -> None:
    """The very first requests of a new server process, anonymous, one session per page URL.

    Streamlit starts a process with a pages/ folder in its legacy mode, where a page URL runs
    the page file directly; each page's first statement sends it through the router.
    """
    from playwright.sync_api import expect, sync_playwright

    from tracker.ui.router import PAGES

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=60_000)
            for spec in PAGES:
                context = browser.new_context()  # a new browser: a new Streamlit session
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{server}/{spec.file.removesuffix('.py')}")
                expect(page.get_by_role("button", name="Sign in")).to_be_visible()
                expect(page.get_by_role("heading", name=spec.title, exact=True)).to_have_count(0)
                body = page.locator("body").inner_text()
                assert "@example.org" not in body, (spec.file, body)
                assert "Signed in as" not in body, (spec.file, body)
                # Not even the names of the pages.
                expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
                assert page.get_by_role("link", name=spec.file.removesuffix(".py")).count() == 0
                if spec.file == "admin.py":
                    page.screenshot(path=str(ARTIFACTS / "anonymous-admin.png"), full_page=True)
                context.close()
        finally:
            browser.close()


def test_sign_in_and_see_the_overview(server: str, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    today = dt.datetime.now(dt.UTC).date()
    mtd = money(expected_cost(today.replace(day=1), today, today))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(60_000)
            # expect() has its own 5 s default; a loaded 2-core CI machine needs longer.
            expect.set_options(timeout=60_000)
            page.goto(server)
            page.get_by_role("textbox", name="Username").fill("alice")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            # `.first`: while a slow rerun is replacing the page, Streamlit can show the old
            # run's (stale) heading beside the new one.
            expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
            # has_text is a case-insensitive substring: match the label exactly instead.
            spend = page.get_by_test_id("stMetric").filter(
                has=page.get_by_text("Month-to-date spend", exact=True)
            )
            expect(spend).to_contain_text(mtd)
            chart = page.locator(".js-plotly-plot").first
            expect(chart).to_be_visible()
            # Plotly draws one bar trace per provider once the chart has rendered.
            expect(chart.locator("g.trace.bars").first).to_be_attached()
            expect(page.get_by_role("heading", name="Top models this month").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # A page the admin may open through the router's navigation.
            page.get_by_role("link", name="Sync health").click()
            expect(page.get_by_role("heading", name="Sync health").first).to_be_visible()
        finally:
            browser.close()


def test_viewer_cannot_open_admin_by_url(server: str, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            # expect() has its own 5 s default; a loaded 2-core CI machine needs longer.
            expect.set_options(timeout=60_000)
            # Signed out, a page URL shows the sign-in form and nothing else.
            page.goto(f"{server}/admin")
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            expect(page.get_by_role("heading", name="Admin")).to_have_count(0)
            page.get_by_role("textbox", name="Username").fill("vic")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # `.first`: while a slow rerun is replacing the page, Streamlit can show the old
            # run's (stale) heading beside the new one; seen once in a full, loaded run.
            expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
            expect(page.get_by_role("link", name="Admin")).to_have_count(0)
            expect(page.get_by_role("link", name="Accounts")).to_have_count(0)
            # Signed in, the address of a page the role may not open says so, and shows
            # nothing of the page.
            page.goto(f"{server}/admin")
            expect(page.get_by_text("You don't have access to this page")).to_be_visible()
            expect(page.get_by_role("button", name="Invite")).to_have_count(0)
            page.screenshot(path=str(ARTIFACTS / "no-access.png"), full_page=True)
        finally:
            browser.close()
