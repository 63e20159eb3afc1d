"""Project and API key labels per day (usage_labels), kept by triggers like usage_daily.

The usage explorer lists the projects and API keys of a date range; scanning the detail for
them took seconds at millions of rows. `usage_labels` holds one row per kind ('project',
'api_key'), label (the name, else the id: `tracker.queries` labels them the same way) and
UTC day, with the count of detail rows behind it. Statement-level triggers with transition
tables (PostgreSQL) or row-level triggers (SQLite) move it in the writer's transaction; an
UPDATE that changes no label (re-pricing) nets to nothing and writes nothing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = {
    "project": "coalesce(nullif({p}project_name, ''), {p}project_id)",
    "api_key": "coalesce(nullif({p}api_key_name, ''), {p}api_key_id)",
}
ON_CONFLICT = (
    "ON CONFLICT (kind, label, day) DO UPDATE SET row_count = usage_labels.row_count + "
    "excluded.row_count"
)


def _counted(source: str, sign: str = "") -> str:
    """(kind, label, day, count) of a set of detail rows; `sign` '-' to subtract."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {label.format(p='')} AS label, day, {sign}count(*) AS n "
        f"FROM {source} GROUP BY 2, 3"
        for kind, label in KINDS.items()
    )


def _pg_apply(parts: str) -> str:
    """Add the net change per (kind, label, day) of `parts`; drop labels left with none
    (the scan for them runs only when one was)."""
    return (
        "WITH changed AS (INSERT INTO usage_labels (kind, label, day, row_count) "
        f"SELECT kind, label, day, sum(n) FROM ({parts}) AS c GROUP BY kind, label, day "
        f"HAVING sum(n) <> 0 {ON_CONFLICT} RETURNING row_count) "
        "SELECT count(*) INTO emptied FROM changed WHERE row_count <= 0; "
        "IF emptied > 0 THEN DELETE FROM usage_labels WHERE row_count <= 0; END IF;"
    )


PG_FUNCTIONS = {
    "usage_labels_on_insert": _pg_apply(_counted("new_rows")),
    "usage_labels_on_delete": _pg_apply(_counted("old_rows", "-")),
    "usage_labels_on_update": _pg_apply(
        _counted("old_rows", "-") + " UNION ALL " + _counted("new_rows")
    ),
    "usage_labels_on_truncate": "DELETE FROM usage_labels;",
}
PG_TRIGGERS = {
    "usage_labels_on_insert": "AFTER INSERT ON usage_records REFERENCING NEW TABLE AS new_rows",
    "usage_labels_on_delete": "AFTER DELETE ON usage_records REFERENCING OLD TABLE AS old_rows",
    "usage_labels_on_update": (
        "AFTER UPDATE ON usage_records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "usage_labels_on_truncate": "AFTER TRUNCATE ON usage_records",
}


def _sqlite_add(p: str) -> str:
    return " ".join(
        f"INSERT INTO usage_labels (kind, label, day, row_count) "
        f"VALUES ('{kind}', {label.format(p=p)}, {p}day, 1) {ON_CONFLICT};"
        for kind, label in KINDS.items()
    )


def _sqlite_subtract(p: str) -> str:
    return " ".join(
        f"UPDATE usage_labels SET row_count = row_count - 1 WHERE kind = '{kind}' "
        f"AND label = ({label.format(p=p)}) AND day = {p}day; "
        f"DELETE FROM usage_labels WHERE kind = '{kind}' AND label = ({label.format(p=p)}) "
        f"AND day = {p}day AND row_count <= 0;"
        for kind, label in KINDS.items()
    )


LABEL_COLUMNS = "day, project_id, project_name, api_key_id, api_key_name"
SQLITE_TRIGGERS = {
    "usage_labels_on_insert": ("AFTER INSERT", _sqlite_add("NEW.")),
    "usage_labels_on_delete": ("AFTER DELETE", _sqlite_subtract("OLD.")),
    # Only updates that can change a label (re-pricing does not) fire this one.
    "usage_labels_on_update": (
        f"AFTER UPDATE OF {LABEL_COLUMNS}",
        _sqlite_subtract("OLD.") + " " + _sqlite_add("NEW."),
    ),
}


def upgrade() -> None:
    op.create_table(
        "usage_labels",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "label", "day", name=op.f("pk_usage_labels")),
    )
    op.create_index(
        op.f("ix_usage_labels_day_kind_label"),
        "usage_labels",
        ["day", "kind", "label"],
        unique=False,
    )
    op.execute(
        "INSERT INTO usage_labels (kind, label, day, row_count) "
        f"SELECT kind, label, day, n FROM ({_counted('usage_records')}) AS c"
    )
    if op.get_bind().dialect.name == "postgresql":
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"DECLARE emptied bigint; BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} {PG_TRIGGERS[name]} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} ON usage_records BEGIN {body} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_FUNCTIONS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON usage_records")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index(op.f("ix_usage_labels_day_kind_label"), table_name="usage_labels")
    op.drop_table("usage_labels")
