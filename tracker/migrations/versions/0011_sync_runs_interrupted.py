"""Allow sync_runs.status 'interrupted': a run its process never finished (killed, or the
database went away), found and closed by the account's next sync.

Earlier such runs were closed as 'failed' with an "interrupted: ..." error; they become
'interrupted' here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_sync_runs_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('running', 'success', 'failed', 'skipped', 'interrupted')"
        )
    op.execute(
        "UPDATE sync_runs SET status = 'interrupted' "
        "WHERE status = 'failed' AND error LIKE 'interrupted%'"
    )


def downgrade() -> None:
    op.execute("UPDATE sync_runs SET status = 'failed' WHERE status = 'interrupted'")
    with op.batch_alter_table("sync_runs") as batch_op:
        batch_op.drop_constraint(op.f("ck_sync_runs_status"), type_="check")
        batch_op.create_check_constraint(
            "status", "status IN ('running', 'success', 'failed', 'skipped')"
        )
