"""Engines and sessions for SQLite and PostgreSQL; nothing connects at import time.

Callers own the transaction: `with factory.begin() as session: ...`.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tracker.core.config import safe_url
from tracker.core.errors import DatabaseUnavailable

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, create the file's folder and enable FKs and WAL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _prepare_sqlite_file(Path(database).expanduser())
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if parsed.get_backend_name() == "postgresql":
        # No JIT compilation: the app's statements are short aggregates over the rollups, for
        # which compiling (50-80 ms at 20M usage rows, where the planner's cost passes
        # jit_above_cost) took longer than the query it sped up (docs/scaling.md).
        options = kwargs.setdefault("connect_args", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
    return create_engine(url, **kwargs)


def _prepare_sqlite_file(path: Path) -> None:
    """Create the database's folder (0700) and file (0600) for this user alone: the file
    holds encrypted keys and every figure. SQLite gives its -wal and -shm files the file's
    mode."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError as exc:
        raise DatabaseUnavailable(
            f"cannot create the SQLite database {path}: {exc.strerror or exc}; set DATABASE_URL "
            "or DATA_DIR to a folder this user may write"
        ) from None


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself
    # (SQLAlchemy's documented workaround for "Serializable isolation / Savepoints").
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets the app read while the worker writes; busy_timeout waits instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory; objects stay readable after commit (the UI shows them)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_postgres(bind: Engine | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


def check_connection(engine: Engine) -> None:
    """Connect once; raise DatabaseUnavailable with a message that says what to fix."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot connect to the database at {safe_url(str(engine.url))}: {reason}; "
            "check DATABASE_URL and that the server is running"
        ) from None


def require_schema(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless migrations have been applied."""
    check_connection(engine)
    if not inspect(engine).has_table("alembic_version"):
        raise DatabaseUnavailable(
            "the database has no schema yet; run `python -m tracker db upgrade` first"
        )


@contextmanager
def advisory_lock(session: Session, name: str, key: int) -> Iterator[bool]:
    """Try a transaction-scoped PostgreSQL advisory lock; yield whether it was taken.

    The lock is released when the session's transaction ends. On SQLite (one writer at a time
    by design) it always yields True.
    """
    if not is_postgres(session):
        yield True
        return
    namespace = zlib.crc32(name.encode()) & 0x7FFFFFFF
    taken = session.execute(
        text("SELECT pg_try_advisory_xact_lock(:namespace, :key)"),
        {"namespace": namespace, "key": key},
    ).scalar_one()
    yield bool(taken)


# --- PostgreSQL COPY (psycopg2): the one way bulk rows go in -----------------------------------

COPY_NULL = "\\N"  # NULL in COPY text format
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: Any) -> str:
    """A value in COPY text format (NULL as \\N; backslash, tab and line breaks escaped)."""
    if value is None:
        return COPY_NULL
    return str(value).translate(_COPY_ESCAPES)


def copy_in(connection: Any, statement: str, source: Any, *, size: int = 8192) -> int:
    """Run `COPY ... FROM STDIN` on a SQLAlchemy connection's psycopg2 connection, reading
    `source` (a file-like object); return the rows copied."""
    raw: Any = connection.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        cursor.copy_expert(statement, source, size=size)
        return int(cursor.rowcount)
    finally:
        cursor.close()
