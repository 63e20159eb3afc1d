"""The Accounts page's forms in Chromium: after a change the page stays on the user's tab and
shows the message there; a refused add keeps what was typed, except the key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import new_page
from tests.factories.dashboard import PASSWORD

pytestmark = pytest.mark.e2e


def test_accounts_forms_keep_their_tab_and_what_was_typed(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page = new_page(browser.new_context(viewport={"width": 1400, "height": 1300}))
    page.goto(server)
    page.get_by_role("textbox", name="Username").fill("alice")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
    page.get_by_role("link", name="Accounts").click()
    expect(page.get_by_role("heading", name="Accounts").first).to_be_visible()

    # A save on the Edit tab: the page stays there and says so there.
    page.get_by_role("tab", name="Edit").click()
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")
    budget = page.get_by_role("textbox", name="Monthly budget, USD")
    budget.fill("321")
    page.get_by_role("button", name="Save changes").click()
    edit_panel = page.get_by_role("tabpanel")
    expect(edit_panel.get_by_text(re.compile(r"^Saved "))).to_be_visible()
    expect(page.get_by_role("tab", name="Edit")).to_have_attribute("aria-selected", "true")

    # A refused add: what was typed stays, the key is emptied and the page says why.
    page.get_by_role("tab", name="Add").click()
    expect(page.get_by_role("tab", name="Add")).to_have_attribute("aria-selected", "true")
    page.get_by_role("textbox", name="Name").fill("Kept name")
    page.get_by_label(re.compile(r"^API key")).fill("sk-admin-some-key-0001")
    page.get_by_role("textbox", name="Monthly budget, USD (optional)").fill("lots")
    page.get_by_role("button", name="Add account").click()
    expect(page.get_by_text(re.compile(r"^Not added:"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"For safety the API key was cleared"))).to_be_visible()
    expect(page.get_by_role("tab", name="Add")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("textbox", name="Name")).to_have_value("Kept name")
    expect(page.get_by_role("textbox", name="Monthly budget, USD (optional)")).to_have_value("lots")
    expect(page.get_by_label(re.compile(r"^API key"))).to_have_value("")
