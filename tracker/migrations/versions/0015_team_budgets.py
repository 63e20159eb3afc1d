"""teams.monthly_budget: a team's monthly budget (USD), measured against its chargeback spend.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("monthly_budget", sa.Numeric(precision=18, scale=6), nullable=True)
        )
        batch_op.create_check_constraint(
            op.f("ck_teams_budget"), "monthly_budget IS NULL OR monthly_budget >= 0"
        )


def downgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_teams_budget"), type_="check")
        batch_op.drop_column("monthly_budget")
