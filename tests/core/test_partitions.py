"""usage_records partitioned by month on PostgreSQL (migration 0024, tracker.core.partitions):
the migration keeps every row and rollup, writes land in their month or the default partition,
the worker's job moves them out of the default without touching the rollups, and the rollup
triggers follow writes into any partition."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from tests.ingest.test_rollup import FIRST, _account, _check, _rows
from tracker.core import migrate, partitions, units
from tracker.core.db import make_engine
from tracker.ingest.writer import upsert_rows
from tracker.models import UsageDaily, UsageRecord, utcnow


def _months(first: dt.date, last: dt.date) -> list[dt.date]:
    months = [first.replace(day=1)]
    while (following := units.next_month(months[-1])) <= last:
        months.append(following)
    return months


def _kind(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(
            conn.scalar(text("SELECT relkind FROM pg_class WHERE relname = 'usage_records'"))
        )


def _rows_by_partition(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text("SELECT tableoid::regclass::text, count(*) FROM usage_records GROUP BY 1")
            ).all()
        )


def _snapshot(engine: Engine) -> tuple[list[Any], list[Any]]:
    """Every usage row (by id) and every usage_daily row, to compare before and after."""
    with Session(engine) as session:
        detail = session.execute(
            select(UsageRecord.id, UsageRecord.day, UsageRecord.model, UsageRecord.input_tokens,
                   UsageRecord.estimated_cost, UsageRecord.billed_cost).order_by(UsageRecord.id)
        ).all()  # fmt: skip
        daily = session.execute(
            select(*UsageDaily.__table__.columns).order_by(*UsageDaily.__table__.primary_key)
        ).all()
    return [tuple(r) for r in detail], [tuple(r) for r in daily]


def _write(engine: Engine, seed: int, n: int) -> None:
    rng = random.Random(seed)
    with Session(engine) as session, session.begin():
        account = session.scalar(select(func.min(UsageRecord.account_id)))
        if account is None:
            account = _account(session, "partitioned-openai", "openai").id
        upsert_rows(session, account, _rows(rng, n), stamp=utcnow())


def test_usage_records_is_partitioned_by_month_on_postgresql(postgresql_engine):
    assert _kind(postgresql_engine) == "p"
    with postgresql_engine.connect() as conn:
        have = partitions.month_partitions(conn)
        key = conn.scalar(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'pk_usage_records'"
            )
        )
        default = conn.scalar(text("SELECT to_regclass('usage_records_default')::text"))
    # Migrated on an empty table: today's month and three ahead, and the default partition.
    assert set(partitions.months_ahead_of(dt.datetime.now(dt.UTC).date())) <= set(have)
    assert default == "usage_records_default"
    assert key == "PRIMARY KEY (id, day)"


def test_default_rows_move_to_their_month_and_the_rollups_follow_every_partition(
    pg_databases, monkeypatch
):
    engine = make_engine(pg_databases.create())
    migrate.upgrade(engine)
    try:
        _write(engine, 1, 400)  # April to June 2026: older than any partition, so the default
        assert set(_rows_by_partition(engine)) == {"usage_records_default"}
        before = _snapshot(engine)

        with engine.begin() as conn:
            done = partitions.maintain(conn, dt.date(2026, 6, 20))
        months = {partitions.partition_name(m) for m in _months(FIRST, dt.date(2026, 6, 20))}
        assert months <= set(done.created)
        assert done.moved_rows == len(before[0])
        assert "usage_records_default" not in _rows_by_partition(engine)
        assert set(_rows_by_partition(engine)) == months
        assert _snapshot(engine) == before  # the rows moved; nothing was counted again

        # Writes into the new partitions (updates of existing keys and new rows) and into the
        # default partition again keep every rollup equal to the detail.
        _write(engine, 1, 400)
        _write(engine, 2, 300)
        with Session(engine) as session:
            _check(session, monkeypatch)
        with engine.begin() as conn:
            again = partitions.maintain(conn, dt.date(2026, 6, 20))
        assert again.created == [] and again.moved_rows == 0
    finally:
        engine.dispose()


def test_migration_partitions_an_installed_table_and_back(pg_databases, monkeypatch):
    engine = make_engine(pg_databases.create())
    migrate.upgrade(engine, "0023")
    try:
        _write(engine, 3, 500)
        before = _snapshot(engine)
        assert _kind(engine) == "r"

        migrate.upgrade(engine)
        assert _kind(engine) == "p"
        assert _snapshot(engine) == before
        by_partition = _rows_by_partition(engine)
        assert "usage_records_default" not in by_partition  # a month for every row's month
        assert sum(by_partition.values()) == len(before[0])
        _write(engine, 4, 200)  # the sequence goes on; the triggers came back
        with Session(engine) as session:
            _check(session, monkeypatch)
            assert session.scalar(select(func.min(UsageRecord.id))) == before[0][0][0]

        after = _snapshot(engine)
        config = migrate.alembic_config(str(engine.url))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0023")
        assert _kind(engine) == "r"
        assert _snapshot(engine) == after
        _write(engine, 5, 100)
        with Session(engine) as session:
            _check(session, monkeypatch)
    finally:
        engine.dispose()


def test_the_partition_job_does_nothing_on_sqlite(sqlite_engine):
    with sqlite_engine.begin() as conn:
        done = partitions.maintain(conn, dt.date(2026, 12, 4))
    assert done.created == [] and done.skipped


def test_alembic_compares_the_models_without_the_partitions():
    assert partitions.include_name("usage_records_y2026m12", "table", {}) is False
    assert partitions.include_name("usage_records_default", "table", {}) is False
    assert partitions.include_name("usage_records", "table", {}) is True
    assert partitions.include_name("usage_records_y2026m12", "index", {}) is True


@pytest.mark.parametrize("day", [dt.date(2026, 1, 31), dt.date(2026, 12, 1)])
def test_months_ahead_are_whole_months(day):
    months = partitions.months_ahead_of(day)
    assert len(months) == partitions.MONTHS_AHEAD + 1
    assert all(m.day == 1 for m in months)
    assert months[0] == day.replace(day=1)
    assert months[1] == units.next_month(months[0])
