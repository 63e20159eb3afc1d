"""The Sync health page's read model: freshness per account, recent runs, days with gaps."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tracker.models import (
    FOCUS_USAGE_TYPE,
    IMPORT_USAGE_TYPE,
    Account,
    AccountStatus,
    Service,
    SyncRun,
    SyncStatus,
    UsageRecord,
)


def sync_freshness(*, session: Session, now: dt.datetime) -> pd.DataFrame:
    """Per account: last sync, hours since, last complete day, last run and last error."""
    latest = (
        select(SyncRun.account_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.account_id)
        .subquery()
    )
    imported = (
        select(UsageRecord.account_id, func.max(UsageRecord.synced_at).label("at"))
        .where(
            or_(
                UsageRecord.usage_type.in_((IMPORT_USAGE_TYPE, FOCUS_USAGE_TYPE)),
                UsageRecord.usage_type.like(f"{FOCUS_USAGE_TYPE}:%"),
            )
        )
        .group_by(UsageRecord.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.name,
            Service.display_name.label("provider"),
            Account.status,
            Account.last_sync_at,
            Account.last_complete_day,
            Account.last_error,
            Account.last_error_at,
            SyncRun.status.label("last_run_status"),
            SyncRun.started_at.label("last_run_at"),
            (Account.credential_encrypted == "").label("csv_only"),
            imported.c.at.label("last_import_at"),
        )
        .join(Service, Service.id == Account.service_id)
        .outerjoin(latest, latest.c.account_id == Account.id)
        .outerjoin(SyncRun, SyncRun.id == latest.c.run_id)
        .outerjoin(imported, imported.c.account_id == Account.id)
        .order_by(Account.name)
    ).all()
    records = []
    for r in rows:
        hours = (
            Decimal(str(round((now - r.last_sync_at).total_seconds() / 3600, 1)))
            if r.last_sync_at
            else None
        )
        records.append(
            {
                "account": r.name,
                "provider": r.provider,
                "source": "CSV import" if r.csv_only else "API",
                "status": r.status,
                "last_sync_at": r.last_sync_at,
                "hours_since_sync": hours,
                "last_complete_day": r.last_complete_day,
                "last_run_status": r.last_run_status,
                "last_run_at": r.last_run_at,
                "last_error": r.last_error,
                "last_error_at": r.last_error_at,
                "last_import_at": r.last_import_at,
                # A refused key and a provider that kept answering 429/5xx or never answered
                # are both failures: the data is not fresh either way.
                "failing": r.status == AccountStatus.ERROR
                or r.last_run_status in (SyncStatus.FAILED, SyncStatus.INTERRUPTED),
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "account",
            "provider",
            "source",
            "status",
            "last_sync_at",
            "hours_since_sync",
            "last_complete_day",
            "last_run_status",
            "last_run_at",
            "last_error",
            "last_error_at",
            "last_import_at",
            "failing",
        ],
    )


def recent_sync_runs(*, session: Session, limit: int = 50) -> pd.DataFrame:
    """The latest sync runs of every account, newest first."""
    rows = session.execute(
        select(
            SyncRun.started_at,
            Account.name.label("account"),
            SyncRun.trigger,
            SyncRun.range_start,
            SyncRun.range_end,
            SyncRun.status,
            SyncRun.rows_written,
            SyncRun.duration_ms,
            SyncRun.error,
        )
        .join(Account, Account.id == SyncRun.account_id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [dict(r._mapping) for r in rows],
        columns=[
            "started_at",
            "account",
            "trigger",
            "range_start",
            "range_end",
            "status",
            "rows_written",
            "duration_ms",
            "error",
        ],
    )


def daily_gaps(*, session: Session, end: dt.date, days: int = 30) -> pd.DataFrame:
    """Per account, the UTC days in the window with no usage row at all.

    The window is the `days` days ending on `end`, cut to start at the account's first row
    and to stop at its last complete day when known. A gap can also be a day without any
    usage; the page says so.
    """
    start = end - dt.timedelta(days=days - 1)
    seen = session.execute(
        select(Account.name, UsageRecord.day)
        .select_from(UsageRecord)
        .join(Account, Account.id == UsageRecord.account_id)
        .where(UsageRecord.day >= start, UsageRecord.day <= end)
        .group_by(Account.name, UsageRecord.day)
        .order_by(Account.name, UsageRecord.day)
    ).all()
    complete = {
        name: day for name, day in session.execute(select(Account.name, Account.last_complete_day))
    }
    by_account: dict[str, set[dt.date]] = {}
    for name, day in seen:
        by_account.setdefault(name, set()).add(day)
    records = []
    for name, present in sorted(by_account.items()):
        last = min(end, complete.get(name) or end)
        day = min(present)
        missing = []
        while day <= last:
            if day not in present:
                missing.append(day)
            day += dt.timedelta(days=1)
        records.append(
            {
                "account": name,
                "first_day": min(present),
                "last_day": max(present),
                "days_with_usage": len(present),
                "missing_days": len(missing),
                "missing": ", ".join(d.isoformat() for d in missing),
            }
        )
    return pd.DataFrame(
        records,
        columns=["account", "first_day", "last_day", "days_with_usage", "missing_days", "missing"],
    )
