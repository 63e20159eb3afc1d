"""Month partitions of `usage_records` on PostgreSQL.

Migration 0024 makes `usage_records` a table `PARTITION BY RANGE (day)`: one partition per
UTC month, named `usage_records_y2026m12`, and `usage_records_default` for a day that no
month partition holds yet (a back-fill of an old month, a provider's day far ahead), so a
write never fails for want of a partition. The worker's `partitions` job (`maintain`) keeps
the months from this one to `MONTHS_AHEAD` ahead created before any row needs them, and moves
the rows that landed in the default partition into a month partition of their own.

Why: old months can be detached, archived or dropped one by one, vacuum and index builds work
a month at a time, and a month-bounded question of the detail reads only its months.

The rollup triggers are statement-level `AFTER` triggers with transition tables on the
partitioned table itself: PostgreSQL fires them once per statement on the table a statement
names, with the rows of every partition it touched, so every writer (which names
`usage_records`) keeps the rollups as before. Moving rows out of the default partition names
the partitions, not `usage_records`, so the triggers do not fire: the rows only move.

SQLite keeps the plain table; everything here does nothing there.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from tracker.core.units import month_start, next_month

log = logging.getLogger(__name__)

PARENT = "usage_records"
DEFAULT_PARTITION = f"{PARENT}_default"
# Months created ahead of today's: a worker stopped for a while still finds its months.
MONTHS_AHEAD = 3
# Every partition's pages are filled to 70 % (migration 0007's reason: re-synced rows update
# in place); a partitioned table has no storage of its own, so each partition carries it.
FILLFACTOR = 70
# A partition job waits at most this long for the table lock; a long sync holding it makes
# the job try again on its next run instead of queueing every page's read behind it.
LOCK_TIMEOUT = "5s"
# Two workers never create the same partition at once.
_ADVISORY_KEY = 0x7573_6167  # "usag"
_MONTH_NAME = re.compile(rf"^{PARENT}_y(\d{{4}})m(\d{{2}})$")


def partition_name(month: dt.date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def is_partition(table_name: str | None) -> bool:
    """True for the name of a partition of `usage_records` (the models know only the parent)."""
    return table_name == DEFAULT_PARTITION or bool(table_name and _MONTH_NAME.match(table_name))


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's `include_name` hook: compare the models with the tables they define, not with
    the month partitions under `usage_records`."""
    return not (type_ == "table" and is_partition(name))


def months_ahead_of(today: dt.date, months_ahead: int = MONTHS_AHEAD) -> list[dt.date]:
    """Today's month and the `months_ahead` after it."""
    months = [month_start(today)]
    for _ in range(months_ahead):
        months.append(next_month(months[-1]))
    return months


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.scalar(
        text("SELECT relkind FROM pg_class WHERE oid = to_regclass(:name)"), {"name": PARENT}
    )
    return bool(kind == "p")


def month_partitions(connection: Connection) -> dict[dt.date, str]:
    """The month partitions attached to `usage_records`, by their month."""
    names = connection.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(:name)"
        ),
        {"name": PARENT},
    )
    found = {}
    for name in names:
        if match := _MONTH_NAME.match(name):
            found[dt.date(int(match[1]), int(match[2]), 1)] = name
    return found


def create_month(connection: Connection, month: dt.date) -> str:
    """Create and attach the partition of `month` (its rows must not be in the default)."""
    name = partition_name(month)
    connection.execute(
        text(
            f'CREATE TABLE "{name}" PARTITION OF {PARENT} FOR VALUES FROM '
            f"('{month.isoformat()}') TO ('{next_month(month).isoformat()}') "
            f"WITH (fillfactor = {FILLFACTOR})"
        )
    )
    return name


def _move_out_of_default(connection: Connection, month: dt.date) -> int:
    """Give `month` a partition of its own and move its rows there from the default partition.

    PostgreSQL refuses to create a partition whose rows sit in the default partition, so the
    month's table is made apart, filled, then attached (which checks the default holds none).
    """
    name = partition_name(month)
    start, end = month.isoformat(), next_month(month).isoformat()
    connection.execute(
        text(
            f'CREATE TABLE "{name}" (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
            f"WITH (fillfactor = {FILLFACTOR})"
        )
    )
    moved = connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
            f"WHERE day >= '{start}' AND day < '{end}' RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        )
    ).rowcount
    connection.execute(
        text(
            f'ALTER TABLE {PARENT} ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    )
    return moved


@dataclass
class Maintenance:
    """What one run of `maintain` did."""

    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    # Why nothing was done: not partitioned (SQLite), or another process holds the job's lock.
    # A table lock not granted within LOCK_TIMEOUT raises instead (the worker logs it and the
    # next hour's run tries again).
    skipped: str | None = None


def maintain(
    connection: Connection, today: dt.date, months_ahead: int = MONTHS_AHEAD
) -> Maintenance:
    """Create this month's partition and `months_ahead` more, and give every month found in
    the default partition its own; in the caller's transaction. Does nothing on SQLite or on
    a table that is not partitioned."""
    done = Maintenance()
    if not is_partitioned(connection):
        done.skipped = "usage_records is not partitioned on this database"
        return done
    if not connection.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY}
    ):
        done.skipped = "another process is creating partitions"
        return done
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    have = month_partitions(connection)
    stray = connection.scalars(
        text(f"SELECT DISTINCT date_trunc('month', day)::date FROM {DEFAULT_PARTITION} ORDER BY 1")
    ).all()
    for month in stray:
        done.moved_rows += _move_out_of_default(connection, month)
        done.created.append(partition_name(month))
        have[month] = partition_name(month)
    for month in months_ahead_of(today, months_ahead):
        if month not in have:
            done.created.append(create_month(connection, month))
    if done.created:
        log.info(
            "usage_records partitions created: %s (%d rows moved from the default partition)",
            ", ".join(done.created),
            done.moved_rows,
        )
    return done
