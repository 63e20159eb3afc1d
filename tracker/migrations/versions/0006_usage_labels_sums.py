"""Sums per project and per API key, by day (usage_labels) and by month (usage_labels_monthly).

The usage explorer grouped or filtered by project or API key read the detail: half a second
for 30 days and seconds for a year at 5,000,000 rows. `usage_labels` now keeps, per kind
('project' or 'api_key'), label (the name, else the id), id, UTC day and account, the same
sums as `usage_daily` (row count, tokens, requests, cost in whole micro-dollars by the spend
rule of `tracker.spend`, unpriced rows); `usage_labels_monthly` holds the same per calendar
month, so a year by API key reads twelve months of rows plus the days at the window's ends.

Both are rebuilt from the detail and kept by triggers in the writer's transaction, as in
0003 and 0004: on PostgreSQL statement-level triggers with transition tables, which group
the changed rows once per (project, key, day, account) and feed both tables from that; on
SQLite row-level triggers. Label-days whose last row went are deleted by their keys (no scan
of the table); months, only when some day emptied.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# kind -> (label, id) of a detail row (`{p}`: 'NEW.', 'OLD.' or '').
KINDS = {
    "project": ("coalesce(nullif({p}project_name, ''), {p}project_id)", "{p}project_id"),
    "api_key": ("coalesce(nullif({p}api_key_name, ''), {p}api_key_id)", "{p}api_key_id"),
}
LABEL_KEY = ("kind", "label", "ident")
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
# table -> its key columns, in the order the triggers' statements list them (the period
# column is `day` or `month`)
TABLES = {
    "usage_labels": (*LABEL_KEY, "day", "account_id"),
    "usage_labels_monthly": (*LABEL_KEY, "month", "account_id"),
}


def _primary_key(table: str) -> tuple[str, ...]:
    """(kind, label) first: the explorer's filter lists walk the distinct labels on it; then
    the period, so "is this label used in these days" is one tight index range."""
    kind, label, ident, period, account_id = TABLES[table]
    return kind, label, period, ident, account_id


def _columns(table: str) -> str:
    return ", ".join((*TABLES[table], *SUMS))


def _on_conflict(table: str) -> str:
    return f"ON CONFLICT ({', '.join(TABLES[table])}) DO UPDATE SET " + ", ".join(
        f"{c} = {table}.{c} + excluded.{c}" for c in SUMS
    )


def _sums(p: str) -> list[str]:
    """One detail row's contribution to each of SUMS (the spend rule of 0003)."""
    return [
        "1",
        f"{p}input_tokens",
        f"{p}cached_input_tokens",
        f"{p}cache_write_tokens",
        f"{p}cache_write_1h_tokens",
        f"{p}output_tokens",
        f"{p}requests",
        f"coalesce(CASE WHEN {p}cost_source = 'billed' "
        f"THEN CAST(round({p}billed_cost * 1000000) AS BIGINT) "
        f"WHEN {p}cost_source = 'estimated' "
        f"THEN CAST(round({p}estimated_cost * 1000000) AS BIGINT) ELSE 0 END, 0)",
        f"coalesce(CASE WHEN {p}cost_source = 'billed' "
        f"THEN CAST(round({p}billed_cost * 1000000) AS BIGINT) ELSE 0 END, 0)",
        f"coalesce(CASE WHEN {p}cost_source = 'estimated' "
        f"THEN CAST(round({p}estimated_cost * 1000000) AS BIGINT) ELSE 0 END, 0)",
        f"CASE WHEN {p}cost_source = 'none' THEN 1 ELSE 0 END",
    ]


def _pg_month(day: str) -> str:
    """The first day of `day`'s month, on PostgreSQL."""
    return f"CAST(date_trunc('month', CAST({day} AS timestamp)) AS date)"


_SUMMED = ", ".join(f"sum({c}) AS {c}" for c in SUMS)
_ANY_CHANGE = " OR ".join(f"sum({c}) <> 0" for c in SUMS)


def _pairs(source: str, sign: str = "", kinds: dict[str, tuple[str, str]] = KINDS) -> str:
    """Sums of a set of detail rows per (label and id of each kind, day, account): the first
    grouping."""
    labels = ", ".join(
        f"{label.format(p='')} AS {kind}_label, {ident.format(p='')} AS {kind}_id"
        for kind, (label, ident) in kinds.items()
    )
    groups = ", ".join(str(i) for i in range(1, 2 * len(kinds) + 3))
    return (
        f"SELECT {labels}, day, account_id, "
        + ", ".join(f"{sign}sum({v}) AS {c}" for c, v in zip(SUMS, _sums(""), strict=True))
        + f" FROM {source} GROUP BY {groups}"
    )


def _by_label(pairs: str, having: str = "", kinds: dict[str, tuple[str, str]] = KINDS) -> str:
    """Rows of usage_labels from the first grouping's rows (`having`: keep only some)."""
    return " UNION ALL ".join(
        f"SELECT '{kind}' AS kind, {kind}_label AS label, {kind}_id AS ident, day, account_id, "
        f"{_SUMMED} FROM ({pairs}) AS p GROUP BY 1, 2, 3, 4, 5 {having}"
        for kind in kinds
    )


def _pg_apply(pairs: str, kinds: dict[str, tuple[str, str]] = KINDS) -> str:
    """Add the net change of `pairs` to both tables; delete rows left empty."""
    daily, monthly = TABLES["usage_labels"], TABLES["usage_labels_monthly"]
    return (
        f"WITH pairs AS MATERIALIZED ({pairs}), "
        f"days AS MATERIALIZED "
        f"({_by_label('SELECT * FROM pairs', f'HAVING {_ANY_CHANGE}', kinds)}), "
        f"months AS (INSERT INTO usage_labels_monthly ({_columns('usage_labels_monthly')}) "
        f"SELECT {', '.join(monthly[:3])}, {_pg_month('day')}, account_id, "
        f"{_SUMMED} FROM days GROUP BY 1, 2, 3, 4, 5 HAVING {_ANY_CHANGE} "
        f"{_on_conflict('usage_labels_monthly')}), "
        f"changed AS (INSERT INTO usage_labels ({_columns('usage_labels')}) "
        f"SELECT * FROM days {_on_conflict('usage_labels')} "
        f"RETURNING {', '.join(daily)}, row_count) "
        "SELECT array_agg(kind), array_agg(label), array_agg(ident), array_agg(day), "
        "array_agg(account_id) INTO kinds, labels, idents, days, accounts "
        "FROM changed WHERE row_count <= 0; "
        # A month can only empty with one of its days: look at the months of those days.
        "IF kinds IS NOT NULL THEN DELETE FROM usage_labels AS u USING "
        f"{_EMPTIED} WHERE "
        + " AND ".join(f"u.{k} = e.{k}" for k in daily)
        + f" AND u.row_count <= 0; DELETE FROM usage_labels_monthly AS u USING {_EMPTIED} WHERE "
        + " AND ".join(
            f"u.{k} = {_pg_month('e.day')}" if k == "month" else f"u.{k} = e.{k}" for k in monthly
        )
        + " AND u.row_count <= 0; END IF;"
    )


_EMPTIED = (
    "unnest(kinds, labels, idents, days, accounts) AS e (kind, label, ident, day, account_id)"
)


def pg_functions(kinds: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The bodies of the trigger functions that keep `kinds`' rows (migration 0016 adds the
    users' with its own triggers)."""
    return {
        "on_insert": _pg_apply(_pairs("new_rows", kinds=kinds), kinds),
        "on_delete": _pg_apply(_pairs("old_rows", "-", kinds), kinds),
        "on_update": _pg_apply(
            _pairs("old_rows", "-", kinds) + " UNION ALL " + _pairs("new_rows", kinds=kinds), kinds
        ),
    }


PG_FUNCTIONS = {
    **{f"usage_labels_{event}": body for event, body in pg_functions(KINDS).items()},
    "usage_labels_on_truncate": "DELETE FROM usage_labels; DELETE FROM usage_labels_monthly;",
}
PG_TRIGGERS = {
    "usage_labels_on_insert": "AFTER INSERT ON usage_records REFERENCING NEW TABLE AS new_rows",
    "usage_labels_on_delete": "AFTER DELETE ON usage_records REFERENCING OLD TABLE AS old_rows",
    "usage_labels_on_update": (
        "AFTER UPDATE ON usage_records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    "usage_labels_on_truncate": "AFTER TRUNCATE ON usage_records",
}
PG_DECLARE = "kinds text[]; labels text[]; idents text[]; days date[]; accounts bigint[];"
SQLITE_PERIODS = {
    "usage_labels": "{p}day",
    "usage_labels_monthly": "date({p}day, 'start of month')",
}


def _sqlite_add(p: str, kinds: dict[str, tuple[str, str]] = KINDS) -> str:
    return " ".join(
        f"INSERT INTO {table} ({_columns(table)}) VALUES ('{kind}', {label.format(p=p)}, "
        f"{ident.format(p=p)}, {period.format(p=p)}, {p}account_id, {', '.join(_sums(p))}) "
        f"{_on_conflict(table)};"
        for table, period in SQLITE_PERIODS.items()
        for kind, (label, ident) in kinds.items()
    )


def _sqlite_subtract(p: str, kinds: dict[str, tuple[str, str]] = KINDS) -> str:
    out = []
    for table, period in SQLITE_PERIODS.items():
        for kind, (label, ident) in kinds.items():
            where = (
                f"kind = '{kind}' AND label = ({label.format(p=p)}) "
                f"AND ident = {ident.format(p=p)} AND {TABLES[table][3]} = {period.format(p=p)} "
                f"AND account_id = {p}account_id"
            )
            out.append(
                f"UPDATE {table} SET "
                + ", ".join(f"{c} = {c} - ({v})" for c, v in zip(SUMS, _sums(p), strict=True))
                + f" WHERE {where}; DELETE FROM {table} WHERE {where} AND row_count <= 0;"
            )
    return " ".join(out)


def sqlite_triggers(kinds: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """(when, body) of the row-level triggers that keep `kinds`' rows."""
    return {
        "on_insert": ("AFTER INSERT", _sqlite_add("NEW.", kinds)),
        "on_delete": ("AFTER DELETE", _sqlite_subtract("OLD.", kinds)),
        "on_update": (
            "AFTER UPDATE",
            _sqlite_subtract("OLD.", kinds) + " " + _sqlite_add("NEW.", kinds),
        ),
    }


SQLITE_TRIGGERS = {f"usage_labels_{e}": t for e, t in sqlite_triggers(KINDS).items()}


def _drop_triggers(names: Sequence[str]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON usage_records")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _create_table(name: str) -> None:
    key = TABLES[name]
    op.create_table(
        name,
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("ident", sa.String(length=255), nullable=False),
        sa.Column(key[3], sa.Date(), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in SUMS],
        sa.PrimaryKeyConstraint(*_primary_key(name), name=op.f(f"pk_{name}")),
    )
    # The explorer's project or API key views read one kind over a date range.
    op.create_index(op.f(f"ix_{name}_kind_{key[3]}"), name, ["kind", key[3]])


def upgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    _drop_triggers(list(PG_FUNCTIONS) if is_pg else list(SQLITE_TRIGGERS))
    op.drop_index("ix_usage_labels_day_kind_label", table_name="usage_labels")
    op.drop_table("usage_labels")
    for name in TABLES:
        _create_table(name)
    month = _pg_month("day") if is_pg else "date(day, 'start of month')"
    pairs = _pairs("usage_records")
    op.execute(f"INSERT INTO usage_labels ({_columns('usage_labels')}) {_by_label(pairs)}")
    op.execute(
        f"INSERT INTO usage_labels_monthly ({_columns('usage_labels_monthly')}) "
        f"SELECT kind, label, ident, {month}, account_id, {_SUMMED} FROM usage_labels "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    if is_pg:
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"DECLARE {PG_DECLARE} BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} {PG_TRIGGERS[name]} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    else:
        for name, (when, body) in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {when} ON usage_records BEGIN {body} END")


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    _drop_triggers(list(PG_FUNCTIONS) if is_pg else list(SQLITE_TRIGGERS))
    for name, key in TABLES.items():
        op.drop_index(op.f(f"ix_{name}_kind_{key[3]}"), table_name=name)
        op.drop_table(name)
    # 0004's table, triggers and contents, made again by its own upgrade.
    path = Path(__file__).with_name("0004_usage_labels.py")
    spec = importlib.util.spec_from_file_location("usage_labels_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
