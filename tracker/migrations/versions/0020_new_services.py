"""Services for Cursor and for AI bought through a cloud (Amazon Bedrock, Azure OpenAI, Google
Vertex AI, whose usage comes from the cloud bill's FOCUS export).

The registry would create the rows when first needed; seeding them keeps every provider of
the registry in the table from the start, as 0001 did for the first ones. A row that exists
already (made by the registry) is left as it is.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy, not the registry: a migration must not change when code does.
SERVICES = (
    ("cursor", "Cursor"),
    ("aws_bedrock", "Amazon Bedrock"),
    ("azure_openai", "Azure OpenAI"),
    ("google_vertex", "Google Vertex AI"),
)


def upgrade() -> None:
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
    # Only rows no account uses: an account (and its usage) is never removed by a downgrade.
    op.get_bind().execute(
        sa.text(
            "DELETE FROM services "
            "WHERE name IN ('cursor', 'aws_bedrock', 'azure_openai', 'google_vertex') "
            "AND id NOT IN (SELECT service_id FROM accounts)"
        )
    )
