"""The providers' spend limits beside our budgets: where the two have drifted apart.

Each sync stores what the provider says its caps on the account are
(`tracker.providers.billing`, table `provider_spend_limits`). Per account, the provider's cap
is the lowest monthly USD cap on the whole account (the organisation's or team's; a cap on a
project, workspace, member or one SKU bounds only part of it, and is listed beside). Our
budget is the account's monthly budget, else its service's when the account is the only
active one of that service.

The two have drifted apart (`Drift.drifted`) when:

- the provider's cap is below our budget (below `threshold_pct` % of it: default 100): the
  provider stops the account before our budget says it should;
- the provider has no cap at all while we budget the account: nothing stops it there.

Not compared, and so never drift: a cap in another currency or for another period, a
provider that would not say (the note says why), an account without a budget of ours.
Amounts are exact Decimals (USD).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import Account, AccountStatus, ProviderSpendLimit, Service

HUNDRED = Decimal(100)


class Drift(StrEnum):
    """How a provider's cap on an account compares with our budget for it."""

    WITHIN = "cap at or above budget"
    BELOW = "cap below budget"
    NO_CAP = "no cap at the provider"
    NO_BUDGET = "no budget of ours"
    NOT_COMPARABLE = "not comparable"
    NOT_READ = "could not be read"

    @property
    def drifted(self) -> bool:
        return self in (Drift.BELOW, Drift.NO_CAP)


@dataclass(frozen=True)
class CapComparison:
    """One account's cap at the provider against our monthly budget for it."""

    account: str
    provider: str
    budget: Decimal | None  # USD a month; None: no budget of ours
    budget_from: str  # "account", "service" or ""
    cap: Decimal | None  # the provider's lowest cap on the whole account; None: none/unread
    currency: str | None
    period: str | None
    enforcement: str | None
    status: Drift
    note: str
    read_at: dt.datetime | None


@dataclass(frozen=True)
class PartialCap:
    """A cap on part of an account (a project, a workspace, a member, one SKU)."""

    account: str
    provider: str
    scope: str
    amount: Decimal | None
    currency: str
    period: str
    enforcement: str | None
    note: str | None


def compare_caps(
    *,
    session: Session,
    accounts: Iterable[str] | None = None,
    threshold_pct: Decimal = HUNDRED,
) -> list[CapComparison]:
    """Every active account whose provider's caps were read (or the ones named), by name."""
    limits = _limits(session, accounts)
    if not limits:
        return []
    names = {name for name, *_ in limits}
    rows = session.execute(
        select(Account.name, Account.monthly_budget, Service.name, Service.monthly_budget)
        .join(Service, Service.id == Account.service_id)
        .where(Account.name.in_(names))
    ).all()
    active = Counter(
        session.scalars(
            select(Service.name)
            .join(Account, Account.service_id == Service.id)
            .where(Account.status != AccountStatus.DISABLED)
        )
    )
    out = []
    for account, own, provider, service_budget in sorted(rows, key=lambda r: str(r[0])):
        budget, source = (own, "account") if own is not None else (None, "")
        if budget is None and service_budget is not None and active[provider] == 1:
            budget, source = service_budget, "service"
        wide = [lim for name, lim in limits if name == account and lim.account_wide]
        out.append(_compare(account, provider, budget, source, wide, threshold_pct))
    return out


def partial_caps(*, session: Session) -> list[PartialCap]:
    """The caps on parts of accounts, for the record beside the comparison."""
    return [
        PartialCap(
            account=name,
            provider=provider,
            scope=limit.scope_name or limit.scope,
            amount=limit.amount,
            currency=limit.currency,
            period=limit.period,
            enforcement=limit.enforcement,
            note=limit.note,
        )
        for name, limit, provider in session.execute(
            select(Account.name, ProviderSpendLimit, Service.name)
            .join(Account, Account.id == ProviderSpendLimit.account_id)
            .join(Service, Service.id == Account.service_id)
            .where(ProviderSpendLimit.account_wide.is_(False))
            .order_by(Account.name, ProviderSpendLimit.scope)
        )
    ]


def _limits(
    session: Session, accounts: Iterable[str] | None
) -> list[tuple[str, ProviderSpendLimit]]:
    stmt = (
        select(Account.name, ProviderSpendLimit)
        .join(Account, Account.id == ProviderSpendLimit.account_id)
        .where(Account.status != AccountStatus.DISABLED)
        .order_by(Account.name, ProviderSpendLimit.scope)
    )
    if accounts is not None:
        stmt = stmt.where(Account.name.in_(list(accounts)))
    return [(name, limit) for name, limit in session.execute(stmt)]


def _compare(
    account: str,
    provider: str,
    budget: Decimal | None,
    source: str,
    wide: list[ProviderSpendLimit],
    threshold_pct: Decimal,
) -> CapComparison:
    def result(status: Drift, note: str, cap: ProviderSpendLimit | None = None) -> CapComparison:
        return CapComparison(
            account=account,
            provider=provider,
            budget=budget,
            budget_from=source,
            cap=None if cap is None or cap.amount is None else Decimal(cap.amount),
            currency=None if cap is None else cap.currency,
            period=None if cap is None else cap.period,
            enforcement=None if cap is None else cap.enforcement,
            status=status,
            note=note,
            read_at=max((lim.read_at for lim in wide), default=None),
        )

    readable = [lim for lim in wide if lim.readable]
    if not readable:
        return result(Drift.NOT_READ, "; ".join(lim.note or "" for lim in wide).strip("; "))
    caps = [lim for lim in readable if lim.amount is not None]
    if not caps:
        note = readable[0].note or "the provider says no cap is set on the whole account"
        return result(Drift.NO_CAP if budget is not None else Drift.NO_BUDGET, note)
    usable = [lim for lim in caps if lim.currency == "USD" and lim.period == "month"]
    if not usable:
        odd = min(caps, key=lambda lim: Decimal(lim.amount or 0))
        note = f"the provider's cap is in {odd.currency} per {odd.period}; ours in USD per month"
        return result(Drift.NOT_COMPARABLE, note, odd)
    cap = min(usable, key=lambda lim: Decimal(lim.amount or 0))
    amount = Decimal(cap.amount or 0)
    if budget is None:
        return result(Drift.NO_BUDGET, "set a monthly budget on the account to compare", cap)
    if amount * HUNDRED < Decimal(budget) * threshold_pct:
        note = f"the provider stops the account at ${amount:,.2f}, below our ${budget:,.2f}"
        return result(Drift.BELOW, note, cap)
    return result(Drift.WITHIN, cap.note or "", cap)
