"""The month-end close: billing periods, their snapshots and corrections, GL accounts.

- `billing_periods`: one row per calendar month once its close begins (open, prepared,
  closed); a month without a row is open.
- `period_snapshots`: each close of a month (who prepared it, who approved it, who reopened
  it and why), with the GL accounts in force and its totals in micro-dollars.
- `period_snapshot_lines`: a snapshot's spend and accrual per provider, account and team
  (with the team's cost center and GL account).
- `period_corrections`: changes to a closed month found later, posted to the next open month.
- `gl_accounts`: the chart of accounts the journal entry names.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.models

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = tracker.models.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "billing_periods",
        sa.Column("id", ID, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'prepared', 'closed')", name=op.f("ck_billing_periods_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_periods")),
        sa.UniqueConstraint("month", name=op.f("uq_billing_periods_month")),
    )
    op.create_table(
        "gl_accounts",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint("kind IN ('expense', 'liability')", name=op.f("ck_gl_accounts_kind")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_gl_accounts")),
    )
    op.create_table(
        "period_snapshots",
        sa.Column("id", ID, nullable=False),
        sa.Column("period_id", ID, nullable=False),
        sa.Column("prepared_by", sa.String(length=64), nullable=False),
        sa.Column("prepared_at", WHEN, nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", WHEN, nullable=True),
        sa.Column("reopened_by", sa.String(length=64), nullable=True),
        sa.Column("reopened_at", WHEN, nullable=True),
        sa.Column("reopen_reason", sa.Text(), nullable=True),
        sa.Column("expense_gl_account", sa.String(length=64), nullable=True),
        sa.Column("liability_gl_account", sa.String(length=64), nullable=True),
        sa.Column("total_micros", sa.BigInteger(), nullable=False),
        sa.Column("accrued_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["period_id"],
            ["billing_periods.id"],
            name=op.f("fk_period_snapshots_period_id_billing_periods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_snapshots")),
    )
    with op.batch_alter_table("period_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_period_snapshots_period_id"), ["period_id"])
    op.create_table(
        "period_snapshot_lines",
        sa.Column("id", ID, nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("cost_center", sa.String(length=64), nullable=True),
        sa.Column("gl_account", sa.String(length=64), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("accrued_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["period_snapshots.id"],
            name=op.f("fk_period_snapshot_lines_snapshot_id_period_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_snapshot_lines")),
        sa.UniqueConstraint(
            "snapshot_id", "provider", "account", "team", name="uq_period_snapshot_lines_cell"
        ),
    )
    op.create_table(
        "period_corrections",
        sa.Column("id", ID, nullable=False),
        sa.Column("snapshot_id", ID, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("posted_month", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("team", sa.String(length=120), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("original_micros", sa.BigInteger(), nullable=False),
        sa.Column("new_micros", sa.BigInteger(), nullable=False),
        sa.Column("difference_micros", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", WHEN, nullable=False),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["period_snapshots.id"],
            name=op.f("fk_period_corrections_snapshot_id_period_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_corrections")),
        sa.UniqueConstraint(
            "snapshot_id", "provider", "account", "team", "seq", name="uq_period_corrections_once"
        ),
    )
    with op.batch_alter_table("period_corrections", schema=None) as batch_op:
        batch_op.create_index("ix_period_corrections_posted_month", ["posted_month"])


def downgrade() -> None:
    with op.batch_alter_table("period_corrections", schema=None) as batch_op:
        batch_op.drop_index("ix_period_corrections_posted_month")
    op.drop_table("period_corrections")
    op.drop_table("period_snapshot_lines")
    with op.batch_alter_table("period_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_period_snapshots_period_id"))
    op.drop_table("period_snapshots")
    op.drop_table("gl_accounts")
    op.drop_table("billing_periods")
