"""The Credits page's frames: each account's grants, balances, projected exhaustion and the
provider's own balance beside the ledger (`tracker.planning.credits`)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy.orm import Session

from tracker.planning.credits import AccountCredits, ledger
from tracker.providers.registry import display_name

GRANT_COLUMNS = [
    "id",
    "account",
    "priority",
    "amount",
    "currency",
    "starts_on",
    "expires_on",
    "used",
    "expired",
    "remaining",
    "status",
    "note",
]
ACCOUNT_COLUMNS = [
    "account",
    "provider",
    "available",
    "upcoming",
    "exhausted_on",
    "exhaustion",
    "uncovered",
    "provider_balance",
    "provider_currency",
    "ledger_balance",
    "difference",
]
# Every amount of these frames, shown to the cent (in its own currency where it has one).
MONEY_COLUMNS = [
    "available",
    "upcoming",
    "uncovered",
    "provider_balance",
    "ledger_balance",
    "difference",
    "amount",
    "used",
    "expired",
    "remaining",
    "left",
]


def credit_ledger(*, session: Session, today: dt.date) -> list[AccountCredits]:
    return ledger(session=session, today=today)


def accounts_frame(accounts: list[AccountCredits]) -> pd.DataFrame:
    """One row per account: USD available now and later, the projected exhaustion, and the
    provider-reported balance against the ledger (amounts as exact Decimals)."""
    rows = [
        (
            a.account,
            display_name(a.provider),
            a.available,
            a.upcoming,
            a.exhausted_on,
            a.exhaustion,
            a.uncovered,
            a.provider_balance,
            a.provider_currency,
            a.ledger_balance,
            a.balance_difference,
        )
        for a in accounts
    ]
    return pd.DataFrame(rows, columns=ACCOUNT_COLUMNS)


def grants_frame(accounts: list[AccountCredits]) -> pd.DataFrame:
    """One row per grant, in the order usage burns them within each account."""
    rows = [
        (
            g.id,
            g.account,
            g.priority,
            g.amount,
            g.currency,
            g.starts_on,
            g.expires_on,
            g.used,
            g.expired,
            g.remaining,
            g.status,
            g.note or "",
        )
        for a in accounts
        for g in a.grants
    ]
    return pd.DataFrame(rows, columns=GRANT_COLUMNS)


def burn_frame(account: AccountCredits) -> pd.DataFrame:
    """What the USD grants have left at the end of each day, recorded then projected (the
    projection starts from the last recorded day, so a chart draws one unbroken line)."""
    recorded = [(day, left, "Recorded") for day, left, projected in account.burn if not projected]
    ahead = [(day, left, "Projected") for day, left, projected in account.burn if projected]
    if recorded and ahead:
        ahead.insert(0, (recorded[-1][0], recorded[-1][1], "Projected"))
    return pd.DataFrame(recorded + ahead, columns=["day", "left", "kind"])
