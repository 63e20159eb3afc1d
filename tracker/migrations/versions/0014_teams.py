"""Teams, their dated mappings (account, project, API key) and shared-cost rules.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 14:43:01.518242
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.models

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = tracker.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("cost_center", sa.String(length=64), nullable=True),
        sa.Column("gl_account", sa.String(length=64), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name", name=op.f("uq_teams_name")),
    )
    op.create_table(
        "shared_cost_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "method IN ('even', 'fixed', 'proportional')", name=op.f("ck_shared_cost_rules_method")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_shared_cost_rules_period")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_shared_cost_rules_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shared_cost_rules")),
    )
    op.create_table(
        "team_mappings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("team_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "kind IN ('account', 'project', 'api_key')", name=op.f("ck_team_mappings_kind")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_team_mappings_period")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_mappings_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team_mappings")),
    )
    with op.batch_alter_table("team_mappings", schema=None) as batch_op:
        batch_op.create_index("ix_team_mappings_kind_value", ["kind", "value"], unique=False)
        batch_op.create_index(batch_op.f("ix_team_mappings_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("team_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_mappings_team_id"))
        batch_op.drop_index("ix_team_mappings_kind_value")

    op.drop_table("team_mappings")
    op.drop_table("shared_cost_rules")
    op.drop_table("teams")
