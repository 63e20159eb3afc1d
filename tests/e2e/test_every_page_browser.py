"""Every page, for every role, in Chromium at a laptop's width: it opens from the sidebar,
shows its heading and no error, and leaves a screenshot for a reviewer in
tests/artifacts/pages/<role>/ (not committed). Skipped without Chromium locally; under
CI=true it must run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.e2e.conftest import ARTIFACTS, new_page
from tests.factories.dashboard import PASSWORD
from tests.ui.test_app import USER_OF_ROLE
from tracker.core.config import load_settings
from tracker.ui.roles import can
from tracker.ui.router import PAGES

VIEWPORT = {"width": 1400, "height": 1000}


def _sign_in(page: Any, server: str, username: str) -> None:
    from playwright.sync_api import expect

    page.goto(server)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible()


def test_every_page_for_every_role(server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    # The settings the test server runs with: the defaults (finance sets budgets).
    settings = load_settings(
        {
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATA_DIR": str(tmp_path / "data"),
        },
        dotenv_path=None,
    )
    seen: dict[str, list[str]] = {}
    for role, username in USER_OF_ROLE.items():
        folder = ARTIFACTS / "pages" / role
        folder.mkdir(parents=True, exist_ok=True)
        context = browser.new_context(viewport=VIEWPORT)
        try:
            page = new_page(context)
            _sign_in(page, server, username)
            for number, spec in enumerate(PAGES, start=1):
                if not can(role, spec.capability, settings):
                    continue
                page.locator("[data-testid=stSidebar]").get_by_role(
                    "link", name=spec.title, exact=True
                ).click()
                expect(page.get_by_role("heading", name=spec.title).first).to_be_visible()
                # Let the run finish (charts and tables arrive after the heading).
                expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=60_000)
                page.wait_for_timeout(500)
                # Streamlit scrolls inside its main block, not the document: grow the window
                # to the page's height so the screenshot holds all of it.
                height = page.evaluate(
                    "document.querySelector('[data-testid=stMain]').scrollHeight"
                )
                page.set_viewport_size({"width": VIEWPORT["width"], "height": min(height, 8000)})
                page.wait_for_timeout(300)
                shot = folder / f"{number:02d}-{Path(spec.file).stem}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert page.get_by_test_id("stException").count() == 0, (role, spec.title)
                seen.setdefault(role, []).append(spec.title)
                page.set_viewport_size(VIEWPORT)
        finally:
            context.close()
    assert seen["viewer"] == ["Overview", "Usage explorer", "Your account"]
    assert "Admin" in seen["admin"] and "Admin" not in seen["finance"]
