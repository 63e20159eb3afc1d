"""estimate_range on stored usage, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import Account, Service, UsageRecord
from tracker.pricing import estimate_range

DAY = dt.date(2026, 8, 1)


def _account(session: Session, provider: str, name: str) -> Account:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id, name=name, credential_encrypted="v1.x.y", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    return account


def test_estimate_range_prices_flags_and_keeps_billed(session: Session) -> None:
    openai = _account(session, "openai", "oa")
    other = _account(session, "anthropic", "an")
    known = UsageRecord(
        account_id=openai.id,
        day=DAY,
        model="gpt-4o-mini-2024-07-18",
        input_tokens=1_000_000,
        cached_input_tokens=1_000_000,
        output_tokens=1_000_000,
    )
    batch = UsageRecord(
        account_id=openai.id,
        day=DAY,
        model="gpt-4o-mini",
        service_tier="batch",
        input_tokens=1_000_000,
        output_tokens=1_000_000,
    )
    unknown = UsageRecord(
        account_id=openai.id, day=DAY, model="mystery-model", input_tokens=5, output_tokens=7
    )
    billed = UsageRecord(
        account_id=openai.id, day=DAY, usage_type="cost:completions", billed_cost=Decimal("1.5")
    )
    outside = UsageRecord(
        account_id=openai.id, day=DAY + dt.timedelta(days=1), model="gpt-4o-mini", input_tokens=10
    )
    not_mine = UsageRecord(account_id=other.id, day=DAY, model="claude-3-haiku", input_tokens=10)
    session.add_all([known, batch, unknown, billed, outside, not_mine])
    session.flush()

    summary = estimate_range(session=session, start=DAY, end=DAY, account_ids=[openai.id])

    assert summary.rows == 4
    assert summary.unpriced_tokens == {("openai", "mystery-model"): 12}
    session.refresh(known)
    assert known.estimated_cost == Decimal("0.825000")  # 0.15 + 0.075 + 0.60
    assert (known.pricing_status, known.cost_source) == ("priced", "estimated")
    assert batch.estimated_cost == Decimal("0.375000")  # half of 0.15 + 0.60
    assert unknown.estimated_cost is None
    assert (unknown.pricing_status, unknown.cost_source) == ("unpriced", "none")
    assert billed.billed_cost == Decimal("1.5")
    assert (billed.pricing_status, billed.cost_source) == ("not_applicable", "billed")
    assert outside.pricing_status == "pending" and outside.estimated_cost is None
    assert not_mine.pricing_status == "pending"

    again = estimate_range(session=session, start=DAY, end=DAY)
    assert again.rows == 5 and again.updated == 1  # only the anthropic row changed
