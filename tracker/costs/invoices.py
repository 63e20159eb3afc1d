"""Provider invoices: recorded by finance, matched against the synced billed totals.

An invoice names an account (and so its provider), a calendar month, its amount and
currency. It is matched against what the account's synced data says the provider billed
that month: the billed part of the spend rule (`tracker.costs.spend`, ROW_BILLED_MICROS:
billed rows and covered rows' shares of the billed line items), summed in whole
micro-dollars from the daily rollup, so the comparison is exact on every backend. Estimates
never count as billed.

- `matched`: the billed total, rounded half-up to the cent, equals the invoice.
- `within tolerance`: off by at most `INVOICE_TOLERANCE_PCT` percent of the invoice.
- `unmatched`: further off; the variance (invoice minus billed) comes with the days that
  explain it: days the provider has not billed yet (their usage counts as our estimate),
  largest estimate first, and days whose billed total changed since the invoice was recorded
  (a restatement or a late sync; `Invoice.billed_snapshot`).
- `not comparable`: the invoice is not in USD. It is stored as written, never converted.

Days are UTC; money is `Decimal`. Invoices are unique per account and invoice number (the
account fixes the provider). The CSV import is `tracker.costs.invoice_csv`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound
from tracker.core.units import CENT, dec_str, month_bounds, parse_money, to_dollars
from tracker.models import Account, Invoice, InvoiceSource, Service, UsageDaily
from tracker.providers.registry import PROVIDERS, display_name

PCT_QUANTUM = Decimal("0.01")
# How many explaining days a one-line summary names; the rest are counted.
SHOWN_DAYS = 5
MAX_NUMBER = 128
MAX_PO = 64
_ISO_CURRENCY = re.compile(r"^[A-Z]{3}$")


class MatchStatus(StrEnum):
    MATCHED = "matched"
    WITHIN_TOLERANCE = "within tolerance"
    UNMATCHED = "unmatched"
    NOT_COMPARABLE = "not comparable"


@dataclass(frozen=True)
class DayFigures:
    """One account-day: its billed money and the spend counted as our estimate (the provider
    has not billed it), in micro-dollars."""

    billed_micros: int = 0
    estimated_micros: int = 0


@dataclass(frozen=True)
class ExplainingDay:
    """A day that explains part of a variance: not billed yet, or billed differently now
    than when the invoice was recorded."""

    day: dt.date
    reason: str  # "not billed" or "changed"
    estimated: Decimal | None = None  # not billed: the estimate counted for the day
    billed_then: Decimal | None = None  # changed: billed when the invoice was recorded
    billed_now: Decimal | None = None

    def describe(self) -> str:
        if self.reason == "not billed":
            return f"{self.day}: not billed yet (${self.estimated:,.2f} estimated)"
        return (
            f"{self.day}: billed ${self.billed_then:,.2f} when recorded, "
            f"${self.billed_now:,.2f} now"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "reason": self.reason,
            "estimated": dec_str(self.estimated),
            "billed_then": dec_str(self.billed_then),
            "billed_now": dec_str(self.billed_now),
        }


@dataclass(frozen=True)
class InvoiceMatch:
    """A recorded invoice and how it compares with the synced billed total of its month."""

    id: int
    invoice_number: str
    provider: str
    account: str
    period: dt.date  # the month's first day
    issued_on: dt.date
    due_on: dt.date | None
    amount: Decimal
    currency: str
    po_number: str | None
    created_by: str
    created_at: dt.datetime  # when it was recorded (invoices are never edited)
    billed: Decimal  # the synced billed total of the account and month (USD, exact)
    status: MatchStatus
    variance: Decimal | None  # amount - billed; None when not comparable
    variance_pct: Decimal | None  # of the invoice amount; None when not comparable or $0
    not_billed: list[ExplainingDay] = field(default_factory=list)  # largest estimate first
    changed: list[ExplainingDay] = field(default_factory=list)  # largest change first
    source: str = InvoiceSource.RECORDED  # recorded by finance, or read from the provider

    @property
    def unbilled_estimate(self) -> Decimal:
        """What the days the provider has not billed yet are estimated at."""
        return sum((d.estimated or Decimal(0) for d in self.not_billed), Decimal(0))

    def explanation(self) -> str:
        """The explaining days in one line: the top not-billed days, then the changed ones."""
        if self.status is MatchStatus.NOT_COMPARABLE:
            return f"in {self.currency}: not compared with the USD billed total"
        if self.status is MatchStatus.MATCHED:
            return ""
        parts = []
        for days in (self.not_billed, self.changed):
            parts += [d.describe() for d in days[:SHOWN_DAYS]]
            if len(days) > SHOWN_DAYS:
                parts.append(f"{len(days) - SHOWN_DAYS} more {days[0].reason} day(s)")
        return "; ".join(parts) or "no day explains it: every day is billed and unchanged"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "invoice_id": self.invoice_number,
            "provider": self.provider,
            "account": self.account,
            "period": f"{self.period:%Y-%m}",
            "issue_date": self.issued_on.isoformat(),
            "due_date": self.due_on.isoformat() if self.due_on else None,
            "amount": dec_str(self.amount),
            "currency": self.currency,
            "po_number": self.po_number,
            "billed": dec_str(self.billed),
            "status": str(self.status),
            "variance": dec_str(self.variance),
            "variance_pct": dec_str(self.variance_pct),
            "unbilled_estimate": dec_str(self.unbilled_estimate),
            "not_billed_days": [d.as_json() for d in self.not_billed],
            "changed_days": [d.as_json() for d in self.changed],
            "source": str(self.source),
        }


@dataclass(frozen=True)
class Comparison:
    """An invoice amount against its month's synced days."""

    billed: Decimal
    status: MatchStatus
    variance: Decimal | None
    variance_pct: Decimal | None
    not_billed: list[ExplainingDay]
    changed: list[ExplainingDay]


def compare(
    *,
    amount: Decimal,
    currency: str,
    days: dict[dt.date, DayFigures],
    snapshot: dict[str, Any],
    tolerance_pct: Decimal,
) -> Comparison:
    """Compare an invoice amount with its month's days. `snapshot`: the billed micro-dollars
    per ISO day when the invoice was recorded."""
    billed = to_dollars(sum(f.billed_micros for f in days.values()))
    not_billed = sorted(
        (
            ExplainingDay(day, "not billed", estimated=to_dollars(f.estimated_micros))
            for day, f in days.items()
            if f.estimated_micros
        ),
        key=lambda d: (-(d.estimated or 0), d.day),
    )
    then = {dt.date.fromisoformat(day): int(micros) for day, micros in snapshot.items()}
    now = {day: f.billed_micros for day, f in days.items() if f.billed_micros}
    moved = sorted(
        (day for day in then.keys() | now.keys() if then.get(day, 0) != now.get(day, 0)),
        key=lambda day: (-abs(now.get(day, 0) - then.get(day, 0)), day),
    )
    changed = [
        ExplainingDay(
            day,
            "changed",
            billed_then=to_dollars(then.get(day, 0)),
            billed_now=to_dollars(now.get(day, 0)),
        )
        for day in moved
    ]
    if currency != "USD":
        return Comparison(billed, MatchStatus.NOT_COMPARABLE, None, None, not_billed, changed)
    variance = amount - billed
    pct = (variance * 100 / amount).quantize(PCT_QUANTUM, ROUND_HALF_UP) if amount else None
    if billed.quantize(CENT, ROUND_HALF_UP) == amount:
        status = MatchStatus.MATCHED
    elif abs(variance) * 100 <= amount * tolerance_pct:
        status = MatchStatus.WITHIN_TOLERANCE
    else:
        status = MatchStatus.UNMATCHED
    return Comparison(billed, status, variance, pct, not_billed, changed)


def month_days(
    session: Session, account_ids: Iterable[int], start: dt.date, end: dt.date
) -> dict[tuple[int, dt.date], DayFigures]:
    """Billed and estimated micro-dollars per account and UTC day, start..end inclusive, from
    the daily rollup (the same sums as the detail, exact)."""
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    d = UsageDaily
    stmt = (
        select(
            d.account_id,
            d.day,
            func.coalesce(func.sum(d.billed_micros), 0),
            func.coalesce(func.sum(d.estimated_micros), 0),
        )
        .where(d.account_id.in_(ids), d.day >= start, d.day <= end)
        .group_by(d.account_id, d.day)
    )
    return {
        (account_id, day): DayFigures(int(billed), int(estimated))
        for account_id, day, billed, estimated in session.execute(stmt)
    }


def billed_snapshot(session: Session, account_id: int, period: dt.date) -> dict[str, int]:
    """The billed micro-dollars of each day of the month (days with any), keyed by ISO day."""
    first, last = month_bounds(period)
    return {
        day.isoformat(): f.billed_micros
        for (_, day), f in sorted(month_days(session, [account_id], first, last).items())
        if f.billed_micros
    }


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceFields:
    """An invoice's fields, checked."""

    account: Account
    invoice_number: str
    period: dt.date
    issued_on: dt.date
    due_on: dt.date | None
    amount: Decimal
    currency: str
    po_number: str | None


def provider_id(raw: str) -> str | None:
    """The registry id for a provider written as its id or its display name (any case)."""
    wanted = raw.strip().lower()
    return next(
        (p.id for p in PROVIDERS.values() if wanted in (p.id, p.display_name.lower())), None
    )


def _day(raw: str | dt.date | None, what: str, problems: list[str]) -> dt.date | None:
    if isinstance(raw, dt.date):
        return raw
    text = (raw or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        problems.append(f"{what} {text!r} is not a date (YYYY-MM-DD)")
        return None


def _month(raw: str | dt.date | None, problems: list[str]) -> dt.date | None:
    if isinstance(raw, dt.date):
        return raw.replace(day=1)
    text = (raw or "").strip()
    try:
        if len(text) != 7:
            raise ValueError
        return dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        problems.append(f"period {text!r} is not a month (YYYY-MM)" if text else "period is empty")
        return None


def check_fields(
    accounts: dict[str, Account],
    *,
    provider: str,
    account: str,
    invoice_number: str,
    period: str | dt.date | None,
    issued_on: str | dt.date | None,
    due_on: str | dt.date | None = None,
    amount: str | Decimal | None,
    currency: str | None = "USD",
    po_number: str | None = None,
) -> tuple[InvoiceFields | None, list[str]]:
    """Check one invoice's fields; each problem names its field. `accounts`: by name."""
    problems: list[str] = []
    number = (invoice_number or "").strip()
    if not number:
        problems.append("invoice_id is empty")
    elif len(number) > MAX_NUMBER:
        problems.append(f"invoice_id is longer than {MAX_NUMBER} characters")
    found = accounts.get((account or "").strip())
    wanted = provider_id(provider or "")
    if not (provider or "").strip():
        problems.append("provider is empty")
    elif wanted is None:
        problems.append(f"provider {provider.strip()!r} is not one of {', '.join(PROVIDERS)}")
    if not (account or "").strip():
        problems.append("account is empty")
    elif found is None:
        problems.append(f"account {account.strip()!r} does not exist; check the list of accounts")
    elif wanted is not None and found.provider != wanted:
        problems.append(
            f"account {found.name!r} belongs to {display_name(found.provider)}, "
            f"not {display_name(wanted)}"
        )
    month = _month(period, problems)
    issued = _day(issued_on, "issue_date", problems)
    if issued is None and not any(p.startswith("issue_date") for p in problems):
        problems.append("issue_date is empty")
    due = _day(due_on, "due_date", problems)
    if issued is not None and due is not None and due < issued:
        problems.append(f"due_date {due} is before issue_date {issued}")
    code = (currency or "").strip().upper() or "USD"
    if not _ISO_CURRENCY.match(code):
        problems.append(f"currency {currency!r} is not a three-letter ISO code such as USD")
    value: Decimal | None = None
    try:
        value = parse_money(amount, what="amount", currency=code)
        if value is None:
            problems.append("amount is empty")
    except InvalidInput as exc:
        problems.append(str(exc))
    po = (po_number or "").strip() or None
    if po is not None and len(po) > MAX_PO:
        problems.append(f"po_number is longer than {MAX_PO} characters")
    if problems or found is None or month is None or issued is None or value is None:
        return None, problems
    return InvoiceFields(found, number, month, issued, due, value, code, po), []


def accounts_by_name(session: Session) -> dict[str, Account]:
    return {a.name: a for a in session.scalars(select(Account))}


def recorded_numbers(session: Session) -> set[tuple[int, str]]:
    """(account id, invoice number) of every recorded invoice: what a new one may not repeat."""
    return {(a, n) for a, n in session.execute(select(Invoice.account_id, Invoice.invoice_number))}


def store(session: Session, fields: InvoiceFields, actor: str) -> Invoice:
    """Write checked fields (the caller has refused duplicates), with the billed snapshot."""
    invoice = Invoice(
        account_id=fields.account.id,
        invoice_number=fields.invoice_number,
        period=fields.period,
        issued_on=fields.issued_on,
        due_on=fields.due_on,
        amount=fields.amount,
        currency=fields.currency,
        po_number=fields.po_number,
        billed_snapshot=billed_snapshot(session, fields.account.id, fields.period),
        created_by=actor,
    )
    session.add(invoice)
    return invoice


def duplicate_message(fields: InvoiceFields) -> str:
    return (
        f"invoice_id {fields.invoice_number!r} of {display_name(fields.account.provider)} "
        f"account {fields.account.name!r} is already recorded"
    )


def add_invoice(*, session: Session, actor: str, **raw: Any) -> int:
    """Record one invoice (the fields of `check_fields`) and return its id; refuse bad input
    and duplicates, writing nothing. Its match: `list_invoices(ids=[id])`."""
    fields, problems = check_fields(accounts_by_name(session), **raw)
    if fields is None:
        raise InvalidInput("; ".join(problems))
    if (fields.account.id, fields.invoice_number) in recorded_numbers(session):
        raise InvalidInput(duplicate_message(fields) + "; nothing was recorded")
    invoice = store(session, fields, actor)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="invoice.add",
        target=f"{fields.account.name}/{fields.invoice_number}",
        period=f"{fields.period:%Y-%m}",
        amount=dec_str(fields.amount),
        currency=fields.currency,
    )
    return invoice.id


def remove_invoice(*, session: Session, invoice_id: int, actor: str) -> str:
    """Delete a recorded invoice (a mistake); return what it was, for the message."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound(f"no invoice #{invoice_id}; check the list of invoices")
    account = session.get(Account, invoice.account_id)
    label = f"{account.name if account else '?'}/{invoice.invoice_number}"
    session.delete(invoice)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="invoice.remove",
        target=label,
        period=f"{invoice.period:%Y-%m}",
        amount=dec_str(invoice.amount),
    )
    return label


def list_invoices(
    *,
    session: Session,
    tolerance_pct: Decimal,
    period: dt.date | None = None,
    account: str | None = None,
    ids: list[int] | None = None,
) -> list[InvoiceMatch]:
    """Recorded invoices, each matched against its month's synced billed total; newest
    month first, then provider, account and invoice number."""
    stmt = (
        select(Invoice, Account.name, Service.name)
        .join(Account, Account.id == Invoice.account_id)
        .join(Service, Service.id == Account.service_id)
        .order_by(Invoice.period.desc(), Service.name, Account.name, Invoice.invoice_number)
    )
    if period is not None:
        stmt = stmt.where(Invoice.period == period.replace(day=1))
    if account is not None:
        stmt = stmt.where(Account.name == account)
    if ids is not None:
        stmt = stmt.where(Invoice.id.in_(ids))
    found = session.execute(stmt).all()
    if not found:
        return []
    first = min(inv.period for inv, _, _ in found)
    last = month_bounds(max(inv.period for inv, _, _ in found))[1]
    figures = month_days(session, {inv.account_id for inv, _, _ in found}, first, last)
    matches = []
    for inv, account_name, provider in found:
        start, end = month_bounds(inv.period)
        days = {
            day: f
            for (account_id, day), f in figures.items()
            if account_id == inv.account_id and start <= day <= end
        }
        c = compare(
            amount=inv.amount,
            currency=inv.currency,
            days=days,
            snapshot=inv.billed_snapshot or {},
            tolerance_pct=tolerance_pct,
        )
        matches.append(
            InvoiceMatch(
                id=inv.id,
                invoice_number=inv.invoice_number,
                provider=provider,
                account=account_name,
                period=inv.period,
                issued_on=inv.issued_on,
                due_on=inv.due_on,
                amount=inv.amount,
                currency=inv.currency,
                po_number=inv.po_number,
                created_by=inv.created_by,
                created_at=inv.created_at,
                billed=c.billed,
                status=c.status,
                variance=c.variance,
                variance_pct=c.variance_pct,
                not_billed=c.not_billed,
                changed=c.changed,
                source=inv.source,
            )
        )
    return matches
