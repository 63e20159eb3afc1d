"""accounts.organization_key: which provider organisation an account's key reads.

Filled by the connection test and the first sync of each account; a second account for the
same organisation is refused (its spend would count twice).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("organization_key", sa.String(255), nullable=True))
        batch.create_index("ix_accounts_organization_key", ["organization_key"])


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_organization_key")
        batch.drop_column("organization_key")
