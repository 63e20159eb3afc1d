"""usage_records.list_cost: the provider's list-price amount of a billed row.

Anthropic's Usage and Cost Analytics API reports, beside the billed `amount` (after
negotiated discounts, before credits), a `list_amount` (before discounts). Keeping it lets
the savings ledger show what negotiated prices saved on rows the price book cannot price
(billed line items). NULL where a provider reports no list amount (every existing row).

Added and dropped in place (SQLite's ALTER TABLE ... ADD/DROP COLUMN): copying
usage_records, as a batch operation would, drops its rollup triggers.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "usage_records", sa.Column("list_cost", sa.Numeric(precision=18, scale=6), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("usage_records", "list_cost")
