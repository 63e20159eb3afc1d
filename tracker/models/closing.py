"""The month-end close tables: billing periods, their snapshots, corrections, GL accounts.

Read and written only by `tracker.closing`. Money is whole micro-dollars (`*_micros`), as in
the rollups, so a snapshot's totals are exact on SQLite too.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base, utcnow


class PeriodStatus(StrEnum):
    """Where a billing period is in its close (`billing_periods.status`)."""

    OPEN = "open"
    PREPARED = "prepared"  # a finance user took the snapshot; waiting for another's approval
    CLOSED = "closed"  # approved: its figures are the snapshot's and never change


class BillingPeriod(Base):
    """One calendar month (UTC) of the organisation. A month without a row is open."""

    __tablename__ = "billing_periods"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    month: Mapped[dt.date] = mapped_column(unique=True)  # its first day
    status: Mapped[str] = mapped_column(String(16), default=PeriodStatus.OPEN)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("status IN ('open', 'prepared', 'closed')", name="status"),)


class PeriodSnapshot(Base):
    """One close of a month: the figures one person prepared and another approved. A reopened
    close keeps its snapshot as history (`reopened_*` set)."""

    __tablename__ = "period_snapshots"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    period_id: Mapped[int] = mapped_column(
        ForeignKey("billing_periods.id", ondelete="CASCADE"), index=True
    )
    prepared_by: Mapped[str] = mapped_column(String(64))
    prepared_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_at: Mapped[dt.datetime | None]
    reopened_by: Mapped[str | None] = mapped_column(String(64))
    reopened_at: Mapped[dt.datetime | None]
    reopen_reason: Mapped[str | None] = mapped_column(Text)
    # The GL accounts in force when it was prepared: the journal of a closed month never moves.
    expense_gl_account: Mapped[str | None] = mapped_column(String(64))
    liability_gl_account: Mapped[str | None] = mapped_column(String(64))
    total_micros: Mapped[int] = mapped_column(default=0)
    accrued_micros: Mapped[int] = mapped_column(default=0)


class SnapshotLine(Base):
    """A closed month's spend of one provider, account and team (with the team's cost center
    and GL account at the close), and the part of it accrued (estimated, not yet billed).
    Every total of the snapshot (by provider, account, team, cost center, GL account) is a
    sum of these lines."""

    __tablename__ = "period_snapshot_lines"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("period_snapshots.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(120))
    cost_center: Mapped[str | None] = mapped_column(String(64))
    gl_account: Mapped[str | None] = mapped_column(String(64))
    amount_micros: Mapped[int] = mapped_column(default=0)
    accrued_micros: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        UniqueConstraint(
            "snapshot_id", "provider", "account", "team", name="uq_period_snapshot_lines_cell"
        ),
    )


class PeriodCorrection(Base):
    """A change to a closed month's figures found after its close (a provider restatement, a
    late sync, a re-price, a mapping change): the snapshot keeps its figures, the difference
    is posted to the next open month. `seq` numbers the corrections of one line of one
    snapshot, so the same difference is never posted twice."""

    __tablename__ = "period_corrections"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("period_snapshots.id", ondelete="CASCADE"))
    month: Mapped[dt.date]  # the closed month affected (its first day)
    posted_month: Mapped[dt.date]  # the open month the difference is posted to
    provider: Mapped[str] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(128))
    team: Mapped[str] = mapped_column(String(120))
    seq: Mapped[int] = mapped_column(default=1)
    original_micros: Mapped[int]
    new_micros: Mapped[int]
    difference_micros: Mapped[int]
    detected_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cause: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint(
            "snapshot_id", "provider", "account", "team", "seq", name="uq_period_corrections_once"
        ),
        Index("ix_period_corrections_posted_month", "posted_month"),
    )


class GlAccount(Base):
    """The chart of accounts the journal may name: expense accounts (debited) and liability
    accounts (the accrued liabilities, credited)."""

    __tablename__ = "gl_accounts"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("kind IN ('expense', 'liability')", name="kind"),)
