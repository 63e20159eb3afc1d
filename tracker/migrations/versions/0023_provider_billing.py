"""What the providers' billing APIs say besides usage: where an invoice came from, and the
services of the new providers.

- `invoices.source`: 'recorded' (by finance: the page, the CLI, a CSV; every existing
  invoice) or 'provider' (listed by the provider's billing API at a sync).
- Services for xAI and Mistral, seeded as 0001 and 0020 seed theirs; a row the registry made already is
  left as it is.

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy, not the registry: a migration must not change when code does.
SERVICES = (("xai", "xAI"), ("mistral", "Mistral"))


def upgrade() -> None:
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sa.String(length=16), nullable=False, server_default="recorded")
        )
    connection = op.get_bind()
    for name, display_name in SERVICES:
        connection.execute(
            sa.text(
                "INSERT INTO services (name, display_name) SELECT :name, :display_name "
                "WHERE NOT EXISTS (SELECT 1 FROM services WHERE name = :name)"
            ),
            {"name": name, "display_name": display_name},
        )


def downgrade() -> None:
    # Only service rows no account uses: an account (and its usage) is never removed by a
    # downgrade. Invoices read from a provider stay, as if recorded.
    names = ", ".join(f"'{name}'" for name, _ in SERVICES)
    op.get_bind().execute(
        sa.text(
            f"DELETE FROM services WHERE name IN ({names}) "
            "AND id NOT IN (SELECT service_id FROM accounts)"
        )
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_column("source")
