"""The Month-end close page's frames: the periods, a month's snapshot (totals by scope,
accruals, journal entry, earlier closes), the restatements and the chart of accounts.

A prepared or closed month is shown from its snapshot only, never from the usage as it is
now: what changed since is listed as corrections. Money stays exact `Decimal`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pandas as pd
from sqlalchemy.orm import Session

from tracker.closing import corrections, journal, ledger, periods


@dataclass(frozen=True)
class MonthClose:
    """What the page shows of one month."""

    snapshot: periods.SnapshotView | None  # None while the month is open
    history: tuple[periods.SnapshotView, ...]  # earlier closes, reopened
    corrections: pd.DataFrame  # of this month, or posted to it
    accruals: pd.DataFrame
    journal: pd.DataFrame  # the entry and its reversal (a preview while only prepared)


def periods_frame(found: list[periods.PeriodView]) -> pd.DataFrame:
    """One row per month, newest first."""
    return pd.DataFrame(
        [
            {
                "month": f"{p.month:%Y-%m}",
                "status": p.status,
                "prepared_by": p.prepared_by,
                "prepared_at": p.prepared_at,
                "approved_by": p.approved_by,
                "approved_at": p.approved_at,
                "closed_total": p.closed_total,
                "current_total": p.current_total,
                "corrections": p.corrections,
            }
            for p in found
        ],
        columns=[
            "month", "status", "prepared_by", "prepared_at", "approved_by", "approved_at",
            "closed_total", "current_total", "corrections",
        ],
    )  # fmt: skip


def month_close(*, session: Session, month: dt.date) -> MonthClose:
    """A month's snapshot with its accruals, journal entry, history and corrections."""
    snap = periods.snapshot(session=session, month=month)
    closes = periods.history(session=session, month=month)
    earlier = tuple(s for s in closes if s.state == "reopened")
    found = corrections_frame(corrections.list_corrections(session=session, month=month))
    if snap is None:
        return MonthClose(None, earlier, found, accruals_frame(None), journal_frame(()))
    entries = journal.build_journal(snap, ledger.gl_names(session=session))
    return MonthClose(snap, earlier, found, accruals_frame(snap), journal_frame(entries))


def totals_frame(snap: periods.SnapshotView, by: str) -> pd.DataFrame:
    """A snapshot's total and accrued amount per provider, account, team, cost center or GL
    account (sums of its lines)."""
    if by not in periods.SCOPES:
        raise ValueError(by)
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for line in snap.lines:
        key = getattr(line, by) or ""
        sums[key][0] += line.amount
        sums[key][1] += line.accrued
    return pd.DataFrame(
        [{"scope": k or None, "amount": a, "accrued": e} for k, (a, e) in sorted(sums.items())],
        columns=["scope", "amount", "accrued"],
    )


def accruals_frame(snap: periods.SnapshotView | None) -> pd.DataFrame:
    """What a snapshot accrues per provider, team and GL account (none without one)."""
    return pd.DataFrame(
        [
            {
                "provider": a.provider,
                "team": a.team,
                "cost_center": a.cost_center,
                "gl_account": a.gl_account,
                "amount": a.amount,
            }
            for a in (journal.accruals(snap) if snap is not None else [])
        ],
        columns=["provider", "team", "cost_center", "gl_account", "amount"],
    )


def journal_frame(entries: tuple[journal.JournalEntry, ...]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "journal": entry.reference,
                "date": entry.date,
                "line": line.number,
                "gl_account": line.gl_account,
                "gl_name": line.gl_name,
                "cost_center": line.cost_center or None,
                "debit": line.debit,
                "credit": line.credit,
                "description": line.description,
            }
            for entry in entries
            for line in entry.lines
        ],
        columns=[
            "journal", "date", "line", "gl_account", "gl_name", "cost_center", "debit", "credit",
            "description",
        ],
    )  # fmt: skip


def corrections_frame(found: list[corrections.CorrectionView]) -> pd.DataFrame:
    """The Restatements view: each correction with its original and new amount."""
    return pd.DataFrame(
        [
            {
                "month": f"{c.month:%Y-%m}",
                "posted_month": f"{c.posted_month:%Y-%m}",
                "provider": c.provider,
                "account": c.account,
                "team": c.team,
                "original": c.original,
                "new": c.new,
                "difference": c.difference,
                "detected_at": c.detected_at,
                "cause": c.cause or "not known",
                "close": "reopened" if c.history else "current",
            }
            for c in found
        ],
        columns=[
            "month", "posted_month", "provider", "account", "team", "original", "new",
            "difference", "detected_at", "cause", "close",
        ],
    )  # fmt: skip


def restatements(*, session: Session) -> pd.DataFrame:
    return corrections_frame(corrections.list_corrections(session=session))


def history_frame(snaps: tuple[periods.SnapshotView, ...]) -> pd.DataFrame:
    """Earlier closes of a month, reopened: who signed and reopened them, and why."""
    return pd.DataFrame(
        [
            {
                "prepared_by": s.prepared_by,
                "approved_by": s.approved_by,
                "approved_at": s.approved_at,
                "total": s.total,
                "reopened_by": s.reopened_by,
                "reopened_at": s.reopened_at,
                "reason": s.reopen_reason,
            }
            for s in snaps
        ],
        columns=[
            "prepared_by", "approved_by", "approved_at", "total", "reopened_by", "reopened_at",
            "reason",
        ],
    )  # fmt: skip


@dataclass(frozen=True)
class GlSettings:
    chart: pd.DataFrame
    expense_codes: list[str]
    liability_codes: list[str]
    defaults: ledger.GlDefaults


def gl_settings(*, session: Session) -> GlSettings:
    """The chart of accounts (with which are the defaults) and the defaults."""
    chart = ledger.list_gl_accounts(session=session)
    defaults = ledger.gl_defaults(session=session)
    roles = {
        defaults.expense: "default expense",
        defaults.accrued_liabilities: "accrued liabilities",
    }
    frame = pd.DataFrame(
        [
            {"code": a.code, "name": a.name, "kind": a.kind, "default": roles.get(a.code)}
            for a in chart
        ],
        columns=["code", "name", "kind", "default"],
    )
    return GlSettings(
        frame,
        [a.code for a in chart if a.kind == "expense"],
        [a.code for a in chart if a.kind == "liability"],
        defaults,
    )
