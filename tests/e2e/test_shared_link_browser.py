"""A shared explorer link and a saved view, in Chromium against `streamlit run` on PostgreSQL.

A link with filters, opened by someone signed out, must survive the sign-in (the password
form, then the cookie route; or the single sign-on's round trip through the identity
provider) and show the same filters and total as it does to someone already signed in. A
saved view, opened from the sidebar on the page it shows, must win over what that page's
widgets hold. Screenshots: tests/artifacts/shared-link-after-sign-in.png and
tests/artifacts/saved-view.png.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.e2e import test_sso_browser
from tests.e2e.conftest import ARTIFACTS, new_page
from tests.factories.dashboard import PASSWORD, expected_cost
from tracker.ui.components import money

pytestmark = pytest.mark.e2e

# The single-sign-on app and its OpenID Connect provider (Node), as the sign-on test runs them.
sso_app = test_sso_browser.sso_app
oidc_provider_for = test_sso_browser.oidc_provider_for


def sign_in(page: Any, username: str) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def metric(page: Any, label: str) -> Any:
    # has_text is a case-insensitive substring: match the label exactly instead.
    return page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))


def multiselect(page: Any, label: str) -> Any:
    return page.get_by_test_id("stMultiSelect").filter(has_text=label)


def shared_link(server: str) -> tuple[str, str]:
    """An explorer link (the last four days, OpenAI, by model) and the total it must show."""
    today = dt.datetime.now(dt.UTC).date()
    start = today - dt.timedelta(days=3)
    link = f"{server}/usage?from={start}&to={today}&provider=openai&group=Model"
    return link, money(expected_cost(start, today, today, account="OpenAI Prod"))


def test_a_shared_link_opens_with_its_filters_after_the_sign_in(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    link, total = shared_link(server)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # Someone already signed in opens the link.
    colleague = new_page(browser.new_context(viewport={"width": 1400, "height": 1100}))
    colleague.goto(server)
    sign_in(colleague, "fin")
    expect(colleague.get_by_role("heading", name="Overview").first).to_be_visible()
    colleague.goto(link)
    expect(metric(colleague, "Cost in selection")).to_contain_text(total)
    seen_by_colleague = metric(colleague, "Cost in selection").inner_text()

    # Someone signed out opens it: the sign-in form, and nothing of the page.
    reader = new_page(browser.new_context(viewport={"width": 1400, "height": 1100}))
    reader.goto(link)
    expect(reader.get_by_role("button", name="Sign in")).to_be_visible()
    expect(reader.get_by_role("heading", name="Usage explorer")).to_have_count(0)
    expect(metric(reader, "Cost in selection")).to_have_count(0)
    sign_in(reader, "vic")

    # After the sign-in: the same page, filters, grouping and total.
    expect(reader.get_by_role("heading", name="Usage explorer").first).to_be_visible()
    expect(metric(reader, "Cost in selection")).to_contain_text(total)
    assert metric(reader, "Cost in selection").inner_text() == seen_by_colleague
    expect(multiselect(reader, "Provider")).to_contain_text("OpenAI")
    expect(multiselect(reader, "Group by")).to_contain_text("Model")
    assert "/usage?" in reader.url
    assert "provider=openai" in reader.url and "group=Model" in reader.url
    reader.mouse.move(0, 0)
    reader.screenshot(path=str(ARTIFACTS / "shared-link-after-sign-in.png"), full_page=True)


def test_a_saved_view_opens_from_the_sidebar_on_its_own_page(server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    link, total = shared_link(server)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = new_page(browser.new_context(viewport={"width": 1400, "height": 1100}))
    page.goto(server)
    sign_in(page, "vic")
    expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
    page.goto(link)
    expect(metric(page, "Cost in selection")).to_contain_text(total)

    page.get_by_role("button", name="Save this view").click()
    page.get_by_role("textbox", name="Name of the view").fill("OpenAI by model")
    page.get_by_role("button", name="Save", exact=True).click()
    sidebar = page.get_by_test_id("stSidebar")
    view_link = sidebar.get_by_role("link", name="OpenAI by model")
    expect(view_link).to_be_visible()
    expect(sidebar.get_by_text("Saved the view")).to_be_visible()

    # Wander off on the same page: no provider filter any more.
    multiselect(page, "Provider").get_by_role("button", name="Remove OpenAI").click()
    expect(metric(page, "Cost in selection")).not_to_contain_text(total)
    expect(multiselect(page, "Provider")).not_to_contain_text("OpenAI")

    view_link.click()
    expect(multiselect(page, "Provider")).to_contain_text("OpenAI")
    expect(metric(page, "Cost in selection")).to_contain_text(total)
    expect(multiselect(page, "Group by")).to_contain_text("Model")
    assert "provider=openai" in page.url
    page.mouse.move(0, 0)
    page.screenshot(path=str(ARTIFACTS / "saved-view.png"), full_page=True)


def test_a_shared_link_survives_the_single_sign_on(sso_app: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    url, _engine = sso_app
    link, total = shared_link(url)
    reader = new_page(browser.new_context(viewport={"width": 1400, "height": 1100}))
    reader.goto(link)
    reader.get_by_role("button", name="Sign in with Example SSO").click()
    # The provider's own (development) sign-in page.
    reader.locator("input[name=login]").fill("finance-lead")
    reader.locator("input[name=password]").fill("any password works here")
    reader.locator("button[type=submit]").click()
    expect(reader.get_by_role("heading", name="Usage explorer").first).to_be_visible()
    expect(metric(reader, "Cost in selection")).to_contain_text(total)
    expect(multiselect(reader, "Provider")).to_contain_text("OpenAI")
    expect(multiselect(reader, "Group by")).to_contain_text("Model")
