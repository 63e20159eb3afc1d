"""Billing periods: one per calendar month (UTC), closed by two people, figures kept.

A month is `open` until a finance user (or an admin) prepares its close: that takes the
snapshot of the month's figures, per provider, account and team (with the team's cost center
and GL account), each with the part accrued (estimated spend, not yet billed). The figures
are the chargeback's (`tracker.attribution.chargeback`): the spend rule of
`tracker.costs.spend` in whole micro-dollars, so the snapshot adds up to the month's total
exactly, and every total (by provider, account, team, cost center, GL account) is a sum of
its lines. A different finance user or an admin then approves: the month is `closed`, and
its snapshot is what every page that reports a closed month shows. Changes found later are
corrections (`tracker.closing.corrections`), never edits of the snapshot.

Reopening needs an admin and a reason; the month is open again and its snapshot stays as
history. Each step is audited.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracker.attribution.chargeback import chargeback
from tracker.closing.ledger import GlDefaults, gl_defaults
from tracker.core import audit
from tracker.core.errors import InvalidInput, PermissionDenied
from tracker.core.units import (
    dec_str,
    month_bounds,
    month_start,
    next_month,
    to_dollars,
    today_utc,
)
from tracker.identity.users import get_user
from tracker.models import Role, UsageDaily, utcnow
from tracker.models.closing import (
    BillingPeriod,
    PeriodCorrection,
    PeriodSnapshot,
    PeriodStatus,
    SnapshotLine,
)

# What a snapshot line is of: (provider, account, team).
Cell = tuple[str, str, str]
# The totals a snapshot shows, each a sum of its lines.
SCOPES = ("provider", "account", "team", "cost_center", "gl_account")
SCOPE_LABELS = {
    "provider": "Provider",
    "account": "Account",
    "team": "Team",
    "cost_center": "Cost center",
    "gl_account": "GL account",
}
SIGNERS = (Role.FINANCE, Role.ADMIN)
MAX_REASON = 500


@dataclass(frozen=True)
class Figure:
    """A month's spend of one provider, account and team, in micro-dollars."""

    cost_center: str | None
    gl_account: str | None
    amount_micros: int
    accrued_micros: int


@dataclass(frozen=True)
class LineView:
    provider: str
    account: str
    team: str
    cost_center: str | None
    gl_account: str | None
    amount: Decimal
    accrued: Decimal


@dataclass(frozen=True)
class SnapshotView:
    """One close of a month: its figures and who signed it."""

    id: int
    month: dt.date
    state: str  # prepared, closed, or reopened (history)
    prepared_by: str
    prepared_at: dt.datetime
    approved_by: str | None
    approved_at: dt.datetime | None
    reopened_by: str | None
    reopened_at: dt.datetime | None
    reopen_reason: str | None
    expense_gl_account: str | None
    liability_gl_account: str | None
    total: Decimal
    accrued: Decimal
    lines: tuple[LineView, ...]

    def totals(self, by: str) -> dict[str, Decimal]:
        """The snapshot's total per provider, account, team, cost center or GL account ('' for
        spend without a cost center or GL account), exact: sums of its lines."""
        if by not in SCOPES:
            raise InvalidInput(f"a snapshot has totals by {', '.join(SCOPES)}; not by {by!r}")
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            sums[getattr(line, by) or ""] += line.amount
        return dict(sorted(sums.items()))


@dataclass(frozen=True)
class PeriodView:
    """A month as the Close page and `periods list` show it."""

    month: dt.date
    status: str
    prepared_by: str | None
    prepared_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    closed_total: Decimal | None  # the snapshot's, once prepared
    current_total: Decimal  # what the month's usage adds up to now
    corrections: int  # found since its close
    reopened: int  # earlier closes, reopened


def month_figures(
    *, session: Session, month: dt.date, expense_default: str | None
) -> dict[Cell, Figure]:
    """The month's spend and accrual per provider, account and team, as the chargeback
    resolves them now; a team without a GL account (and unassigned spend) books to
    `expense_default`."""
    whole = chargeback(session=session, month=month)
    estimated = chargeback(session=session, month=month, estimated_only=True)
    books: dict[Cell, tuple[str | None, str | None]] = {}
    amounts: dict[Cell, int] = defaultdict(int)
    accrued: dict[Cell, int] = defaultdict(int)
    for sums, pieces in ((amounts, whole.pieces), (accrued, estimated.pieces)):
        for p in pieces:
            cell = (p.provider, p.account, p.team)
            sums[cell] += p.micros
            books.setdefault(cell, (p.cost_center, p.gl_account or expense_default))
    return {
        cell: Figure(*books[cell], amounts.get(cell, 0), accrued.get(cell, 0))
        for cell in sorted(books)
        if amounts.get(cell, 0) or accrued.get(cell, 0)
    }


def prepare(
    *, session: Session, month: dt.date, actor: str, today: dt.date | None = None
) -> SnapshotView:
    """Take the snapshot of an ended month for approval (again, if it was prepared already:
    the unapproved snapshot is replaced). Refused for a month not yet over, a closed month,
    or an actor who is not an active finance user or admin."""
    first, last = month_bounds(month)
    if last >= (today or today_utc()):
        raise InvalidInput(
            f"{first:%Y-%m} has not ended yet; it can be closed from "
            f"{last + dt.timedelta(days=1)} (UTC)"
        )
    who = _signer(session, actor, SIGNERS, "preparing a close")
    period = _locked_period(session, first)
    again = False
    if period is None:
        period = BillingPeriod(month=first, status=PeriodStatus.OPEN)
        session.add(period)
        session.flush()
    elif period.status == PeriodStatus.CLOSED:
        snap = current_snapshot(session=session, period=period)
        raise InvalidInput(
            f"{first:%Y-%m} is closed already"
            + (f" (approved by {snap.approved_by})" if snap is not None else "")
            + "; an admin reopens it, with a reason, before it is closed again"
        )
    elif period.status == PeriodStatus.PREPARED:
        stale = current_snapshot(session=session, period=period)
        if stale is not None:  # never approved: the audit log keeps its preparation
            session.execute(delete(SnapshotLine).where(SnapshotLine.snapshot_id == stale.id))
            session.delete(stale)
            session.flush()
        again = True
    defaults = gl_defaults(session=session)
    figures = month_figures(session=session, month=first, expense_default=defaults.expense)
    _check_books(first, figures, defaults)
    snap = PeriodSnapshot(
        period_id=period.id,
        prepared_by=who,
        prepared_at=utcnow(),
        expense_gl_account=defaults.expense,
        liability_gl_account=defaults.accrued_liabilities,
        total_micros=sum(f.amount_micros for f in figures.values()),
        accrued_micros=sum(f.accrued_micros for f in figures.values()),
    )
    session.add(snap)
    session.flush()
    session.add_all(
        SnapshotLine(
            snapshot_id=snap.id,
            provider=provider,
            account=account,
            team=team,
            cost_center=f.cost_center,
            gl_account=f.gl_account,
            amount_micros=f.amount_micros,
            accrued_micros=f.accrued_micros,
        )
        for (provider, account, team), f in figures.items()
    )
    period.status = PeriodStatus.PREPARED
    audit.record(
        session=session,
        actor=who,
        action="period.prepare",
        target=f"{first:%Y-%m}",
        total=dec_str(to_dollars(snap.total_micros)),
        accrued=dec_str(to_dollars(snap.accrued_micros)),
        again=again,
    )
    session.flush()
    return _view(session, snap, first)


def approve(*, session: Session, month: dt.date, actor: str) -> SnapshotView:
    """Approve a prepared month: it is closed. Refused for the person who prepared it (two
    people close a month), for a month whose figures changed since it was prepared (it is
    prepared again, so what is approved is what was reviewed), and for an actor who is not an
    active finance user or admin."""
    first = month_start(month)
    period = _locked_period(session, first)
    if period is None or period.status == PeriodStatus.OPEN:
        raise InvalidInput(
            f"{first:%Y-%m} is not prepared yet: a finance user prepares its close first"
        )
    if period.status == PeriodStatus.CLOSED:
        raise InvalidInput(f"{first:%Y-%m} is closed already")
    snap = current_snapshot(session=session, period=period)
    assert snap is not None, "a prepared period has its snapshot"
    who = _signer(session, actor, SIGNERS, "approving a close")
    if who.lower() == snap.prepared_by.lower():
        raise PermissionDenied(
            f"{who} prepared {first:%Y-%m}; two people close a month, so another finance user "
            "or an admin approves it"
        )
    now = month_figures(session=session, month=first, expense_default=snap.expense_gl_account)
    if now != _stored_figures(session, snap):
        current = to_dollars(sum(f.amount_micros for f in now.values()))
        raise InvalidInput(
            f"the figures of {first:%Y-%m} changed since {snap.prepared_by} prepared them "
            f"(${to_dollars(snap.total_micros):,.2f} then, ${current:,.2f} now; or their "
            "teams, cost centers or GL accounts): prepare it again, so that what is approved "
            "is what was reviewed"
        )
    snap.approved_by, snap.approved_at = who, utcnow()
    period.status = PeriodStatus.CLOSED
    audit.record(
        session=session,
        actor=who,
        action="period.approve",
        target=f"{first:%Y-%m}",
        prepared_by=snap.prepared_by,
        total=dec_str(to_dollars(snap.total_micros)),
    )
    session.flush()
    return _view(session, snap, first)


def reopen(*, session: Session, month: dt.date, actor: str, reason: str) -> None:
    """Open a prepared or closed month again (an admin, with a reason); its snapshot stays
    as history, and a later close takes a new one."""
    first = month_start(month)
    who = _signer(session, actor, (Role.ADMIN,), "reopening a month")
    text = (reason or "").strip()
    if not text:
        raise InvalidInput(
            "give the reason for reopening the month; it is kept with the month's history"
        )
    if len(text) > MAX_REASON:
        raise InvalidInput(f"the reason is longer than {MAX_REASON} characters; shorten it")
    period = _locked_period(session, first)
    if period is None or period.status == PeriodStatus.OPEN:
        raise InvalidInput(f"{first:%Y-%m} is open already")
    snap = current_snapshot(session=session, period=period)
    if snap is not None:
        snap.reopened_by, snap.reopened_at, snap.reopen_reason = who, utcnow(), text
    was = period.status
    period.status = PeriodStatus.OPEN
    audit.record(
        session=session,
        actor=who,
        action="period.reopen",
        target=f"{first:%Y-%m}",
        was=was,
        reason=text,
    )
    session.flush()


def current_snapshot(*, session: Session, period: BillingPeriod) -> PeriodSnapshot | None:
    """The snapshot a prepared or closed period stands on (None for an open one)."""
    if period.status == PeriodStatus.OPEN:
        return None
    return session.scalar(
        select(PeriodSnapshot)
        .where(PeriodSnapshot.period_id == period.id, PeriodSnapshot.reopened_at.is_(None))
        .order_by(PeriodSnapshot.id.desc())
        .limit(1)
    )


def status_of(*, session: Session, month: dt.date) -> str:
    """A month's status; a month never touched is open."""
    found = session.scalar(
        select(BillingPeriod.status).where(BillingPeriod.month == month_start(month))
    )
    return found or PeriodStatus.OPEN


def snapshot(*, session: Session, month: dt.date) -> SnapshotView | None:
    """The snapshot of a prepared or closed month (None while it is open)."""
    first = month_start(month)
    period = session.scalar(select(BillingPeriod).where(BillingPeriod.month == first))
    snap = None if period is None else current_snapshot(session=session, period=period)
    return None if snap is None else _view(session, snap, first)


def history(*, session: Session, month: dt.date) -> list[SnapshotView]:
    """Every close of a month, newest first: the current one and those reopened."""
    first = month_start(month)
    snaps = session.scalars(
        select(PeriodSnapshot)
        .join(BillingPeriod, BillingPeriod.id == PeriodSnapshot.period_id)
        .where(BillingPeriod.month == first)
        .order_by(PeriodSnapshot.id.desc())
    )
    return [_view(session, s, first) for s in snaps]


def list_periods(*, session: Session, today: dt.date | None = None) -> list[PeriodView]:
    """Every month from the first with usage (or a close) to this one, newest first."""
    this_month = month_start(today or today_utc())
    periods = {p.month: p for p in session.scalars(select(BillingPeriod))}
    first_usage = session.scalar(select(func.min(UsageDaily.day)))
    starts = [this_month, *periods]
    if first_usage is not None:
        starts.append(month_start(first_usage))
    month, months = min(starts), []
    while month <= this_month:
        months.append(month)
        month = next_month(month)
    current: dict[dt.date, int] = defaultdict(int)
    for day, micros in session.execute(
        select(UsageDaily.day, func.sum(UsageDaily.cost_micros))
        .where(UsageDaily.day >= months[0], UsageDaily.day <= month_bounds(this_month)[1])
        .group_by(UsageDaily.day)
    ):
        current[month_start(day)] += int(micros or 0)
    snaps = {p.month: current_snapshot(session=session, period=p) for p in periods.values()}
    counts = dict(
        session.execute(
            select(PeriodCorrection.snapshot_id, func.count()).group_by(
                PeriodCorrection.snapshot_id
            )
        ).all()
    )
    reopened = dict(
        session.execute(
            select(BillingPeriod.month, func.count())
            .join(PeriodSnapshot, PeriodSnapshot.period_id == BillingPeriod.id)
            .where(PeriodSnapshot.reopened_at.is_not(None))
            .group_by(BillingPeriod.month)
        ).all()
    )
    out = []
    for month in reversed(months):
        snap = snaps.get(month)
        period = periods.get(month)
        out.append(
            PeriodView(
                month=month,
                status=period.status if period is not None else PeriodStatus.OPEN,
                prepared_by=snap.prepared_by if snap else None,
                prepared_at=snap.prepared_at if snap else None,
                approved_by=snap.approved_by if snap else None,
                approved_at=snap.approved_at if snap else None,
                closed_total=to_dollars(snap.total_micros) if snap else None,
                current_total=to_dollars(current.get(month, 0)),
                corrections=counts.get(snap.id, 0) if snap else 0,
                reopened=reopened.get(month, 0),
            )
        )
    return out


def parse_month(raw: str) -> dt.date:
    """A month a person typed as YYYY-MM (its first day)."""
    try:
        return dt.date.fromisoformat(f"{raw.strip()}-01")
    except ValueError:
        raise InvalidInput(f"{raw!r} is not a month; write it as YYYY-MM, e.g. 2026-08") from None


def _signer(session: Session, username: str, roles: tuple[Role, ...], what: str) -> str:
    """The username of an active user whose role may sign this step."""
    needs = " or ".join("an admin" if r == Role.ADMIN else "a finance user" for r in roles)
    user = get_user(session=session, username=username or "")
    if user is None or not user.is_active:
        raise PermissionDenied(f"no active user named {username!r}; {what} needs {needs}")
    if user.role not in roles:
        raise PermissionDenied(f"{user.username} is {user.role}; {what} needs {needs}")
    return user.username


def _locked_period(session: Session, first: dt.date) -> BillingPeriod | None:
    """The month's period row, locked until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway): two sign-offs, or a sign-off and a correction, never interleave."""
    return session.scalar(
        select(BillingPeriod).where(BillingPeriod.month == first).with_for_update()
    )


def _check_books(first: dt.date, figures: dict[Cell, Figure], defaults: GlDefaults) -> None:
    """Refuse a close whose accruals could not be journaled."""
    if not any(f.accrued_micros for f in figures.values()):
        return
    if defaults.accrued_liabilities is None:
        raise InvalidInput(
            f"{first:%Y-%m} has spend not billed yet to accrue, and no accrued-liabilities GL "
            "account is set: set it first (GL accounts on the Close page, or "
            "`python -m tracker gl defaults --accrued-liabilities CODE`)"
        )
    teams = sorted(
        {cell[2] for cell, f in figures.items() if f.accrued_micros and not f.gl_account}
    )
    if teams:
        raise InvalidInput(
            f"the accruals of {', '.join(teams)} have no GL account: give the team one on the "
            "Chargeback page, or set the default expense account (GL accounts on the Close "
            "page, or `python -m tracker gl defaults --expense CODE`)"
        )


def _stored_figures(session: Session, snap: PeriodSnapshot) -> dict[Cell, Figure]:
    lines = session.scalars(select(SnapshotLine).where(SnapshotLine.snapshot_id == snap.id))
    return {
        (line.provider, line.account, line.team): Figure(
            line.cost_center, line.gl_account, line.amount_micros, line.accrued_micros
        )
        for line in sorted(lines, key=lambda x: (x.provider, x.account, x.team))
    }


def _view(session: Session, snap: PeriodSnapshot, month: dt.date) -> SnapshotView:
    if snap.reopened_at is not None:
        state = "reopened"
    else:
        state = PeriodStatus.CLOSED if snap.approved_at is not None else PeriodStatus.PREPARED
    lines = tuple(
        LineView(
            provider,
            account,
            team,
            f.cost_center,
            f.gl_account,
            to_dollars(f.amount_micros),
            to_dollars(f.accrued_micros),
        )  # fmt: skip
        for (provider, account, team), f in _stored_figures(session, snap).items()
    )
    return SnapshotView(
        id=snap.id,
        month=month,
        state=str(state),
        prepared_by=snap.prepared_by,
        prepared_at=snap.prepared_at,
        approved_by=snap.approved_by,
        approved_at=snap.approved_at,
        reopened_by=snap.reopened_by,
        reopened_at=snap.reopened_at,
        reopen_reason=snap.reopen_reason,
        expense_gl_account=snap.expense_gl_account,
        liability_gl_account=snap.liability_gl_account,
        total=to_dollars(snap.total_micros),
        accrued=to_dollars(snap.accrued_micros),
        lines=lines,
    )
