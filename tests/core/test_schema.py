"""The migrated schema on SQLite and PostgreSQL: matches the models, exact money, UTC."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from tracker.core import migrate
from tracker.core.db import make_engine
from tracker.core.partitions import include_name
from tracker.models import Account, Base, Service, Team, UsageRecord
from tracker.providers.registry import PROVIDERS


def make_account(session, name="acct", provider="openai") -> Account:
    service = session.scalar(select(Service).where(Service.name == provider))
    account = Account(
        service=service, name=name, credential_encrypted="v1.x.y", credential_last4="9876"
    )
    session.add(account)
    session.flush()
    return account


def test_migrations_match_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    assert migrate.current_revision(engine) == migrate.head_revision()


def test_every_provider_is_seeded(session):
    names = set(session.scalars(select(Service.name)))
    assert names == set(PROVIDERS)


def test_indexes_for_dashboard_queries(engine):
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("usage_records")}
    # By day (its leading column) and by account and day.
    assert {"ix_usage_records_day_model", "ix_usage_records_account_id_day"} <= indexes
    assert "ix_usage_records_day" not in indexes  # redundant with day_model, slowed writes
    uniques = {uc["name"] for uc in inspect(engine).get_unique_constraints("usage_records")}
    assert "uq_usage_records_natural_key" in uniques


def test_label_rollups_are_keyed_label_first_then_period(engine):
    # The filter lists walk distinct (kind, label); "used in these days" is then one range.
    for table, period in (("usage_labels", "day"), ("usage_labels_monthly", "month")):
        key = inspect(engine).get_pk_constraint(table)["constrained_columns"]
        assert key == ["kind", "label", period, "ident", "account_id"]


def test_usage_pages_leave_room_for_resynced_rows_on_postgresql(postgresql_engine):
    # fillfactor is a PostgreSQL storage parameter; SQLite has none.
    with postgresql_engine.connect() as conn:
        options = conn.scalar(
            text(
                "SELECT array_agg(DISTINCT array_to_string(c.reloptions, ',')) FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'usage_records'::regclass"
            )
        )
    # Partitioned by month (migration 0024): each partition carries the storage parameter.
    assert options == ["fillfactor=70"]


def test_money_is_exact_and_tokens_are_64_bit(session):
    account = make_account(session)
    # PostgreSQL's NUMERIC(18, 6) holds every value exactly; SQLite keeps NUMERIC as a double,
    # exact to 15 significant digits (under $1B at micro-dollar precision): see docs/operations.md.
    postgres = session.get_bind().dialect.name == "postgresql"
    big = Decimal("999999999999.999999") if postgres else Decimal("999999999.999999")
    tiny = Decimal("0.000001")
    session.add_all(
        [
            UsageRecord(
                account_id=account.id,
                day=dt.date(2026, 11, 1),
                model="m",
                input_tokens=2**40,
                output_tokens=2**33,
                billed_cost=big,
            ),
            UsageRecord(
                account_id=account.id, day=dt.date(2026, 11, 2), model="m", estimated_cost=tiny
            ),
        ]
    )
    session.flush()
    session.expire_all()
    rows = session.scalars(select(UsageRecord).order_by(UsageRecord.day)).all()
    assert rows[0].billed_cost == big and rows[0].input_tokens == 2**40
    assert rows[1].estimated_cost == tiny and rows[1].billed_cost is None
    assert rows[0].cost_source == "none" and rows[0].currency == "USD"


def test_a_team_budget_is_never_negative(session):
    session.add(Team(name="Web", monthly_budget=Decimal("12.5")))
    session.flush()
    session.add(Team(name="ML", monthly_budget=Decimal("-1")))
    with pytest.raises(IntegrityError, match="ck_teams_budget"):
        session.flush()


def test_natural_key_is_unique(session):
    account = make_account(session)
    key = dict(account_id=account.id, day=dt.date(2026, 11, 1), model="gpt-4o", project_id="p")
    session.add(UsageRecord(**key))
    session.flush()
    session.add(UsageRecord(**key))
    with pytest.raises(IntegrityError):
        session.flush()


def test_timestamps_are_utc_aware(session):
    account = make_account(session)
    paris = dt.timezone(dt.timedelta(hours=1))
    account.last_sync_at = dt.datetime(2026, 11, 23, 10, 30, tzinfo=paris)
    session.flush()
    session.expire_all()
    fetched = session.get(Account, account.id)
    assert fetched.last_sync_at == dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    assert fetched.last_sync_at.utcoffset() == dt.timedelta(0)
    assert fetched.created_at.tzinfo is not None
    with pytest.raises(Exception, match="naive datetime"):
        fetched.last_sync_at = dt.datetime(2026, 11, 23, 9, 30)
        session.flush()


def test_repr_never_shows_the_credential(session):
    account = make_account(session)
    assert "v1.x.y" not in repr(account) and "9876" in repr(account)


def test_upgrade_is_idempotent_and_creates_sqlite_file(tmp_path):
    path = tmp_path / "nested" / "fresh.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert path.exists()
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_interrupted_runs_get_their_own_status_and_back(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'runs.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_databases").create()
    )
    engine = make_engine(url)
    migrate.upgrade(engine, "0010")
    with engine.begin() as conn:
        service_id = conn.execute(text("SELECT id FROM services WHERE name = 'openai'")).scalar()
        conn.execute(
            text(
                "INSERT INTO accounts (service_id, name, credential_encrypted, credential_last4,"
                " status, created_at, updated_at) VALUES (:s, 'a', 'x', '', 'active',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"s": service_id},
        )
        account_id = conn.execute(text("SELECT id FROM accounts")).scalar()
        for status, error in [("failed", "interrupted: killed"), ("failed", "openai: 500")]:
            conn.execute(
                text(
                    "INSERT INTO sync_runs (account_id, trigger, range_start, range_end,"
                    " started_at, rows_written, status, error) VALUES (:a, 'worker',"
                    " '2026-08-01', '2026-08-02', CURRENT_TIMESTAMP, 0, :st, :er)"
                ),
                {"a": account_id, "st": status, "er": error},
            )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM sync_runs ORDER BY id")).scalars().all()
    assert statuses == ["interrupted", "failed"]
    config = migrate.alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0010")
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM sync_runs ORDER BY id")).scalars().all()
    assert statuses == ["failed", "failed"]
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_list_cost_column_migrates_down_and_up(
    backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'list_cost.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_databases").create()
    )
    engine = make_engine(url)
    migrate.upgrade(engine)

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("usage_records")}

    assert "list_cost" in columns()
    config = migrate.alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0023-1")  # the revision before this one
    assert "list_cost" not in columns()
    migrate.upgrade(engine)
    assert "list_cost" in columns()
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_spend_limit_kinds_migrate_down_and_up(
    backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'limits.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_databases").create()
    )
    engine = make_engine(url)
    migrate.upgrade(engine, "0024")
    with engine.begin() as conn:
        service_id = conn.execute(text("SELECT id FROM services WHERE name = 'openai'")).scalar()
        conn.execute(
            text(
                "INSERT INTO accounts (service_id, name, credential_encrypted, credential_last4,"
                " status, created_at, updated_at) VALUES (:s, 'a', 'x', '', 'active',"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"s": service_id},
        )
        conn.execute(
            text(
                "INSERT INTO provider_spend_limits (account_id, scope, amount, currency, period,"
                " account_wide, readable, read_at) SELECT id, '', 150, 'USD', 'month', true,"
                " true, CURRENT_TIMESTAMP FROM accounts"
            )
        )
    migrate.upgrade(engine)

    def kinds() -> list[tuple[str, str]]:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT scope, kind FROM provider_spend_limits ORDER BY scope")
            )
            return [(scope, kind) for scope, kind in rows]

    assert kinds() == [("", "cap")]  # every limit read before alerts was a cap
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO provider_spend_limits (account_id, scope, amount, currency, period,"
                " account_wide, readable, read_at, kind) SELECT account_id, 'alert:a', 90,"
                " 'USD', 'month', true, true, read_at, 'alert' FROM provider_spend_limits"
            )
        )
        with pytest.raises(IntegrityError):
            with conn.begin_nested():
                conn.execute(text("UPDATE provider_spend_limits SET kind = 'hint'"))
    config = migrate.alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0024")
    columns = {c["name"] for c in inspect(engine).get_columns("provider_spend_limits")}
    assert not {"kind", "spent", "email"} & columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT scope FROM provider_spend_limits")).scalars().all() == [""]
    migrate.upgrade(engine)
    assert kinds() == [("", "cap")]
    engine.dispose()
