"""Shared fixtures: real SQLite and PostgreSQL databases, a loopback-only network, the CLI.

PostgreSQL: `TEST_DATABASE_URL` (default: the local server, user postgres) is used only to
create and drop throwaway databases named `tracker_test_*`. Without a server the PostgreSQL
tests are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tracker.core import migrate
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine
from tracker.models import Base

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)
TEST_ENCRYPTION_KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
TEST_SECRET_KEY = "test-secret-key-that-is-long-enough-0123456789"
BACKENDS = ["sqlite", "postgresql"]


# --- network: loopback only -------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        loopback = ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ConnectionRefusedError(f"tests may only connect to loopback, not {host!r}")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(self, address)
    return _real_connect(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


# --- databases --------------------------------------------------------------------------


def _pg_admin_connection():  # type: ignore[no-untyped-def]
    url = make_url(PG_ADMIN_URL)
    conn = psycopg2.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of a reachable PostgreSQL; skip (fail under CI) if there is none."""
    try:
        _pg_admin_connection().close()
    except psycopg2.OperationalError as exc:
        message = f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL)!r}: {exc}".strip()
        if IN_CI:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    return PG_ADMIN_URL


@dataclass
class PgDatabases:
    admin_url: str
    created: list[str]

    def create(self) -> str:
        name = f"tracker_test_{uuid.uuid4().hex[:12]}"
        conn = _pg_admin_connection()
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        conn = _pg_admin_connection()
        with conn.cursor() as cur:
            for name in self.created:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def pg_databases(pg_server: str) -> Iterator[PgDatabases]:
    """Creates throwaway PostgreSQL databases and drops them all at the end."""
    dbs = PgDatabases(pg_server, [])
    yield dbs
    dbs.drop_all()


def _migrated_engine(url: str) -> Engine:
    engine = make_engine(url)
    migrate.upgrade(engine)
    return engine


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    engine = _migrated_engine(f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgresql_engine(pg_databases: PgDatabases) -> Iterator[Engine]:
    engine = _migrated_engine(pg_databases.create())
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated engine, once per backend (shared across tests: use `session`)."""
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose every change is rolled back after the test (commits are savepoints)."""
    connection = engine.connect()
    outer = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield db_session
    finally:
        db_session.close()
        outer.rollback()
        connection.close()


def truncate_all(engine: Engine) -> None:
    """Empty every table but the seeded services (for tests that commit for real)."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "services"]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
        conn.execute(text("UPDATE services SET monthly_budget = NULL"))


@pytest.fixture(params=BACKENDS)
def committed_db(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated, emptied database that code under test may commit to (CLI, worker)."""
    engine: Engine = request.getfixturevalue(f"{request.param}_engine")
    truncate_all(engine)
    yield engine
    truncate_all(engine)


@pytest.fixture
def cipher() -> CredentialCipher:
    return CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))


# --- the CLI, in process ----------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def app_env(
    committed_db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Environment for app, worker and CLI against `committed_db`; cwd has no .env."""
    env = {
        "DATABASE_URL": committed_db.url.render_as_string(hide_password=False),
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "TRACKER_ENV": "development",
    }
    for name in ("ENCRYPTION_KEY_PREVIOUS", "SMTP_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return env


@pytest.fixture
def cli(app_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `python -m tracker ARGS` in process; stdin is a string."""
    from tracker.cli.main import main

    def run(*argv: str, stdin: str = "") -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(argv), stdin=io.StringIO(stdin))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def streaming_pair() -> Iterator[Any]:
    """A PostgreSQL primary and a streaming standby of it on free ports (`tests.replication`),
    made once per test session and removed at its end; skipped (failed under CI=true) when
    PostgreSQL's server binaries are missing."""
    from tests.replication import streaming_pair as make_pair
    from tests.replication import unavailable

    if missing := unavailable():
        if IN_CI:
            pytest.fail(missing + " (CI=true: the read-replica tests must run)")
        pytest.skip(missing)
    with make_pair() as pair:
        yield pair
