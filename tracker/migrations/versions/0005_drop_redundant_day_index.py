"""Drop ix_usage_records_day: ix_usage_records_day_model starts with day and serves it.

Every index on usage_records is written on every upsert; this one answered nothing the
(day, model) index does not, and cost sync throughput.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_usage_records_day", table_name="usage_records")


def downgrade() -> None:
    op.create_index("ix_usage_records_day", "usage_records", ["day"])
