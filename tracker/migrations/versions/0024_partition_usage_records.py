"""usage_records range-partitioned by month on PostgreSQL (`tracker.core.partitions`).

The table is rebuilt: the old one is renamed, a partitioned twin with the same columns,
defaults and checks takes its name, one partition per month from the oldest row's to
three after today's plus a default partition are created, every row is copied
(before any index or trigger exists, so the copy is one pass and the rollups, which already
hold these rows, are left alone), then the keys, indexes, the foreign key to accounts and
the rollup triggers are put on the partitioned table and the old table is dropped.

The primary key becomes (id, day): a unique key of a partitioned table must hold its
partition column. `id` still comes from the same sequence and stays unique.

Takes an exclusive lock on usage_records for its whole run: stop the worker first. Measured
durations are in docs/scaling.md ("Partitioned detail"). SQLite keeps the plain table.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04
"""

import datetime as dt
import logging
import time
from collections.abc import Sequence

from alembic import op
from sqlalchemy import Connection, text

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

NATURAL_KEY = "account_id, day, model, project_id, api_key_id, user_id, usage_type, service_tier"
OLD = "usage_records_unpartitioned"
# As tracker.core.partitions names and fills them (this migration is a frozen copy).
MONTHS_AHEAD = 3
FILLFACTOR = 70


def _next_month(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = _next_month(month)
    return months


def _create_partitions(conn: Connection, months: list[dt.date]) -> None:
    for month in months:
        conn.execute(
            text(
                f"CREATE TABLE usage_records_y{month.year:04d}m{month.month:02d} "
                f"PARTITION OF usage_records FOR VALUES FROM ('{month.isoformat()}') "
                f"TO ('{_next_month(month).isoformat()}') WITH (fillfactor = {FILLFACTOR})"
            )
        )
    conn.execute(
        text(
            "CREATE TABLE usage_records_default PARTITION OF usage_records DEFAULT "
            f"WITH (fillfactor = {FILLFACTOR})"
        )
    )


def _triggers(conn: Connection) -> list[str]:
    """The rollup triggers' definitions, to put them back on the rebuilt table."""
    return list(
        conn.scalars(
            text(
                "SELECT pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE tgrelid = 'usage_records'::regclass AND NOT tgisinternal ORDER BY tgname"
            )
        )
    )


def _rebuild(conn: Connection, *, partitioned: bool, months: list[dt.date]) -> None:
    """Rebuild usage_records as a partitioned or a plain table with the same rows, keys,
    indexes, foreign key, storage and triggers."""
    started = time.perf_counter()
    triggers = _triggers(conn)
    conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
    conn.execute(text(f"ALTER TABLE usage_records RENAME TO {OLD}"))
    storage = "PARTITION BY RANGE (day)" if partitioned else f"WITH (fillfactor = {FILLFACTOR})"
    conn.execute(
        text(
            f"CREATE TABLE usage_records (LIKE {OLD} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) "
            f"{storage}"
        )
    )
    if partitioned:
        _create_partitions(conn, months)
    copied = conn.execute(text(f"INSERT INTO usage_records SELECT * FROM {OLD}")).rowcount
    log.info("usage_records: %d rows copied in %.1f s", copied, time.perf_counter() - started)
    # The sequence belongs to the table's id column: dropping the old table would drop it.
    conn.execute(text("ALTER SEQUENCE usage_records_id_seq OWNED BY NONE"))
    conn.execute(text(f"DROP TABLE {OLD}"))
    conn.execute(text("ALTER SEQUENCE usage_records_id_seq OWNED BY usage_records.id"))
    key = "id, day" if partitioned else "id"
    conn.execute(
        text(f"ALTER TABLE usage_records ADD CONSTRAINT pk_usage_records PRIMARY KEY ({key})")
    )
    conn.execute(
        text(
            "ALTER TABLE usage_records ADD CONSTRAINT uq_usage_records_natural_key "
            f"UNIQUE ({NATURAL_KEY})"
        )
    )
    conn.execute(
        text("CREATE INDEX ix_usage_records_account_id_day ON usage_records (account_id, day)")
    )
    conn.execute(text("CREATE INDEX ix_usage_records_day_model ON usage_records (day, model)"))
    conn.execute(
        text(
            "ALTER TABLE usage_records ADD CONSTRAINT fk_usage_records_account_id_accounts "
            "FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE"
        )
    )
    for definition in triggers:
        conn.execute(text(definition))
    conn.execute(text("ANALYZE usage_records"))
    log.info(
        "usage_records rebuilt %s in %.1f s",
        "partitioned by month" if partitioned else "unpartitioned",
        time.perf_counter() - started,
    )


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    first = conn.scalar(text("SELECT min(day) FROM usage_records"))
    today = dt.datetime.now(dt.UTC).date()
    ahead = today
    for _ in range(MONTHS_AHEAD):
        ahead = _next_month(ahead.replace(day=1))
    months = _months(first or today, ahead)
    _rebuild(conn, partitioned=True, months=months)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _rebuild(conn, partitioned=False, months=[])
