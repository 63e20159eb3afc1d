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
- the provider has no cap at all while we budget the account: nothing stops it there (a
  spend alert there does not change that: it only notifies).

Not compared, and so never drift: a cap in another currency or for another period, a
provider that would not say (the note says why), an account without a budget of ours.

A provider's spend alerts on the whole account (OpenAI's) are never taken for a cap: they
are compared on their own (`AlertCheck`): the lowest alert above our budget (the provider
first warns after our budget is spent), or no alert and no cap at all, is worth showing.
Members' effective limits (Anthropic's) are listed per member (`member_limits`), with the
user of ours whose email they share and the member's team. Amounts are exact Decimals.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.attribution.teams import UNASSIGNED, TeamResolver
from tracker.core.units import today_utc
from tracker.models import Account, AccountStatus, LimitKind, ProviderSpendLimit, Service, User

HUNDRED = Decimal(100)
PERIOD_ORDER = {"month": 0, "week": 1, "day": 2}  # a member's broadest limit first


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


class AlertCheck(StrEnum):
    """How a provider's spend alerts on an account compare with our budget. An alert only
    notifies: it is never a cap, whatever its amount."""

    WITHIN = "alert at or below budget"
    ABOVE = "alert above budget"
    NONE = "no alert at the provider"
    NO_BUDGET = "no budget of ours"
    NOT_COMPARABLE = "not comparable"
    NOT_READ = "could not be read"


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
    # The provider's lowest spend alert on the whole account (USD a month) and how it
    # compares; None where the provider keeps no alerts (or they were never read).
    alert: Decimal | None = None
    alert_status: AlertCheck | None = None


@dataclass(frozen=True)
class MemberLimit:
    """A member's effective limit at the provider for one period, and whose it is here.

    `readable` False: the provider would not tell the members' limits (`source` says why);
    `amount` None with `readable`: no limit applies to the member for that period."""

    account: str
    provider: str
    member: str
    email: str | None
    user: str | None  # the username of ours with the member's email
    team: str | None  # the team the member's spend goes to (their user id's mapping)
    amount: Decimal | None
    currency: str
    period: str
    spent: Decimal | None  # the provider's figure for the current period
    source: str
    readable: bool
    read_at: dt.datetime


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
        caps = [lim for lim in wide if lim.kind == LimitKind.CAP]
        alerts = [lim for lim in wide if lim.kind == LimitKind.ALERT]
        found = _compare(account, provider, budget, source, caps, alerts, threshold_pct)
        out.append(_with_alerts(found, alerts))
    return out


def member_limits(*, session: Session, today: dt.date | None = None) -> list[MemberLimit]:
    """Every member's effective limit the providers reported, by account, member and period,
    with the user of ours whose email matches (case aside) and the member's team today."""
    rows = list(
        session.execute(
            select(Account.name, ProviderSpendLimit, Service.name)
            .join(Account, Account.id == ProviderSpendLimit.account_id)
            .join(Service, Service.id == Account.service_id)
            .where(ProviderSpendLimit.kind == LimitKind.MEMBER)
            .where(Account.status != AccountStatus.DISABLED)
        )
    )
    if not rows:
        return []
    rows.sort(key=lambda r: (r[0], r[1].scope_name or "", PERIOD_ORDER.get(r[1].period, 9)))
    emails = {lim.email.lower() for _, lim, _ in rows if lim.email}
    ours = {
        email.lower(): username
        for username, email in session.execute(
            select(User.username, User.email).where(func.lower(User.email).in_(emails))
        )
    }
    teams = TeamResolver(session)
    day = today or today_utc()
    out = []
    for account, lim, provider in rows:
        ident = lim.scope.split(":")[1] if lim.scope.count(":") >= 2 else ""
        team = (
            teams.team(day, user=ident, api_key="", project="", account=account)
            if lim.readable
            else None
        )
        out.append(
            MemberLimit(
                account=account,
                provider=provider,
                member=lim.scope_name or ident,
                email=lim.email,
                user=ours.get(lim.email.lower()) if lim.email else None,
                team=None if team == UNASSIGNED else team,
                amount=None if lim.amount is None else Decimal(lim.amount),
                currency=lim.currency,
                period=lim.period,
                spent=None if lim.spent is None else Decimal(lim.spent),
                source=lim.note or "",
                readable=lim.readable,
                read_at=lim.read_at,
            )
        )
    return out


def partial_caps(*, session: Session) -> list[PartialCap]:
    """The caps (and alerts) on parts of accounts, for the record beside the comparison;
    members' effective limits are `member_limits`."""
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
            .where(ProviderSpendLimit.kind != LimitKind.MEMBER)
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
    alerts: list[ProviderSpendLimit],
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
            read_at=max((lim.read_at for lim in [*wide, *alerts]), default=None),
        )

    readable = [lim for lim in wide if lim.readable]
    if not readable:
        return result(Drift.NOT_READ, "; ".join(lim.note or "" for lim in wide).strip("; "))
    caps = [lim for lim in readable if lim.amount is not None]
    if not caps:
        note = readable[0].note or "the provider says no cap is set on the whole account"
        warned = [lim for lim in alerts if lim.readable and lim.amount is not None]
        if warned:
            first = min(warned, key=lambda lim: Decimal(lim.amount or 0))
            unit = "$" if first.currency == "USD" else f"{first.currency} "
            note += f"; its spend alert at {unit}{Decimal(first.amount or 0):,.2f} only notifies"
        elif any(lim.readable for lim in alerts):
            note += "; nor is any spend alert set there"
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


def _with_alerts(found: CapComparison, alerts: list[ProviderSpendLimit]) -> CapComparison:
    """The comparison with the provider's lowest spend alert on the whole account and how
    it compares with our budget; as it was where the provider keeps no alerts."""
    if not alerts:
        return found
    readable = [lim for lim in alerts if lim.readable]
    set_ = [lim for lim in readable if lim.amount is not None]
    usable = [lim for lim in set_ if lim.currency == "USD" and lim.period == "month"]
    lowest = min((Decimal(lim.amount or 0) for lim in usable), default=None)
    if not readable:
        status = AlertCheck.NOT_READ
    elif not set_:
        status = AlertCheck.NONE
    elif lowest is None:
        status = AlertCheck.NOT_COMPARABLE
    elif found.budget is None:
        status = AlertCheck.NO_BUDGET
    else:
        status = AlertCheck.ABOVE if lowest > found.budget else AlertCheck.WITHIN
    return replace(found, alert=lowest, alert_status=status)
