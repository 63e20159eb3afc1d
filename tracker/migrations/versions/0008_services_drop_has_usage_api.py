"""services.has_usage_api goes: the provider registry (tracker.providers.registry) is its one home.

The column was seeded once by 0001 and had drifted (DeepSeek was marked as having a usage
API; it has none). Nothing reads it any more; service rows now come from the registry.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What 0001 seeded, for a downgrade.
HAD_USAGE_API = ("openai", "anthropic", "github_copilot", "openrouter", "deepseek")


def upgrade() -> None:
    op.drop_column("services", "has_usage_api")


def downgrade() -> None:
    op.add_column(
        "services",
        sa.Column("has_usage_api", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    services = sa.table("services", sa.column("name", sa.String), sa.column("has_usage_api"))
    op.execute(
        services.update().where(services.c.name.in_(HAD_USAGE_API)).values(has_usage_api=sa.true())
    )
