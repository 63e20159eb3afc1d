"""What the providers' billing APIs say besides usage: their spend limits, where an invoice
came from, and the services of the new providers.

- `provider_spend_limits`: each account's caps at its provider, as the last sync read them
  (one row per account and scope; '' is the whole account).
- Alert rules of the kind `spendlimit` (a provider's cap below our budget, or none).
- `invoices.source`: 'recorded' (by finance: the page, the CLI, a CSV; every existing
  invoice) or 'provider' (listed by the provider's billing API at a sync).
- Services for xAI and Mistral, seeded as 0001 and 0020 seed theirs; a row the registry made already is
  left as it is.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-12
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tracker.models

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy, not the registry: a migration must not change when code does.
SERVICES = (("xai", "xAI"), ("mistral", "Mistral"))
KINDS = "'budget', 'projected', 'quota', 'unpriced', 'variance', 'sync', 'anomaly', 'ratelimit'"


WHEN = tracker.models.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MONEY = sa.Numeric(precision=18, scale=6)


def upgrade() -> None:
    op.create_table(
        "provider_spend_limits",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("scope", sa.String(length=255), nullable=False),
        sa.Column("scope_name", sa.String(length=255), nullable=True),
        sa.Column("amount", MONEY, nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("enforcement", sa.String(length=32), nullable=True),
        sa.Column("account_wide", sa.Boolean(), nullable=False),
        sa.Column("readable", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("read_at", WHEN, nullable=False),
        sa.CheckConstraint(
            "amount IS NULL OR amount >= 0", name=op.f("ck_provider_spend_limits_amount")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_provider_spend_limits_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_spend_limits")),
        sa.UniqueConstraint(
            "account_id", "scope", name=op.f("uq_provider_spend_limits_account_scope")
        ),
    )
    with op.batch_alter_table("provider_spend_limits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_spend_limits_account_id"), ["account_id"], unique=False
        )
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_constraint(op.f("ck_alerts_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({KINDS}, 'spendlimit')")
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
    # Rules of the new kind cannot exist before it (their events go with them).
    op.execute("DELETE FROM alert_events WHERE alert_id IN "
               "(SELECT id FROM alerts WHERE kind = 'spendlimit')")  # fmt: skip
    op.execute("DELETE FROM alerts WHERE kind = 'spendlimit'")
    with op.batch_alter_table("alerts") as batch_op:
        batch_op.drop_constraint(op.f("ck_alerts_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({KINDS})")
    with op.batch_alter_table("provider_spend_limits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_spend_limits_account_id"))
    op.drop_table("provider_spend_limits")
