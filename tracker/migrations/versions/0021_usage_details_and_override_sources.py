"""usage_records.usage_details; price_overrides.extra_prices, source and checked_on.

- `usage_records.usage_details`: token parts (audio, image, reasoning) and units (tool calls,
  sessions, images, seconds, characters, requests by search context size) beside the token
  columns, as a JSON object of counts; NULL when a row has none (every existing row). The
  rollups do not read it, so their triggers stay as they are.
- `price_overrides.extra_prices`: an organisation's prices for those kinds, as a JSON object.
- `price_overrides.source` and `checked_on`: where an organisation price comes from and when
  it was checked, as the dated corrections of `price_corrections.json` say.

Both are added and dropped in place (SQLite's ALTER TABLE ... ADD/DROP COLUMN): copying
usage_records, as a batch operation would, drops its rollup triggers.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("usage_records", sa.Column("usage_details", sa.JSON(), nullable=True))
    op.add_column("price_overrides", sa.Column("extra_prices", sa.JSON(), nullable=True))
    op.add_column("price_overrides", sa.Column("source", sa.Text(), nullable=True))
    op.add_column("price_overrides", sa.Column("checked_on", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("price_overrides", "checked_on")
    op.drop_column("price_overrides", "source")
    op.drop_column("price_overrides", "extra_prices")
    op.drop_column("usage_records", "usage_details")
