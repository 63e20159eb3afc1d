"""A closed month re-synced with a restated day (the fake provider server, SQLite and
PostgreSQL): its snapshot keeps its figures, and exactly one correction, with both amounts,
is posted to the next open month, once however often the detection runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tests.factories import add_chart_of_accounts, add_user
from tests.fakes.provider_server import OPENAI_KEY
from tracker import jobs
from tracker.attribution.chargeback import chargeback
from tracker.closing import corrections, periods
from tracker.core.runtime import Runtime
from tracker.ingest import sync
from tracker.providers import accounts

AUG, SEP = dt.date(2026, 8, 1), dt.date(2026, 9, 1)
AUG1, AUG3 = AUG, dt.date(2026, 8, 3)


def prepare_books(runtime: Runtime, server) -> None:  # type: ignore[no-untyped-def]
    with runtime.session_factory.begin() as session:
        accounts.add_account(
            session=session, cipher=runtime.cipher, provider="openai", name="openai-prod",
            api_key=OPENAI_KEY, base_url=server.url + "/v1",
        )  # fmt: skip
        add_user(session, "fin", "finance")
        add_user(session, "alice", "admin")
        add_chart_of_accounts(session)


def test_a_restated_day_of_a_closed_month_posts_one_correction(runtime, server) -> None:
    prepare_books(runtime, server)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    with runtime.session_factory.begin() as session:
        periods.prepare(session=session, month=AUG, actor="fin", today=dt.date(2026, 9, 2))
        closed = periods.approve(session=session, month=AUG, actor="alice")
        assert closed.total == chargeback(session=session, month=AUG).total > 0
    [line] = closed.lines  # one provider, account and team (unassigned)

    # OpenAI restates August 1st: a line item of $0.24 becomes $0.30.
    assert server.openai_costs[0]["results"][0]["amount"]["value"] == 0.24
    server.openai_costs[0]["results"][0]["amount"]["value"] = 0.30
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert not any(f.startswith("corrections") for f in jobs.after_new_usage(runtime))

    with runtime.session_factory() as session:
        assert periods.snapshot(session=session, month=AUG) == closed  # figures unchanged
        assert chargeback(session=session, month=AUG).total == closed.total + Decimal("0.06")
        [correction] = corrections.list_corrections(session=session)
    assert (correction.month, correction.posted_month) == (AUG, SEP)
    assert (correction.provider, correction.account, correction.team) == (
        line.provider, line.account, line.team,
    )  # fmt: skip
    assert correction.original == line.amount == closed.total
    assert correction.new == closed.total + Decimal("0.06")
    assert correction.difference == Decimal("0.06")
    assert correction.cause is not None and "re-sync" in correction.cause

    # Nothing changed since: the worker's run and a repeated sync record nothing more.
    jobs.corrections_job(runtime)
    assert sync.run_sync(runtime, start=AUG1, end=AUG3).ok
    assert not jobs.after_new_usage(runtime)
    with runtime.session_factory() as session:
        assert len(corrections.list_corrections(session=session)) == 1
