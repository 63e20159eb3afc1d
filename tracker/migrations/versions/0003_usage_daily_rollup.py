"""Daily rollup of usage_records (usage_daily), kept by triggers in the writer's transaction.

The dashboard's coarse queries (totals, per account, per day and provider, per model) read
`usage_daily` instead of grouping millions of detail rows; see `tracker.models.UsageDaily`.
Triggers on `usage_records` move the rollup in the same transaction as every write (sync
upserts, pruning, imports, re-pricing, account removal):

- PostgreSQL: statement-level AFTER triggers with transition tables, so a 5,000-row upsert
  batch or a million-row re-pricing UPDATE costs one grouped statement, not one per row;
- SQLite: row-level triggers (SQLite has no statement-level ones); fine at its scale.

Each row's spend is the rule of `tracker.spend` (ROW_SPEND_MICROS: the billed amount, the
estimate, or 0, rounded to whole micro-dollars per row), written here in SQL; a test checks
that the rollup and the detail give the same answers on both backends.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ("account_id", "day", "model", "usage_type", "service_tier", "unpriced")
SUMS = (
    "row_count",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
    "cost_micros",
    "billed_micros",
    "estimated_micros",
    "none_rows",
)


def _values(p: str) -> list[str]:
    """One detail row's contribution to each rollup column (`p`: 'NEW.', 'OLD.' or '')."""
    spend = (
        f"CASE WHEN {p}cost_source = 'billed' THEN {p}billed_cost "
        f"WHEN {p}cost_source = 'estimated' THEN {p}estimated_cost ELSE 0 END"
    )
    return [
        f"{p}account_id",
        f"{p}day",
        f"{p}model",
        f"{p}usage_type",
        f"{p}service_tier",
        f"{p}pricing_status = 'unpriced'",
        "1",
        f"{p}input_tokens",
        f"{p}cached_input_tokens",
        f"{p}cache_write_tokens",
        f"{p}cache_write_1h_tokens",
        f"{p}output_tokens",
        f"{p}requests",
        f"CAST(round(coalesce({spend}, 0) * 1000000) AS BIGINT)",
        f"coalesce(CASE WHEN {p}cost_source = 'billed' "
        f"THEN CAST(round({p}billed_cost * 1000000) AS BIGINT) ELSE 0 END, 0)",
        f"coalesce(CASE WHEN {p}cost_source = 'estimated' "
        f"THEN CAST(round({p}estimated_cost * 1000000) AS BIGINT) ELSE 0 END, 0)",
        f"CASE WHEN {p}cost_source = 'none' THEN 1 ELSE 0 END",
    ]


COLUMNS = ", ".join((*KEY, *SUMS))
ADD_ON_CONFLICT = f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET " + ", ".join(
    f"{c} = usage_daily.{c} + excluded.{c}" for c in SUMS
)


def _grouped(source: str) -> str:
    """The rollup rows of a set of detail rows (a table or a transition table)."""
    values = _values("")
    key = values[: len(KEY)]
    sums = [f"sum({v})" for v in values[len(KEY) :]]
    return f"SELECT {', '.join(key + sums)} FROM {source} GROUP BY {', '.join(key)}"


def _pg_add(source: str) -> str:
    return f"INSERT INTO usage_daily ({COLUMNS}) {_grouped(source)} {ADD_ON_CONFLICT};"


def _pg_subtract(source: str) -> str:
    # Groups whose last row went are deleted; the scan for them runs only when one did.
    return (
        f"WITH o ({COLUMNS}) AS ({_grouped(source)}), changed AS (UPDATE usage_daily AS d SET "
        + ", ".join(f"{c} = d.{c} - o.{c}" for c in SUMS)
        + " FROM o WHERE "
        + " AND ".join(f"d.{k} = o.{k}" for k in KEY)
        + " RETURNING d.row_count) SELECT count(*) INTO emptied FROM changed"
        " WHERE row_count = 0; IF emptied > 0 THEN"
        " DELETE FROM usage_daily WHERE row_count = 0; END IF;"
    )


PG_FUNCTIONS = {
    "usage_daily_on_insert": _pg_add("new_rows"),
    "usage_daily_on_delete": _pg_subtract("old_rows"),
    "usage_daily_on_update": _pg_subtract("old_rows") + " " + _pg_add("new_rows"),
    # DELETE, not TRUNCATE: a TRUNCATE of both tables in one statement holds usage_daily open.
    "usage_daily_on_truncate": "DELETE FROM usage_daily;",
}
PG_TRIGGERS = {
    "usage_daily_on_insert": "AFTER INSERT ON usage_records REFERENCING NEW TABLE AS new_rows",
    "usage_daily_on_delete": "AFTER DELETE ON usage_records REFERENCING OLD TABLE AS old_rows",
    "usage_daily_on_update": (
        "AFTER UPDATE ON usage_records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "usage_daily_on_truncate": "AFTER TRUNCATE ON usage_records",
}


def _sqlite_add(p: str) -> str:
    return (
        f"INSERT INTO usage_daily ({COLUMNS}) VALUES ({', '.join(_values(p))}) {ADD_ON_CONFLICT};"
    )


def _sqlite_subtract(p: str) -> str:
    values = _values(p)[len(KEY) :]
    where = " AND ".join(f"{k} = ({v})" for k, v in zip(KEY, _values(p), strict=False))
    return (
        "UPDATE usage_daily SET "
        + ", ".join(f"{c} = {c} - ({v})" for c, v in zip(SUMS, values, strict=True))
        + f" WHERE {where}; DELETE FROM usage_daily WHERE row_count = 0 AND {where};"
    )


SQLITE_TRIGGERS = {
    "usage_daily_on_insert": ("AFTER INSERT", _sqlite_add("NEW.")),
    "usage_daily_on_delete": ("AFTER DELETE", _sqlite_subtract("OLD.")),
    "usage_daily_on_update": ("AFTER UPDATE", _sqlite_subtract("OLD.") + " " + _sqlite_add("NEW.")),
}


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("usage_type", sa.String(length=255), nullable=False),
        sa.Column("service_tier", sa.String(length=64), nullable=False),
        sa.Column("unpriced", sa.Boolean(), nullable=False),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in SUMS],
        sa.PrimaryKeyConstraint(*KEY, name=op.f("pk_usage_daily")),
    )
    op.create_index(op.f("ix_usage_daily_day"), "usage_daily", ["day"], unique=False)
    op.execute(f"INSERT INTO usage_daily ({COLUMNS}) {_grouped('usage_records')}")
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
    op.drop_index(op.f("ix_usage_daily_day"), table_name="usage_daily")
    op.drop_table("usage_daily")
