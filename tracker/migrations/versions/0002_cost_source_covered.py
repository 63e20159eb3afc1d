"""Allow cost_source 'covered': usage whose cost is in the day's billed line items.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch_op:
        batch_op.drop_constraint(op.f("ck_usage_records_cost_source"), type_="check")
        batch_op.create_check_constraint(
            "cost_source", "cost_source IN ('billed', 'estimated', 'covered', 'none')"
        )


def downgrade() -> None:
    op.execute("UPDATE usage_records SET cost_source = 'none' WHERE cost_source = 'covered'")
    with op.batch_alter_table("usage_records") as batch_op:
        batch_op.drop_constraint(op.f("ck_usage_records_cost_source"), type_="check")
        batch_op.create_check_constraint(
            "cost_source", "cost_source IN ('billed', 'estimated', 'none')"
        )
