"""The Overview page's read model: month-to-date spend and budget, account cards, the 30-day
chart and top models.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.units import month_start, same_days_last_month, to_dollars
from tracker.costs.reconcile import unpriced_models
from tracker.models import (
    Account,
    Service,
)
from tracker.planning.budgets import org_budget
from tracker.reporting.sources import NOT_REPORTED, cost_columns, pick_source, reported_requests

STATUS_OK, STATUS_WARNING, STATUS_CRITICAL = "OK", "Warning", "Critical"


# --- month to date --------------------------------------------------------------------------


@dataclass(frozen=True)
class CostTotals:
    """A cost total (USD) with its billed / estimated split and the count of unpriced rows."""

    cost: Decimal
    billed: Decimal
    estimated: Decimal
    unpriced_rows: int

    @property
    def basis(self) -> str:
        """Say which figures make up the total: billed, estimated or mixed."""
        if self.billed and self.estimated:
            return "mixed"
        if self.estimated:
            return "estimated"
        if self.billed:
            return "billed"
        return "none"


def cost_totals(*, session: Session, start: dt.date, end: dt.date) -> CostTotals:
    """Total cost of usage on UTC days start..end inclusive, all accounts."""
    src = pick_source()
    row = session.execute(select(*cost_columns(src)).where(src.day >= start, src.day <= end)).one()
    return CostTotals(
        cost=to_dollars(row.cost),
        billed=to_dollars(row.billed_cost),
        estimated=to_dollars(row.estimated_cost),
        unpriced_rows=int(row.unpriced_rows or 0),
    )


@dataclass(frozen=True)
class SpendSummary:
    """Month-to-date spend, and its comparison with the same days last month.

    Today's usage is still arriving, so the comparison is of complete days only: the 1st to
    yesterday this month (`complete`) against the same days last month (`previous`). On the
    1st there is no complete day yet and no comparison (`previous_start` is None).
    """

    today: dt.date
    month_start: dt.date
    current: CostTotals  # the 1st through today, today's partial usage included
    complete: CostTotals  # the 1st through yesterday
    previous_start: dt.date | None
    previous_end: dt.date | None
    previous: CostTotals
    budget: Decimal | None
    budget_source: str  # "organisation", "accounts" or "none"

    @property
    def change_pct(self) -> Decimal | None:
        """Complete days vs the same days last month, in percent; None when last month's
        were zero or there is no complete day yet."""
        if self.previous_start is None or not self.previous.cost:
            return None
        return (self.complete.cost - self.previous.cost) / self.previous.cost * 100

    @property
    def budget_used_pct(self) -> Decimal | None:
        if not self.budget:
            return None
        return self.current.cost / self.budget * 100


NO_COST = CostTotals(cost=Decimal(0), billed=Decimal(0), estimated=Decimal(0), unpriced_rows=0)


def spend_summary(*, session: Session, today: dt.date) -> SpendSummary:
    """Month-to-date spend through `today` (UTC); complete days compared with last month's."""
    start = month_start(today)
    yesterday = today - dt.timedelta(days=1)
    budget, source = org_budget(session=session)
    if yesterday < start:
        prev_start, prev_end, complete, previous = None, None, NO_COST, NO_COST
    else:
        prev_start, prev_end = same_days_last_month(yesterday)
        complete = cost_totals(session=session, start=start, end=yesterday)
        previous = cost_totals(session=session, start=prev_start, end=prev_end)
    return SpendSummary(
        today=today,
        month_start=start,
        current=cost_totals(session=session, start=start, end=today),
        complete=complete,
        previous_start=prev_start,
        previous_end=prev_end,
        previous=previous,
        budget=budget,
        budget_source=source,
    )


# --- per-account cards ----------------------------------------------------------------------


def status_for(pct: Decimal | None, *, warning_pct: Decimal, critical_pct: Decimal) -> str:
    """OK / Warning / Critical for a usage percentage (of budget or quota)."""
    if pct is None:
        return STATUS_OK
    if pct >= critical_pct:
        return STATUS_CRITICAL
    if pct >= warning_pct:
        return STATUS_WARNING
    return STATUS_OK


@dataclass(frozen=True)
class AccountCard:
    """What the overview shows of one account this month (USD, UTC)."""

    account_id: int
    name: str
    provider: str
    provider_display_name: str
    cost: Decimal
    billed: Decimal
    estimated: Decimal
    tokens: int
    monthly_budget: Decimal | None
    budget_used_pct: Decimal | None
    token_quota: int | None
    quota_used_pct: Decimal | None
    tokens_remaining: int | None
    balance_remaining: Decimal | None
    balance_currency: str | None
    account_status: str
    last_sync_at: dt.datetime | None
    last_error: str | None
    status: str


def account_cards(
    *,
    session: Session,
    today: dt.date,
    warning_pct: Decimal,
    critical_pct: Decimal,
) -> list[AccountCard]:
    """One card per account: month-to-date cost, budget and quota used, status."""
    start = month_start(today)
    src = pick_source()
    usage = (
        select(
            src.account_id.label("account_id"),
            src.sums["cost"].label("cost"),
            src.sums["billed_cost"].label("billed"),
            src.sums["estimated_cost"].label("estimated"),
            src.sums["tokens"].label("tokens"),
        )
        .where(src.day >= start, src.day <= today)
        .group_by(src.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.name,
            Service.name.label("provider"),
            Service.display_name,
            Account.monthly_budget,
            Account.token_quota,
            Account.balance_remaining,
            Account.balance_currency,
            Account.status,
            Account.last_sync_at,
            Account.last_error,
            usage.c.cost,
            usage.c.billed,
            usage.c.estimated,
            usage.c.tokens,
        )
        .join(Service, Service.id == Account.service_id)
        .outerjoin(usage, usage.c.account_id == Account.id)
        .order_by(Account.name)
    ).all()
    cards = []
    for r in rows:
        cost = to_dollars(r.cost)
        tokens = int(r.tokens or 0)
        budget_pct = cost / r.monthly_budget * 100 if r.monthly_budget else None
        quota_pct = Decimal(tokens) / r.token_quota * 100 if r.token_quota else None
        worst = max((p for p in (budget_pct, quota_pct) if p is not None), default=None)
        cards.append(
            AccountCard(
                account_id=r.id,
                name=r.name,
                provider=r.provider,
                provider_display_name=r.display_name,
                cost=cost,
                billed=to_dollars(r.billed),
                estimated=to_dollars(r.estimated),
                tokens=tokens,
                monthly_budget=r.monthly_budget,
                budget_used_pct=budget_pct,
                token_quota=r.token_quota,
                quota_used_pct=quota_pct,
                tokens_remaining=max(r.token_quota - tokens, 0) if r.token_quota else None,
                balance_remaining=r.balance_remaining,
                balance_currency=r.balance_currency,
                account_status=r.status,
                last_sync_at=r.last_sync_at,
                last_error=r.last_error,
                status=status_for(worst, warning_pct=warning_pct, critical_pct=critical_pct),
            )
        )
    return cards


# --- charts ----------------------------------------------------------------------------------


def daily_cost_by_provider(*, session: Session, end: dt.date, days: int = 30) -> pd.DataFrame:
    """Cost per UTC day and provider for the `days` days ending on `end` (inclusive).

    Columns: day (date), provider (display name), cost, billed_cost, estimated_cost (Decimal).
    Days without usage are absent; the chart fills them.
    """
    start = end - dt.timedelta(days=days - 1)
    src = pick_source()
    rows = session.execute(
        select(
            src.day.label("day"),
            Service.display_name.label("provider"),
            *cost_columns(src)[:3],
        )
        .join(Account, Account.id == src.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(src.day >= start, src.day <= end)
        .group_by(src.day, Service.display_name)
        .order_by(src.day, Service.display_name)
    ).all()
    return pd.DataFrame(
        [
            {
                "day": r.day,
                "provider": r.provider,
                "cost": to_dollars(r.cost),
                "billed_cost": to_dollars(r.billed_cost),
                "estimated_cost": to_dollars(r.estimated_cost),
            }
            for r in rows
        ],
        columns=["day", "provider", "cost", "billed_cost", "estimated_cost"],
    )


def top_models(*, session: Session, start: dt.date, end: dt.date, limit: int = 10) -> pd.DataFrame:
    """The models with the highest cost over start..end (inclusive), highest first."""
    src = pick_source()
    cost = src.sums["cost"]
    rows = session.execute(
        select(
            src.model.label("model"),
            Service.display_name.label("provider"),
            cost.label("cost"),
            src.sums["tokens"].label("tokens"),
            src.sums["requests"].label("requests"),
        )
        .join(Account, Account.id == src.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(src.day >= start, src.day <= end)
        .group_by(src.model, Service.display_name)
        # Ties (models of no cost under two providers) in a fixed order, not the scan's.
        .order_by(cost.desc(), src.model, Service.display_name)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            {
                "model": r.model or NOT_REPORTED,
                "provider": r.provider,
                "cost": to_dollars(r.cost),
                "tokens": int(r.tokens),
                "requests": reported_requests(r.requests, r.tokens),
            }
            for r in rows
        ],
        columns=["model", "provider", "cost", "tokens", "requests"],
    )


def unpriced_frame(*, session: Session, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Models without a price in start..end: provider, model, rows, tokens, first and last day."""
    columns = ["provider", "model", "rows", "tokens", "first_day", "last_day"]
    found = unpriced_models(session=session, start=start, end=end)
    return pd.DataFrame(
        [(m.provider, m.model, m.rows, m.tokens, m.first_day, m.last_day) for m in found],
        columns=columns,
    )
