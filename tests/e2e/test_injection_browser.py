"""Provider and user text is shown as text: links, images and HTML in names and errors.

An account name, a provider error message and a model id carry Markdown links, images and
HTML pointing at a canary server on 127.0.0.1. Chromium opens every page that shows them;
the canary must receive nothing, no link to it may exist, and the text must read literally.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.e2e.conftest import ARTIFACTS, new_page, running_app
from tests.factories.dashboard import PASSWORD
from tests.fakes.recorder import Recorder, recording_server
from tracker.core.db import make_engine
from tracker.models import Account, UsageRecord

pytestmark = pytest.mark.e2e


@pytest.fixture
def canary() -> Iterator[Recorder]:
    with recording_server() as recorder:
        yield recorder


def test_hostile_names_and_messages_render_as_text(
    seeded_pg: str, tmp_path: Path, canary: Recorder, browser: Any
) -> None:
    from playwright.sync_api import expect

    name = f"[click me]({canary.url}/link) <b>bold</b>"
    error = f"![pixel]({canary.url}/md.png) <img src='{canary.url}/html.png'> failed"
    model = f"<script>fetch('{canary.url}/script')</script>gpt-4o"
    engine = make_engine(seeded_pg)
    with Session(engine) as session, session.begin():
        account = session.scalars(select(Account).where(Account.name == "OpenAI Prod")).one()
        account.name, account.last_error, account.status = name, error, "error"
        session.execute(
            update(UsageRecord)
            .where(UsageRecord.account_id == account.id, UsageRecord.model == "gpt-4o")
            .values(model=model)
        )
    engine.dispose()
    with running_app(seeded_pg, tmp_path) as (url, _log):
        page = new_page(browser.new_context(viewport={"width": 1400, "height": 1200}))
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill("alice")
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
        for link, heading in [
            (None, "Overview"),
            ("Accounts", "Accounts"),
            ("Sync health", "Sync health"),
            ("Usage explorer", "Usage explorer"),
        ]:
            if link:
                page.get_by_role("link", name=link, exact=True).click()
            expect(page.get_by_role("heading", name=heading).first).to_be_visible()
            page.wait_for_timeout(1500)  # let every element and image settle
            links = page.locator(f"a[href^='{canary.url}']")
            assert links.count() == 0, (heading, links.first.evaluate("e => e.outerHTML"))
            assert page.locator(f"img[src^='{canary.url}']").count() == 0, heading
            assert page.locator("main b", has_text="bold").count() == 0, heading
            if heading in ("Overview", "Sync health"):
                # The name reads literally (an invisible word joiner keeps its URL unlinked).
                shown = page.locator("body").inner_text().replace("\u2060", "")
                assert name in shown, heading
            if heading == "Sync health":
                page.screenshot(path=str(ARTIFACTS / "injection-sync-health.png"), full_page=True)
    assert canary.requests == []
