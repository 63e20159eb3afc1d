"""Credit grants and prepaid balances: a ledger per account, burned down by its usage.

A grant is an amount an account may spend from its start day (inclusive) until its expiry
day (exclusive: the first day it can no longer be used; none: it never expires). The
account's spend of each UTC day (the one rule of `tracker.costs.spend`, whole micro-dollars
from the daily rollup, up to and including today) is taken from the grants usable that day:
the lowest priority number first, then the earliest expiry (no expiry last), then the
earliest start, then the grant recorded first. A grant is never used before its start or
from its expiry on; what it has left on its expiry day is lost, and shown as expired. Spend
no grant covers is "uncovered": paid some other way.

Usage is counted in USD, so only USD grants burn; a grant in another currency is kept as
recorded and marked as not burned (nothing is converted).

The projected exhaustion date continues the burn-down past today with the forecast's daily
spend (`tracker.planning.projections.forecast_daily`, the daily projection of
`project_scope` for `account:NAME`, continued past the month's end): the first day the
projected spend is no longer covered, i.e. when the cumulative projected spend exceeds what
the grants have left (sooner, if a grant expires first). Providers that report a prepaid
balance (DeepSeek, OpenRouter: `Account.balance_remaining`, kept by each sync) are compared
with what the ledger says is available now.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound
from tracker.core.units import dec_str, parse_money, to_dollars
from tracker.models import Account, CreditGrant, UsageDaily
from tracker.planning.budgets import Scope
from tracker.planning.projections import forecast_daily
from tracker.providers.accounts import get_account

MICROS = 1_000_000
# How far ahead the exhaustion date is looked for.
HORIZON_DAYS = 366
MAX_PRIORITY = 1000
_ISO_CURRENCY = re.compile(r"^[A-Z]{3}$")


class GrantStatus:
    ACTIVE = "active"
    NOT_STARTED = "not started"
    USED_UP = "used up"
    EXPIRED = "expired"
    NOT_BURNED = "not burned"  # not in USD


# --- the burn-down (pure; whole micro-dollars) ------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What the burn-down needs of a grant."""

    id: int
    amount_micros: int
    starts_on: dt.date
    expires_on: dt.date | None
    priority: int

    def usable(self, day: dt.date) -> bool:
        return self.starts_on <= day and (self.expires_on is None or day < self.expires_on)

    @property
    def order(self) -> tuple[int, dt.date, dt.date, int]:
        return (self.priority, self.expires_on or dt.date.max, self.starts_on, self.id)


@dataclass
class Burn:
    """Where each grant stands after a burn-down, in micro-dollars."""

    left: dict[int, int]
    used: dict[int, int]
    expired: dict[int, int]
    uncovered: dict[dt.date, int] = field(default_factory=dict)  # spend no grant covered
    balance: list[tuple[dt.date, int]] = field(default_factory=list)  # left, at each day's end

    @property
    def exhausted_on(self) -> dt.date | None:
        """The first day whose spend the grants did not cover in full."""
        return min(self.uncovered) if self.uncovered else None


def burn_down(
    grants: Sequence[Grant],
    usage: Mapping[dt.date, int],
    *,
    start: dt.date,
    end: dt.date,
    left: Mapping[int, int] | None = None,
) -> Burn:
    """Take each day's usage from start to end (inclusive) from the grants usable that day,
    in their order; `left`: what each grant had before `start` (default: its amount)."""
    ordered = sorted(grants, key=lambda g: g.order)
    burn = Burn(
        left={g.id: (left or {}).get(g.id, g.amount_micros) for g in ordered},
        used=dict.fromkeys((g.id for g in ordered), 0),
        expired=dict.fromkeys((g.id for g in ordered), 0),
    )
    day = start
    while day <= end:
        for g in ordered:
            if g.expires_on == day and burn.left[g.id]:
                burn.expired[g.id] += burn.left[g.id]
                burn.left[g.id] = 0
        due = usage.get(day, 0)
        for g in ordered:
            if due <= 0:
                break
            if g.usable(day):
                taken = min(due, burn.left[g.id])
                burn.left[g.id] -= taken
                burn.used[g.id] += taken
                due -= taken
        if due > 0:
            burn.uncovered[day] = due
        burn.balance.append((day, sum(burn.left.values())))
        day += dt.timedelta(days=1)
    return burn


def project_burn(
    grants: Sequence[Grant], left: Mapping[int, int], forecast: Sequence[tuple[dt.date, int]]
) -> Burn:
    """The burn-down continued over the forecast days (consecutive, in micro-dollars) from
    what each grant has `left`; its `exhausted_on` is the projected exhaustion date."""
    return burn_down(grants, dict(forecast), start=forecast[0][0], end=forecast[-1][0], left=left)


# --- the ledger -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantView:
    """A grant as the ledger shows it (amounts in the grant's currency)."""

    id: int
    account: str
    amount: Decimal
    currency: str
    starts_on: dt.date
    expires_on: dt.date | None
    priority: int
    note: str | None
    created_by: str
    used: Decimal | None  # None: not burned (not in USD)
    expired: Decimal | None
    remaining: Decimal
    status: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "amount": dec_str(self.amount),
            "currency": self.currency,
            "starts_on": self.starts_on.isoformat(),
            "expires_on": self.expires_on.isoformat() if self.expires_on else None,
            "priority": self.priority,
            "note": self.note,
            "used": dec_str(self.used),
            "expired": dec_str(self.expired),
            "remaining": dec_str(self.remaining),
            "status": self.status,
        }


@dataclass(frozen=True)
class AccountCredits:
    """One account's ledger: its grants, what is left, when it runs out, and the provider's
    own balance beside it."""

    account: str
    provider: str
    grants: list[GrantView]
    available: Decimal  # USD grants usable today: what they have left
    upcoming: Decimal  # USD grants that start after today
    uncovered: Decimal  # spend since the first grant's start that no grant covered (USD)
    exhausted_on: dt.date | None
    exhaustion: str  # what `exhausted_on` means, or why there is none
    provider_balance: Decimal | None
    provider_currency: str | None
    provider_balance_at: dt.datetime | None
    ledger_balance: Decimal | None  # the ledger's figure in the provider's currency
    balance_difference: Decimal | None  # provider minus ledger; None: not comparable
    # What the USD grants have left at the end of each day: (day, left, projected or not).
    burn: list[tuple[dt.date, Decimal, bool]] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        """What the USD grants have left, usable now or later."""
        return self.available + self.upcoming

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "provider": self.provider,
            "available": dec_str(self.available),
            "upcoming": dec_str(self.upcoming),
            "remaining": dec_str(self.remaining),
            "uncovered": dec_str(self.uncovered),
            "exhausted_on": self.exhausted_on.isoformat() if self.exhausted_on else None,
            "exhaustion": self.exhaustion,
            "provider_balance": dec_str(self.provider_balance),
            "provider_currency": self.provider_currency,
            "provider_balance_at": (
                self.provider_balance_at.isoformat() if self.provider_balance_at else None
            ),
            "ledger_balance": dec_str(self.ledger_balance),
            "balance_difference": dec_str(self.balance_difference),
            "grants": [g.as_json() for g in self.grants],
        }


def _micros(amount: Decimal) -> int:
    return int(amount * MICROS)


def daily_spend(
    session: Session, account_id: int, start: dt.date, end: dt.date
) -> dict[dt.date, int]:
    """An account's spend per UTC day (micro-dollars, the spend rule), start..end inclusive."""
    d = UsageDaily
    stmt = (
        select(d.day, func.coalesce(func.sum(d.cost_micros), 0))
        .where(d.account_id == account_id, d.day >= start, d.day <= end)
        .group_by(d.day)
    )
    return {day: int(micros) for day, micros in session.execute(stmt)}


def _status(row: CreditGrant, burn: Burn | None, today: dt.date) -> str:
    if burn is None:
        return GrantStatus.NOT_BURNED
    if row.starts_on > today:
        return GrantStatus.NOT_STARTED
    if row.expires_on is not None and row.expires_on <= today:
        return GrantStatus.EXPIRED if burn.expired[row.id] else GrantStatus.USED_UP
    return GrantStatus.ACTIVE if burn.left[row.id] else GrantStatus.USED_UP


def account_credits(
    *, session: Session, account: Account, today: dt.date, with_forecast: bool = True
) -> AccountCredits:
    """One account's ledger as of the end of `today` (UTC), with its projected exhaustion
    (`with_forecast`) and the provider's balance beside it."""
    rows = list(
        session.scalars(
            select(CreditGrant)
            .where(CreditGrant.account_id == account.id)
            .order_by(CreditGrant.priority, CreditGrant.starts_on, CreditGrant.id)
        )
    )
    usd = [r for r in rows if r.currency == "USD"]
    grants = [Grant(r.id, _micros(r.amount), r.starts_on, r.expires_on, r.priority) for r in usd]
    first = min((g.starts_on for g in grants), default=today)
    usage = daily_spend(session, account.id, first, today) if grants else {}
    burn = burn_down(grants, usage, start=first, end=today) if grants else Burn({}, {}, {})
    views = [
        GrantView(
            id=r.id,
            account=account.name,
            amount=r.amount,
            currency=r.currency,
            starts_on=r.starts_on,
            expires_on=r.expires_on,
            priority=r.priority,
            note=r.note,
            created_by=r.created_by,
            used=to_dollars(burn.used[r.id]) if r.currency == "USD" else None,
            expired=to_dollars(burn.expired[r.id]) if r.currency == "USD" else None,
            remaining=to_dollars(burn.left[r.id]) if r.currency == "USD" else r.amount,
            status=_status(r, burn if r.currency == "USD" else None, today),
        )
        for r in rows
    ]
    available = sum((v.remaining for v in views if v.status == GrantStatus.ACTIVE), Decimal(0))
    upcoming = sum((v.remaining for v in views if v.status == GrantStatus.NOT_STARTED), Decimal(0))
    exhausted_on, exhaustion, projected = _exhaustion(
        session, account, grants, burn, today, with_forecast
    )
    ledger, difference = _compare_balance(account, views, available)
    return AccountCredits(
        account=account.name,
        provider=account.provider,
        grants=views,
        available=available,
        upcoming=upcoming,
        uncovered=to_dollars(sum(burn.uncovered.values())),
        exhausted_on=exhausted_on,
        exhaustion=exhaustion,
        provider_balance=account.balance_remaining,
        provider_currency=account.balance_currency,
        provider_balance_at=account.balance_updated_at,
        ledger_balance=ledger,
        balance_difference=difference,
        burn=[(day, to_dollars(left), False) for day, left in burn.balance]
        + [(day, to_dollars(left), True) for day, left in projected],
    )


def _exhaustion(
    session: Session,
    account: Account,
    grants: list[Grant],
    burn: Burn,
    today: dt.date,
    with_forecast: bool,
) -> tuple[dt.date | None, str, list[tuple[dt.date, int]]]:
    """(the projected exhaustion day, what it means, the projected balance per day)."""
    if not grants:
        return None, "no USD grants", []
    if not any(burn.left.values()):
        return None, "used up", []
    if not with_forecast:
        return None, "not projected", []
    forecast = [
        (day, round(cost * MICROS))
        for day, cost in forecast_daily(
            session=session, scope=Scope("account", account.name), today=today, days=HORIZON_DAYS
        )
    ]
    if not any(cost for _, cost in forecast):
        return None, "no usage to project from", []
    ahead = project_burn(grants, burn.left, forecast)
    day = ahead.exhausted_on
    until = day or forecast[-1][0]
    projected = [(d, left) for d, left in ahead.balance if d <= until]
    if day is None:
        return None, f"covers the forecast to {forecast[-1][0]}", projected
    return day, "from the account's forecast", projected


def _compare_balance(
    account: Account, views: list[GrantView], available: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """(the ledger's balance in the provider's currency, provider minus ledger): compared
    only in USD, where the ledger burns."""
    if account.balance_remaining is None:
        return None, None
    currency = account.balance_currency or "USD"
    if currency == "USD":
        return available, account.balance_remaining - available
    recorded = [v.remaining for v in views if v.currency == currency]
    return (sum(recorded, Decimal(0)) if recorded else None), None


def ledger(
    *, session: Session, today: dt.date, account: str | None = None, with_forecast: bool = True
) -> list[AccountCredits]:
    """Every account with a grant or a provider-reported balance (or the one named), by name."""
    stmt = select(Account).order_by(Account.name)
    if account is not None:
        stmt = stmt.where(Account.id == get_account(session=session, name=account).id)
    with_grants = set(session.scalars(select(CreditGrant.account_id).distinct()))
    return [
        account_credits(session=session, account=a, today=today, with_forecast=with_forecast)
        for a in session.scalars(stmt)
        if a.id in with_grants or a.balance_remaining is not None or account is not None
    ]


# --- recording -------------------------------------------------------------------------------


def _date(raw: str | dt.date | None, what: str) -> dt.date | None:
    if raw is None or isinstance(raw, dt.date):
        return raw
    text = raw.strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def add_grant(
    *,
    session: Session,
    account: str,
    amount: str | Decimal,
    starts_on: str | dt.date | None,
    expires_on: str | dt.date | None = None,
    currency: str | None = "USD",
    priority: int | str | None = 1,
    note: str | None = None,
    actor: str,
) -> str:
    """Record a grant on an account and say what was recorded; refuse bad input, writing
    nothing."""
    found = get_account(session=session, name=(account or "").strip())
    code = (currency or "").strip().upper() or "USD"
    if not _ISO_CURRENCY.match(code):
        raise InvalidInput(f"currency {currency!r} is not a three-letter ISO code such as USD")
    value = parse_money(amount, what="the amount", currency=code)
    if value is None or value <= 0:
        raise InvalidInput(f"the amount must be more than 0 {code}")
    start = _date(starts_on, "the start date")
    if start is None:
        raise InvalidInput("the start date is missing (YYYY-MM-DD)")
    expiry = _date(expires_on, "the expiry date")
    if expiry is not None and expiry <= start:
        raise InvalidInput(
            f"the expiry date {expiry} must be after the start date {start} (it is the first "
            "day the grant can no longer be used)"
        )
    try:
        rank = 1 if priority in (None, "") else int(str(priority).strip())
    except ValueError:
        raise InvalidInput(f"the priority {priority!r} is not a whole number") from None
    if not 0 <= rank <= MAX_PRIORITY:
        raise InvalidInput(f"the priority must be from 0 to {MAX_PRIORITY} (lower is used first)")
    text = (note or "").strip() or None
    if text is not None and len(text) > 500:
        raise InvalidInput("the note is longer than 500 characters")
    grant = CreditGrant(
        account_id=found.id,
        amount=value,
        currency=code,
        starts_on=start,
        expires_on=expiry,
        priority=rank,
        note=text,
        created_by=actor,
    )
    session.add(grant)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="credit.add",
        target=found.name,
        grant=grant.id,
        amount=dec_str(value),
        currency=code,
        starts_on=start.isoformat(),
        expires_on=expiry.isoformat() if expiry else None,
        priority=rank,
    )
    return describe(grant, found.name)


def describe(grant: CreditGrant, account: str) -> str:
    """A grant in a few words: '#3: 500.00 USD on prod from 2026-01-01 until 2027-01-01'."""
    until = f" until {grant.expires_on}" if grant.expires_on else ", no expiry"
    return (
        f"#{grant.id}: {grant.amount:,.2f} {grant.currency} on {account} from "
        f"{grant.starts_on}{until} (priority {grant.priority})"
    )


def remove_grant(*, session: Session, grant_id: int, actor: str) -> str:
    """Delete a grant recorded by mistake; return what it was, for the message."""
    grant = session.get(CreditGrant, grant_id)
    if grant is None:
        raise NotFound(f"no credit grant #{grant_id}; check the list of grants")
    account = session.get(Account, grant.account_id)
    label = describe(grant, account.name if account else "?")
    session.delete(grant)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="credit.remove",
        target=account.name if account else None,
        grant=grant_id,
        amount=dec_str(grant.amount),
        currency=grant.currency,
    )
    return label
