"""Engines: a new SQLite database is private to its user; an unwritable path is one line."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import text

from tracker.core.db import make_engine
from tracker.core.errors import DatabaseUnavailable


def test_a_new_sqlite_file_and_folder_are_for_this_user_only(tmp_path):
    path = tmp_path / "private" / "tracker.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_sqlite_path_under_a_file_says_what_to_do(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(DatabaseUnavailable, match="cannot create the SQLite database"):
        make_engine(f"sqlite:///{blocker / 'tracker.db'}")


def test_postgresql_connections_do_not_jit_compile(pg_databases):
    # Compiling took longer than the dashboard's short aggregates it would speed up.
    engine = make_engine(pg_databases.create(), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW jit")) == "off"
    finally:
        engine.dispose()
