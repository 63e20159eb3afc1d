"""provider_spend_limits: alerts and members' effective limits beside the caps.

- `kind`: 'cap' (the provider stops or refuses spend past it; every existing row), 'alert'
  (the provider only notifies past it, e.g. OpenAI's spend alerts) or 'member' (the limit
  that applies to one member, e.g. Anthropic's effective limits).
- `spent`: what the provider says was spent at that scope in the current period (a
  member's period-to-date spend); NULL where it says nothing.
- `email`: the member's address as the provider reports it (matched with our users).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("provider_spend_limits", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="cap")
        )
        batch_op.add_column(sa.Column("spent", sa.Numeric(precision=18, scale=6), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.create_check_constraint("kind", "kind IN ('cap', 'alert', 'member')")


def downgrade() -> None:
    # Alerts and members' limits were never caps: before this revision they cannot exist.
    op.execute("DELETE FROM provider_spend_limits WHERE kind <> 'cap'")
    with op.batch_alter_table("provider_spend_limits", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_provider_spend_limits_kind"), type_="check")
        batch_op.drop_column("email")
        batch_op.drop_column("spent")
        batch_op.drop_column("kind")
