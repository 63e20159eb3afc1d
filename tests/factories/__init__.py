"""The one set of test data builders: accounts and usage rows, plus two seeded scenarios.

`add_account`, `add_usage` and `add_user` build single rows (`add_chart_of_accounts` the GL
accounts of the month-end close); `tests.factories.dashboard` seeds the accounts, usage, sync
runs and users the query, UI and browser tests read, and `tests.factories.exports` the
January the export tests check to the cent. Which amount of a
usage row counts is always left to the product's rule (`assign_cost_sources`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.closing import ledger
from tracker.costs.spend import assign_cost_sources
from tracker.models import Account, Service, UsageRecord, User


def add_account(
    session: Session,
    name: str,
    provider: str = "openai",
    *,
    budget: str | Decimal | None = None,
    token_quota: int | None = None,
    credential: tuple[str, str] = ("not-a-real-credential", "abcd"),
    **fields: Any,
) -> Account:
    """An account of `provider`; `credential` is (stored ciphertext, last 4 characters)."""
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id,
        name=name,
        credential_encrypted=credential[0],
        credential_last4=credential[1],
        monthly_budget=None if budget is None else Decimal(budget),
        token_quota=token_quota,
        **fields,
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


def add_user(session: Session, username: str, role: str, *, active: bool = True) -> User:
    """A dashboard user who signs in through a session the tests start (no password)."""
    user = User(
        username=username,
        email=f"{username}@example.org",
        name=username.title(),
        password_hash="not-a-password-hash",
        role=role,
        is_active=active,
        failed_login_count=0,
    )
    session.add(user)
    session.flush()
    return user


def add_chart_of_accounts(
    session: Session, *, expense: str = "6100", accrued_liabilities: str = "2150"
) -> None:
    """A chart with one expense and one liability account, named the close's defaults."""
    for code, name, kind in (
        (expense, "AI services", "expense"),
        (accrued_liabilities, "Accrued liabilities", "liability"),
    ):
        ledger.save_gl_account(session=session, code=code, name=name, kind=kind, actor="t")
    ledger.set_gl_defaults(
        session=session, expense=expense, accrued_liabilities=accrued_liabilities, actor="t"
    )
