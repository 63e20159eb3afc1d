"""Small builders for budget, alert, projection and anomaly tests (accounts and usage rows)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.costs.spend import assign_cost_sources
from tracker.models import Account, Service, UsageRecord


def add_account(
    session: Session,
    name: str,
    provider: str = "openai",
    *,
    budget: str | None = None,
    token_quota: int | None = None,
) -> Account:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id,
        name=name,
        credential_encrypted="not-a-real-credential",
        credential_last4="abcd",
        monthly_budget=None if budget is None else Decimal(budget),
        token_quota=token_quota,
    )
    session.add(account)
    session.flush()
    return account


def add_usage(
    session: Session,
    account: Account,
    day: dt.date,
    cost: str | Decimal | None,
    *,
    model: str = "gpt-4o",
    tier: str = "",
    billed: bool = True,
    estimated: str | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    requests: int = 0,
    pricing_status: str = "priced",
) -> UsageRecord:
    value = None if cost is None else Decimal(str(cost))
    row = UsageRecord(
        account_id=account.id,
        day=day,
        model=model,
        service_tier=tier,
        billed_cost=value if billed else None,
        estimated_cost=Decimal(estimated) if estimated is not None else (None if billed else value),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        requests=requests,
        pricing_status=pricing_status,
    )
    session.add(row)
    session.flush()
    # Which amount counts is the product's rule, not the seed's.
    assign_cost_sources(session=session, start=day, end=day, account_ids=[account.id])
    return row
