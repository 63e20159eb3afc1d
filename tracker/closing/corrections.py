"""Corrections: what changed in a closed month after its close, posted to the next open one.

A closed month's snapshot never changes. When its figures as they stand now (a provider
restated a day on a re-sync, usage arrived late, a re-price, a team mapping or shared-cost
rule changed) differ from what is booked for it (the snapshot's line, plus the corrections
already recorded for that line), `detect_corrections` records the difference once: the month
and line (provider, account, team) affected, the booked and the new amount, and the cause
where the database shows it. The difference is posted to the first open month after it.

It runs after every sync, import and re-price (`tracker.jobs.after_new_usage`) and on the
worker's schedule. A second run with nothing changed records nothing; a further change
records the next difference from the last one, never the same one twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tracker.closing.periods import Cell, current_snapshot, month_figures
from tracker.core.units import month_bounds, next_month, to_dollars
from tracker.models import Account, AuditLog, SyncRun, SyncStatus, utcnow
from tracker.models.closing import (
    BillingPeriod,
    PeriodCorrection,
    PeriodSnapshot,
    PeriodStatus,
    SnapshotLine,
)

MAPPING_CHANGE = "team mapping or shared-cost rule changed"


@dataclass(frozen=True)
class CorrectionView:
    id: int
    month: dt.date  # the closed month affected
    posted_month: dt.date  # where the difference is posted
    provider: str
    account: str
    team: str
    original: Decimal
    new: Decimal
    difference: Decimal
    detected_at: dt.datetime
    cause: str | None
    history: bool  # its close was reopened since


def detect_corrections(*, session: Session, now: dt.datetime | None = None) -> list[CorrectionView]:
    """Record what changed in every closed month since it was booked; return what was new."""
    now = now or utcnow()
    # Locked (PostgreSQL) so that two runs at once, or a run and a sign-off, never interleave:
    # the second sees what the first recorded.
    periods = list(
        session.scalars(select(BillingPeriod).order_by(BillingPeriod.month).with_for_update())
    )
    statuses = {p.month: p.status for p in periods}
    found: list[PeriodCorrection] = []
    for period in periods:
        if period.status != PeriodStatus.CLOSED:
            continue
        snap = current_snapshot(session=session, period=period)
        if snap is None or snap.approved_at is None:
            continue
        found.extend(_detect(session, period.month, snap, _next_open(period.month, statuses), now))
    session.flush()
    return [_view(c, history=False) for c in found]


def list_corrections(*, session: Session, month: dt.date | None = None) -> list[CorrectionView]:
    """Every correction, newest first (of one closed month, or posted to it, with `month`)."""
    stmt = select(PeriodCorrection, PeriodSnapshot.reopened_at).join(
        PeriodSnapshot, PeriodSnapshot.id == PeriodCorrection.snapshot_id
    )
    if month is not None:
        stmt = stmt.where(
            or_(PeriodCorrection.month == month, PeriodCorrection.posted_month == month)
        )
    rows = session.execute(stmt.order_by(PeriodCorrection.id.desc()))
    return [_view(c, history=reopened is not None) for c, reopened in rows]


def _detect(
    session: Session, month: dt.date, snap: PeriodSnapshot, posted: dt.date, now: dt.datetime
) -> list[PeriodCorrection]:
    booked: dict[Cell, int] = {}
    for line in session.scalars(select(SnapshotLine).where(SnapshotLine.snapshot_id == snap.id)):
        booked[(line.provider, line.account, line.team)] = line.amount_micros
    seq: dict[Cell, int] = {}
    since: dict[Cell, dt.datetime] = {}
    for c in session.scalars(
        select(PeriodCorrection)
        .where(PeriodCorrection.snapshot_id == snap.id)
        .order_by(PeriodCorrection.seq)
    ):
        cell = (c.provider, c.account, c.team)
        booked[cell], seq[cell], since[cell] = c.new_micros, c.seq, c.detected_at
    figures = month_figures(session=session, month=month, expense_default=snap.expense_gl_account)
    current = {cell: f.amount_micros for cell, f in figures.items()}
    cells = sorted(set(booked) | set(current))
    changed = [c for c in cells if booked.get(c, 0) != current.get(c, 0)]
    if not changed:
        return []
    # Per provider and account: spend that only moved between teams leaves its total alone.
    moved: dict[tuple[str, str], int] = defaultdict(int)
    before: dict[tuple[str, str], int] = defaultdict(int)
    for cell in cells:
        moved[cell[:2]] += current.get(cell, 0) - booked.get(cell, 0)
        before[cell[:2]] += booked.get(cell, 0)
    approved_at = snap.approved_at or snap.prepared_at
    out = []
    for cell in changed:
        provider, account, team = cell
        original, new = booked.get(cell, 0), current.get(cell, 0)
        cause = (
            MAPPING_CHANGE
            if moved[cell[:2]] == 0
            else _evidence(session, month, account, since.get(cell, approved_at), before[cell[:2]])
        )
        correction = PeriodCorrection(
            snapshot_id=snap.id,
            month=month,
            posted_month=posted,
            provider=provider,
            account=account,
            team=team,
            seq=seq.get(cell, 0) + 1,
            original_micros=original,
            new_micros=new,
            difference_micros=new - original,
            detected_at=now,
            cause=cause,
        )
        session.add(correction)
        out.append(correction)
    return out


@dataclass(frozen=True)
class PeriodBooks:
    """A month's close as the exports report it (the FOCUS 1.4 BillingPeriod dataset): its
    status, when its status last changed, and for a closed month per provider (display name)
    what its snapshot booked and what has been restated since (the corrections recorded
    against that snapshot), in micro-dollars."""

    month: dt.date
    status: str
    changed_at: dt.datetime | None  # None: the month was never prepared
    booked: dict[str, int]
    restated: dict[str, int]


def period_books(*, session: Session, months: Iterable[dt.date]) -> dict[dt.date, PeriodBooks]:
    """The books of the given months (first days); a month never prepared is open."""
    wanted = sorted(set(months))
    found = {
        p.month: p
        for p in session.scalars(select(BillingPeriod).where(BillingPeriod.month.in_(wanted)))
    }
    out = {}
    for month in wanted:
        period = found.get(month)
        booked: dict[str, int] = defaultdict(int)
        restated: dict[str, int] = defaultdict(int)
        snap = current_snapshot(session=session, period=period) if period else None
        if period is not None and period.status == PeriodStatus.CLOSED and snap is not None:
            for provider, micros in session.execute(
                select(SnapshotLine.provider, func.sum(SnapshotLine.amount_micros))
                .where(SnapshotLine.snapshot_id == snap.id)
                .group_by(SnapshotLine.provider)
            ):
                booked[provider] = int(micros or 0)
            for provider, micros in session.execute(
                select(PeriodCorrection.provider, func.sum(PeriodCorrection.difference_micros))
                .where(PeriodCorrection.snapshot_id == snap.id)
                .group_by(PeriodCorrection.provider)
            ):
                restated[provider] = int(micros or 0)
        out[month] = PeriodBooks(
            month=month,
            status=period.status if period is not None else PeriodStatus.OPEN,
            changed_at=period.updated_at if period is not None else None,
            booked=dict(booked),
            restated=dict(restated),
        )
    return out


def _next_open(month: dt.date, statuses: dict[dt.date, str]) -> dt.date:
    """The first month after `month` that is open (a month without a period row is)."""
    candidate = next_month(month)
    while statuses.get(candidate, PeriodStatus.OPEN) != PeriodStatus.OPEN:
        candidate = next_month(candidate)
    return candidate


def _evidence(
    session: Session, month: dt.date, account: str, since: dt.datetime, booked_before: int
) -> str | None:
    """What the database shows changed an account's spend in `month` after `since`: syncs
    of the account over its days, imports into it, re-pricing of its days, its removal."""
    first, last = month_bounds(month)
    causes: list[str] = []
    synced = session.scalar(
        select(func.count())
        .select_from(SyncRun)
        .join(Account, Account.id == SyncRun.account_id)
        .where(
            Account.name == account,
            SyncRun.status == SyncStatus.SUCCESS,
            func.coalesce(SyncRun.finished_at, SyncRun.started_at) >= since,
            SyncRun.range_start <= last,
            SyncRun.range_end >= first,
        )
    )
    if synced:
        causes.append(
            "usage synced after the close (late sync)"
            if booked_before == 0
            else "a re-sync changed days of the month (provider restatement or late usage)"
        )
    for action, target, details in session.execute(
        select(AuditLog.action, AuditLog.target, AuditLog.details).where(
            AuditLog.at >= since,
            AuditLog.action.in_(("usage.import", "pricing.reprice", "account.remove")),
        )
    ):
        details = details or {}
        if action == "usage.import" and target == account:
            if _overlaps(details.get("first_day"), details.get("last_day"), first, last):
                causes.append("CSV import")
        elif action == "pricing.reprice":
            start, _sep, end = (target or "").partition("..")
            if _overlaps(start, end, first, last):
                causes.append("re-price")
        elif action == "account.remove" and target == account:
            causes.append("account removed")
    return "; ".join(dict.fromkeys(causes)) or None


def _overlaps(start: str | None, end: str | None, first: dt.date, last: dt.date) -> bool:
    try:
        begins, ends = dt.date.fromisoformat(start or ""), dt.date.fromisoformat(end or "")
    except ValueError:
        return True  # no readable range: it may have touched the month
    return begins <= last and ends >= first


def _view(c: PeriodCorrection, *, history: bool) -> CorrectionView:
    return CorrectionView(
        id=c.id,
        month=c.month,
        posted_month=c.posted_month,
        provider=c.provider,
        account=c.account,
        team=c.team,
        original=to_dollars(c.original_micros),
        new=to_dollars(c.new_micros),
        difference=to_dollars(c.difference_micros),
        detected_at=c.detected_at,
        cause=c.cause,
        history=history,
    )
