"""`db upgrade`, `db current` and `db revision`: the database schema (Alembic migrations)."""

from __future__ import annotations

import argparse
from typing import Any

from tracker.cli.common import Context, out
from tracker.core import migrate
from tracker.core.db import check_connection


def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.runtime.engine
    check_connection(engine)
    migrate.upgrade(engine)
    out(f"database at {ctx.settings.database_url_safe} is at revision {migrate.head_revision()}")
    return 0


def cmd_db_current(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.runtime.engine
    check_connection(engine)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    out(f"current: {current or 'none (run db upgrade)'}; head: {head}")
    return 0 if current == head else 1


def cmd_db_revision(args: argparse.Namespace, ctx: Context) -> int:
    migrate.revision(ctx.migrated_runtime().engine, args.message)
    return 0


def register(commands: Any) -> None:
    """Add `db` and its subcommands to the top-level subparsers."""
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)
    db.add_parser("current", help="show the schema revision").set_defaults(handler=cmd_db_current)
    rev = db.add_parser("revision", help="(developers) autogenerate a migration")
    rev.add_argument("-m", "--message", required=True)
    rev.set_defaults(handler=cmd_db_revision)
