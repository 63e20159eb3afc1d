"""The sync's bulk write path (COPY + INSERT ... ON CONFLICT on PostgreSQL, executemany on
SQLite) stores every value exactly, including text that COPY must escape."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.ingest.writer import upsert_rows
from tracker.models import Account, Service, UsageRecord, utcnow
from tracker.models.usage_kinds import from_json, pack
from tracker.providers.base import UsageRow

AWKWARD = ["tab\there", "back\\slash", "new\nline", "cr\rreturn", "\\N", "", "plain ünïcode"]


def _account(session: Session) -> int:
    service = session.scalar(select(Service).where(Service.name == "openai"))
    account = Account(
        service=service, name="write-path", credential_encrypted="x", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    return account.id


def test_awkward_text_and_nulls_round_trip(session: Session) -> None:
    account_id = _account(session)
    day = dt.date(2026, 3, 1)
    rows = [
        UsageRow(
            day=day,
            model=text,
            project_id=f"p{i}",
            api_key_id=text,
            usage_type="completions",
            project_name=None if i % 2 else text,
            api_key_name=text or None,
            input_tokens=10**12 + i,
            output_tokens=i,
            requests=1,
            other_units=Decimal("0.000001"),
            other_unit_name=None if i % 3 else text,
            billed_cost=None if i % 2 else Decimal("12.345678"),
        )
        for i, text in enumerate(AWKWARD)
    ]
    upsert_rows(session, account_id, rows, stamp=utcnow(), batch_size=3)
    stored = {
        r.project_id: r
        for r in session.scalars(select(UsageRecord).where(UsageRecord.account_id == account_id))
    }
    assert len(stored) == len(rows)
    for row in rows:
        got = stored[row.project_id]
        assert (got.model, got.api_key_id, got.project_name, got.api_key_name) == (
            row.model,
            row.api_key_id,
            row.project_name,
            row.api_key_name,
        )
        assert got.other_unit_name == row.other_unit_name
        assert (got.input_tokens, got.output_tokens) == (row.input_tokens, row.output_tokens)
        assert got.billed_cost == row.billed_cost
        assert got.cost_source == ("none" if row.billed_cost is None else "billed")
        assert got.pricing_status == "pending" and got.estimated_cost is None


def test_one_pass_adds_up_across_batches_and_a_new_pass_replaces(session: Session) -> None:
    account_id = _account(session)
    day = dt.date(2026, 3, 2)
    row = UsageRow(day=day, model="gpt-4o", input_tokens=5, billed_cost=Decimal("1.5"))
    first = utcnow()
    upsert_rows(session, account_id, [row, row, row], stamp=first, batch_size=1)
    got = session.scalar(select(UsageRecord).where(UsageRecord.account_id == account_id))
    assert got is not None
    session.refresh(got)
    assert (got.input_tokens, got.billed_cost) == (15, Decimal("4.5"))
    upsert_rows(session, account_id, [row], stamp=first + dt.timedelta(seconds=1))
    session.refresh(got)
    assert (got.input_tokens, got.billed_cost) == (5, Decimal("1.5"))


def test_usage_details_are_stored_added_up_in_a_pass_and_replaced_by_the_next(
    session: Session,
) -> None:
    account_id = _account(session)
    day = dt.date(2026, 3, 3)
    audio = UsageRow(
        day=day,
        model="gpt-realtime",
        input_tokens=100,
        output_tokens=50,
        details=pack({"input_audio_tokens": 60, "output_audio_tokens": 40}),
    )
    searches = UsageRow(day=day, model="gpt-realtime", details=pack({"web_search_calls": 3}))
    plain = UsageRow(day=day, model="gpt-realtime", input_tokens=1)
    first = utcnow()
    # batch_size=1: the same key meets itself in the database, not only in Python.
    upsert_rows(session, account_id, [audio, searches, audio, plain], stamp=first, batch_size=1)
    got = session.scalar(select(UsageRecord).where(UsageRecord.account_id == account_id))
    assert got is not None
    session.refresh(got)
    assert got.input_tokens == 201
    assert from_json(got.usage_details) == {
        "input_audio_tokens": 120,
        "output_audio_tokens": 80,
        "web_search_calls": 3,
    }
    upsert_rows(session, account_id, [plain], stamp=first + dt.timedelta(seconds=1))
    session.refresh(got)
    assert (got.input_tokens, got.usage_details) == (1, None)
    upsert_rows(session, account_id, [audio], stamp=first + dt.timedelta(seconds=2))
    session.refresh(got)
    assert from_json(got.usage_details) == {"input_audio_tokens": 60, "output_audio_tokens": 40}
