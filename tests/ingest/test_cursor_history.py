"""Cursor keeps only a recent window of usage: a sync keeps what it stored for the days the
Admin API no longer answers, and replaces the days it still does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.fakes.cursor_server import CURSOR_KEY, CursorServer
from tracker.ingest import sync
from tracker.models import UsageRecord
from tracker.providers import accounts
from tracker.providers.base import make_http_session

JUL30, JUL31 = dt.date(2026, 7, 30), dt.date(2026, 7, 31)
AUG1, AUG2, AUG3 = (dt.date(2026, 8, d) for d in (1, 2, 3))
SAM = "admin@company.com"


@pytest.fixture
def cursor_server() -> Iterator[CursorServer]:
    with CursorServer() as fake:
        yield fake


def stored(runtime, account_id: int) -> dict[dt.date, Decimal]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(UsageRecord.day, func.sum(UsageRecord.billed_cost))
            .where(UsageRecord.account_id == account_id)
            .group_by(UsageRecord.day)
        ).all()
    return {day: Decimal(str(total)).quantize(Decimal("0.000001")) for day, total in rows}


def test_a_sync_never_prunes_days_the_api_rolled_off(runtime, cursor_server):
    with runtime.session_factory.begin() as session:
        account_id = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider="cursor",
            name="cursor-team",
            api_key=CURSOR_KEY,
            base_url=cursor_server.url,
        ).id
    http = make_http_session(max_retries=2, backoff_factor=0.01, backoff_max=1)
    first = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert first.status == "ok", first.message
    before = stored(runtime, account_id)
    assert set(before) == {JUL30, JUL31, AUG1, AUG2, AUG3}
    assert sum(before.values()) == Decimal("0.782643")  # each day rounded to the micro-dollar

    # Weeks later Cursor holds only Aug 2 on, and one event of Aug 3 was re-rated away.
    cursor_server.held_from = AUG2
    cursor_server.events = [
        e
        for e in cursor_server.events
        if not (e["userEmail"] == SAM and e["kind"] == "Errored, Not Charged")
    ]
    again = sync.sync_account(runtime, account_id, start=JUL30, end=AUG3, http=http)
    assert again.status == "ok", again.message
    after = stored(runtime, account_id)
    assert after == before  # the rolled-off days keep what the first sync stored
    with runtime.session_factory() as session:
        kinds = set(
            session.scalars(
                select(UsageRecord.usage_type).where(
                    UsageRecord.account_id == account_id, UsageRecord.day == AUG3
                )
            )
        )
    assert kinds == {"usage_based"}  # a covered day is replaced: the vanished event is gone
    http.close()
