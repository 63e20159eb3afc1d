"""Users, and spend by month per project, key, user and model for the chargeback.

- `usage_records.user_id` (the provider's user, '' where none is reported) joins the natural
  key, with `user_name` beside it; existing rows get ''.
- `usage_labels` and `usage_labels_monthly` hold a third kind, 'user', kept by triggers of
  their own built by 0006's code (with 0013's spend rule), and built from the detail here.
- `usage_attribution_monthly` holds each account's spend per calendar month, project, API key,
  user and model (the spend rule of `tracker.costs.spend`, whole micro-dollars), kept by
  triggers in the writer's transaction as the other rollups are: the chargeback of a month
  reads a few thousand rows instead of a month of detail.
- Team mappings may name a user.

On SQLite the natural key can only change by copying the table, which drops its triggers:
0013's are installed again.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ("account_id", "day", "model", "project_id", "api_key_id", "usage_type", "service_tier")
NEW_KEY = (*OLD_KEY[:5], "user_id", *OLD_KEY[5:])
USER_KIND = {"user": ("coalesce(nullif({p}user_name, ''), {p}user_id)", "{p}user_id")}
USER_LABEL_TRIGGERS = ("usage_user_labels_on_insert", "usage_user_labels_on_delete",
                       "usage_user_labels_on_update")  # fmt: skip

TABLE = "usage_attribution_monthly"
KEY = ("account_id", "month", "project_id", "api_key_id", "user_id", "model")
SUMS = ("row_count", "cost_micros")
ATTRIBUTION_TRIGGERS = tuple(f"{TABLE}_on_{e}" for e in ("insert", "delete", "update"))
ATTRIBUTION_TRUNCATE = f"{TABLE}_on_truncate"


def _load(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(f"rollup_{name[:4]}_for_0016", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


# --- usage_attribution_monthly ------------------------------------------------------------


def _values(p: str, pg: bool) -> list[str]:
    """One detail row's key and contribution (`p`: 'NEW.', 'OLD.' or '')."""
    month = (
        f"CAST(date_trunc('month', CAST({p}day AS timestamp)) AS date)"
        if pg
        else f"date({p}day, 'start of month')"
    )
    spend = (
        f"CASE WHEN {p}cost_source = 'billed' THEN {p}billed_cost "
        f"WHEN {p}cost_source = 'estimated' THEN {p}estimated_cost "
        f"WHEN {p}cost_source = 'covered' THEN {p}allocated_cost ELSE 0 END"
    )
    return [
        f"{p}account_id",
        month,
        f"{p}project_id",
        f"{p}api_key_id",
        f"{p}user_id",
        f"{p}model",
        "1",
        f"CAST(round(coalesce({spend}, 0) * 1000000) AS BIGINT)",
    ]


_COLUMNS = ", ".join((*KEY, *SUMS))
_ADD = f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET " + ", ".join(
    f"{c} = {TABLE}.{c} + excluded.{c}" for c in SUMS
)


def _grouped(source: str, pg: bool, sign: str = "") -> str:
    values = _values("", pg)
    key = [f"{v} AS {c}" for c, v in zip(KEY, values, strict=False)]
    sums = [f"{sign}sum({v}) AS {c}" for c, v in zip(SUMS, values[len(KEY) :], strict=True)]
    groups = ", ".join(str(i) for i in range(1, len(KEY) + 1))
    return f"SELECT {', '.join(key + sums)} FROM {source} GROUP BY {groups}"


def _pg_change(sources: list[tuple[str, str]]) -> str:
    """Add the net change of the transition tables (sign, name); delete groups left empty."""
    net = " UNION ALL ".join(_grouped(name, True, sign) for sign, name in sources)
    return (
        f"WITH net AS (SELECT {', '.join(KEY)}, "
        + ", ".join(f"sum({c}) AS {c}" for c in SUMS)
        + f" FROM ({net}) AS n GROUP BY {', '.join(KEY)} HAVING "
        + " OR ".join(f"sum({c}) <> 0" for c in SUMS)
        + f"), changed AS (INSERT INTO {TABLE} ({_COLUMNS}) SELECT * FROM net {_ADD} "
        f"RETURNING row_count) SELECT count(*) INTO emptied FROM changed WHERE row_count <= 0; "
        f"IF emptied > 0 THEN DELETE FROM {TABLE} WHERE row_count <= 0; END IF;"
    )


PG_FUNCTIONS = {
    ATTRIBUTION_TRIGGERS[0]: _pg_change([("", "new_rows")]),
    ATTRIBUTION_TRIGGERS[1]: _pg_change([("-", "old_rows")]),
    ATTRIBUTION_TRIGGERS[2]: _pg_change([("-", "old_rows"), ("", "new_rows")]),
    ATTRIBUTION_TRUNCATE: f"DELETE FROM {TABLE};",
}
PG_EVENTS = {
    ATTRIBUTION_TRIGGERS[0]: "AFTER INSERT ON usage_records REFERENCING NEW TABLE AS new_rows",
    ATTRIBUTION_TRIGGERS[1]: "AFTER DELETE ON usage_records REFERENCING OLD TABLE AS old_rows",
    ATTRIBUTION_TRIGGERS[2]: (
        "AFTER UPDATE ON usage_records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
    ATTRIBUTION_TRUNCATE: "AFTER TRUNCATE ON usage_records",
}


def _sqlite_add(p: str) -> str:
    return f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({', '.join(_values(p, False))}) {_ADD};"


def _sqlite_subtract(p: str) -> str:
    values = _values(p, False)
    where = " AND ".join(f"{k} = ({v})" for k, v in zip(KEY, values, strict=False))
    return (
        f"UPDATE {TABLE} SET "
        + ", ".join(f"{c} = {c} - ({v})" for c, v in zip(SUMS, values[len(KEY) :], strict=True))
        + f" WHERE {where}; DELETE FROM {TABLE} WHERE row_count <= 0 AND {where};"
    )


SQLITE_TRIGGERS = {
    ATTRIBUTION_TRIGGERS[0]: ("AFTER INSERT", _sqlite_add("NEW.")),
    ATTRIBUTION_TRIGGERS[1]: ("AFTER DELETE", _sqlite_subtract("OLD.")),
    ATTRIBUTION_TRIGGERS[2]: ("AFTER UPDATE", _sqlite_subtract("OLD.") + " " + _sqlite_add("NEW.")),
}


# --- install ------------------------------------------------------------------------------


def fill_statements(pg: bool) -> list[str]:
    """SQL that builds the user labels and `usage_attribution_monthly` from the detail (to
    empty tables: run by the upgrade, and by the benchmark after it gives its rows users)."""
    labels, allocation = _load("0006_usage_labels_sums.py"), _load("0013_usage_allocation.py")
    user_days = labels._by_label(labels._pairs("usage_records", kinds=USER_KIND), kinds=USER_KIND)
    month = labels._pg_month("day") if pg else "date(day, 'start of month')"
    return [
        f"INSERT INTO {TABLE} ({_COLUMNS}) {_grouped('usage_records', pg)}",
        f"INSERT INTO usage_labels ({labels._columns('usage_labels')}) "
        + allocation._with_allocation(user_days),
        f"INSERT INTO usage_labels_monthly ({labels._columns('usage_labels_monthly')}) "
        f"SELECT kind, label, ident, {month}, account_id, {labels._SUMMED} FROM usage_labels "
        "WHERE kind = 'user' GROUP BY 1, 2, 3, 4, 5",
    ]


def _install_triggers() -> None:
    """The user labels' and the attribution rollup's triggers."""
    labels, allocation = _load("0006_usage_labels_sums.py"), _load("0013_usage_allocation.py")
    if _is_pg():
        functions = {
            name: (labels.PG_DECLARE, allocation._with_allocation(body), labels.PG_TRIGGERS[old])
            for name, old, body in zip(
                USER_LABEL_TRIGGERS,
                ("usage_labels_on_insert", "usage_labels_on_delete", "usage_labels_on_update"),
                labels.pg_functions(USER_KIND).values(),
                strict=True,
            )
        }
        for name, body in PG_FUNCTIONS.items():
            functions[name] = ("emptied bigint;", body, PG_EVENTS[name])
        for name, (declare, body, event) in functions.items():
            op.execute(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                f"AS $$ DECLARE {declare} BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON usage_records")
            op.execute(
                f"CREATE TRIGGER {name} {event} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )
    else:
        triggers = {
            name: (when, allocation._with_allocation(body))
            for name, (when, body) in zip(
                USER_LABEL_TRIGGERS, labels.sqlite_triggers(USER_KIND).values(), strict=True
            )
        }
        for name, (when, body) in {**triggers, **SQLITE_TRIGGERS}.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(f"CREATE TRIGGER {name} {when} ON usage_records BEGIN {body} END")


def _drop_triggers() -> None:
    for name in (*USER_LABEL_TRIGGERS, *ATTRIBUTION_TRIGGERS, ATTRIBUTION_TRUNCATE):
        if _is_pg():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON usage_records")
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _natural_key(columns: Sequence[str]) -> None:
    name = "uq_usage_records_natural_key"
    if _is_pg():
        op.execute(
            f"ALTER TABLE usage_records DROP CONSTRAINT {name}, "
            f"ADD CONSTRAINT {name} UNIQUE ({', '.join(columns)})"
        )
        return
    with op.batch_alter_table("usage_records") as batch_op:
        batch_op.drop_constraint(name, type_="unique")
        batch_op.create_unique_constraint(name, list(columns))
    _load("0013_usage_allocation.py")._install(transform=True)  # the copy lost its triggers


def _mapping_kinds(kinds: str) -> None:
    with op.batch_alter_table("team_mappings") as batch_op:
        batch_op.drop_constraint(op.f("ck_team_mappings_kind"), type_="check")
        batch_op.create_check_constraint("kind", f"kind IN ({kinds})")


def upgrade() -> None:
    op.add_column(
        "usage_records",
        sa.Column("user_id", sa.String(length=255), nullable=False, server_default=""),
    )
    op.add_column("usage_records", sa.Column("user_name", sa.String(length=255), nullable=True))
    _natural_key(NEW_KEY)
    op.create_table(
        TABLE,
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("month", sa.Date(), nullable=False),
        *[sa.Column(c, sa.String(length=255), nullable=False) for c in KEY[2:]],
        *[sa.Column(c, sa.BigInteger(), nullable=False) for c in SUMS],
        sa.PrimaryKeyConstraint(*KEY, name=op.f(f"pk_{TABLE}")),
    )
    op.create_index(op.f(f"ix_{TABLE}_month"), TABLE, ["month"])
    for statement in fill_statements(_is_pg()):
        op.execute(statement)
    _install_triggers()
    _mapping_kinds("'account', 'project', 'api_key', 'user'")


def downgrade() -> None:
    _mapping_kinds("'account', 'project', 'api_key'")
    _drop_triggers()
    op.drop_index(op.f(f"ix_{TABLE}_month"), table_name=TABLE)
    op.drop_table(TABLE)
    op.execute("DELETE FROM usage_labels WHERE kind = 'user'")
    op.execute("DELETE FROM usage_labels_monthly WHERE kind = 'user'")
    op.execute("DELETE FROM team_mappings WHERE kind = 'user'")
    # The old key cannot hold one row per user: those rows go (a sync fetches them again at
    # the old grain).
    op.execute("DELETE FROM usage_records WHERE user_id <> ''")
    _natural_key(OLD_KEY)
    with op.batch_alter_table("usage_records") as batch_op:
        batch_op.drop_column("user_name")
        batch_op.drop_column("user_id")
    if not _is_pg():
        _load("0013_usage_allocation.py")._install(transform=True)
