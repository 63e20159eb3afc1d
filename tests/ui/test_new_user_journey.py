"""A new user's first day: the setup link, connect OpenAI, sync it from the app, see the spend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.fakes.provider_server import OPENAI_KEY, ProviderServer
from tests.ui.conftest import current_user_of, new_app, run_until
from tracker.identity import links
from tracker.models import SyncRun, UsageRecord
from tracker.ui.components import money

# The fake server's three example days bill 2.82, 2.487 and 3.381 USD (tests/ingest/test_sync.py).
OPENAI_BILLED = Decimal("2.82") + Decimal("2.487") + Decimal("3.381")


def move_openai_examples_into_this_month(server: ProviderServer) -> None:
    """Re-date the example buckets to the last three days of this month (UTC), in order."""
    today = dt.datetime.now(dt.UTC).date()
    buckets = [b for rows in server.openai_usage.values() for b in rows] + server.openai_costs
    old_days = sorted({b["start_time"] for b in buckets})
    assert len(old_days) == 3
    new_days = [max(today.replace(day=1), today - dt.timedelta(days=2 - i)) for i in range(3)]
    epoch = {
        old: int(dt.datetime.combine(new, dt.time(), dt.UTC).timestamp())
        for old, new in zip(old_days, new_days, strict=True)
    }
    for bucket in buckets:
        bucket["start_time"] = epoch[bucket["start_time"]]
        bucket["end_time"] = bucket["start_time"] + 86_400


def test_setup_link_connect_openai_sync_now_and_see_the_spend(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    with ProviderServer() as server:
        move_openai_examples_into_this_month(server)

        with Session(committed_db) as session, session.begin():
            setup = links.issue_setup(session=session)  # what the server prints at start
        at = new_app()
        at.query_params["setup"] = setup
        at.run()
        for key, value in {
            "link_setup_username": "ada",
            "link_setup_email": "ada@example.org",
            "link_setup_password": "a long enough secret",
            "link_setup_repeat": "a long enough secret",
        }.items():
            at.text_input(key=key).input(value)
        next(b for b in at.button if b.label == "Save").click()
        at.run()
        assert not at.exception
        at.run()  # what the browser's return from the sign-in route shows
        assert current_user_of(at) == ("ada", "admin")

        at.switch_page("pages/accounts.py").run()
        at.selectbox(key="add_provider").select("openai")
        at.text_input(key="add_name").input("OpenAI Prod")
        at.text_input(key="add_key").input(OPENAI_KEY)
        at.text_input(key="add_base_url").input(server.url + "/v1")
        next(b for b in at.button if b.label == "Add account").click()
        at.run()
        assert not at.exception
        assert any("Added OpenAI Prod" in s.value.replace("\\", "") for s in at.success)

        at.selectbox(key="act_account").select("OpenAI Prod")
        at.button(key="act_sync").click().run()
        assert not at.exception
        # Progress while it runs (unless it already finished within this very run).
        assert at.success or any(
            "Syncing OpenAI Prod" in i.value.replace("\\", "") for i in at.info
        )
        run_until(at, lambda page: bool(page.success) or bool(page.error))
        assert [e.value for e in at.error] == []
        # Messages are escaped Markdown (names are text): compare what the page shows.
        assert any(s.value.replace("\\", "").startswith("OpenAI Prod: ok,") for s in at.success)

    with Session(committed_db) as session:
        billed = session.scalar(select(func.sum(UsageRecord.billed_cost)))
        assert billed == OPENAI_BILLED
        assert session.scalar(select(SyncRun.status)) == "success"

    at.switch_page("pages/overview.py").run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Month-to-date spend"] == money(OPENAI_BILLED)
    assert len(at.get("plotly_chart")) >= 1  # the 30-day chart
