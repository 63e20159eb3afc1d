"""The command line (`python -m tracker ...`): exit 0 on success, else one line on stderr.

Secrets are read only from standard input or the environment, never from argv (it shows in
`ps`). Every command that changes data runs in one transaction: an error changes nothing.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, NoReturn

from sqlalchemy.exc import SQLAlchemyError

from tracker.cli import alerts as cli_alerts
from tracker.cli import exports as cli_exports
from tracker.cli import pricing as cli_pricing
from tracker.cli import sync as cli_sync
from tracker.core import migrate
from tracker.core.config import Settings, load_settings
from tracker.core.db import check_connection, require_schema
from tracker.core.errors import InvalidInput, TrackerError
from tracker.core.runtime import Runtime, build_runtime
from tracker.identity import users
from tracker.models import PROVIDERS, ROLES
from tracker.providers import accounts
from tracker.providers.base import make_http_session

log = logging.getLogger("tracker")

Handler = Callable[[argparse.Namespace, "Context"], int]


class Context:
    """Settings and runtime, built only when a command needs them."""

    def __init__(self, stdin: Any = None) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def runtime(self) -> Runtime:
        return build_runtime(self.settings)

    def migrated_runtime(self) -> Runtime:
        """The runtime, after checking the database is reachable and migrated."""
        require_schema(self.runtime.engine)
        return self.runtime

    def read_secret(self, what: str) -> str:
        """Read one secret from standard input (prompting without echo on a terminal)."""
        if self.stdin.isatty():
            return getpass.getpass(f"{what}: ")
        line = self.stdin.readline()
        if not line.strip():
            raise InvalidInput(f"no {what} on standard input; pipe it in, e.g. from a file")
        return line.rstrip("\r\n")

    def http(self) -> Any:
        s = self.settings
        return make_http_session(
            max_retries=s.http_max_retries,
            backoff_factor=s.http_backoff_factor,
            backoff_max=s.http_backoff_max_seconds,
        )


class OneLineParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


# --- db ---------------------------------------------------------------------------------


def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.runtime.engine
    check_connection(engine)
    migrate.upgrade(engine)
    print(f"database at {ctx.settings.database_url_safe} is at revision {migrate.head_revision()}")
    return 0


def cmd_db_current(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.runtime.engine
    check_connection(engine)
    current, head = migrate.current_revision(engine), migrate.head_revision()
    print(f"current: {current or 'none (run db upgrade)'}; head: {head}")
    return 0 if current == head else 1


def cmd_db_revision(args: argparse.Namespace, ctx: Context) -> int:
    migrate.revision(ctx.migrated_runtime().engine, args.message)
    return 0


# --- users ------------------------------------------------------------------------------


def cmd_users_add(args: argparse.Namespace, ctx: Context) -> int:
    if not args.password_stdin:
        raise InvalidInput("pass the password on standard input with --password-stdin")
    password = ctx.read_secret("password")
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        user = users.add_user(
            session=session,
            username=args.username,
            email=args.email,
            role=args.role,
            password=password,
            name=args.name,
        )
        print(f"added user {user.username} ({user.role})")
    return 0


# --- accounts ---------------------------------------------------------------------------


def cmd_accounts_add(args: argparse.Namespace, ctx: Context) -> int:
    if not args.api_key_stdin:
        raise InvalidInput("pass the API key on standard input with --api-key-stdin")
    key = ctx.read_secret("API key")
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        account = accounts.add_account(
            session=session,
            cipher=runtime.cipher,
            provider=args.provider,
            name=args.name,
            api_key=key,
            organization=args.organization,
            base_url=args.base_url,
            monthly_budget=args.monthly_budget,
            token_quota=args.token_quota,
        )
        print(f"added {account.service.name} account {account.name} (key {account.masked_key})")
    return 0


def cmd_accounts_list(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory() as session:
        views = accounts.list_accounts(session=session)
    if args.json:
        print(json.dumps([v.as_json() for v in views], indent=2))
        return 0
    if not views:
        print("no accounts yet; add one with `python -m tracker accounts add --help`")
        return 0
    rows = [
        (
            v.name,
            v.provider,
            v.masked_key,
            v.status,
            v.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if v.last_sync_at else "never",
            "" if v.monthly_budget is None else f"${v.monthly_budget:,.2f}",
            (v.last_error or "")[:60],
        )
        for v in views
    ]
    header = ("NAME", "PROVIDER", "KEY", "STATUS", "LAST SYNC", "BUDGET", "LAST ERROR")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_accounts_remove(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        accounts.remove_account(session=session, name=args.name)
    print(f"removed account {args.name} and its usage history")
    return 0


def cmd_accounts_test(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        outcome = accounts.check_account(
            session=session,
            cipher=runtime.cipher,
            name=args.name,
            http=ctx.http(),
            timeout=ctx.settings.http_timeout_seconds,
        )
    if not outcome.ok:
        raise TrackerError(f"{args.name}: {outcome.message}")
    print(f"{args.name}: OK: {outcome.message}")
    return 0


# --- keys -------------------------------------------------------------------------------


def cmd_keys_rotate(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        rotated = accounts.rotate_keys(session=session, cipher=runtime.cipher)
    print(f"re-encrypted {rotated} credential(s) with key {runtime.cipher.current_key_id}")
    if rotated:
        print("you can now remove ENCRYPTION_KEY_PREVIOUS")
    return 0


# --- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m tracker", description="AI cost tracker")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)
    db.add_parser("current", help="show the schema revision").set_defaults(handler=cmd_db_current)
    rev = db.add_parser("revision", help="(developers) autogenerate a migration")
    rev.add_argument("-m", "--message", required=True)
    rev.set_defaults(handler=cmd_db_revision)

    user_cmds = commands.add_parser("users", help="dashboard users").add_subparsers(
        dest="users_command", required=True
    )
    add_user = user_cmds.add_parser("add", help="add a user (password on stdin)")
    add_user.add_argument("username")
    add_user.add_argument("--email", required=True)
    add_user.add_argument("--role", required=True, choices=ROLES)
    add_user.add_argument("--name", help="display name (default: the username)")
    add_user.add_argument("--password-stdin", action="store_true", help="read the password")
    add_user.set_defaults(handler=cmd_users_add)

    acc = commands.add_parser("accounts", help="provider accounts").add_subparsers(
        dest="accounts_command", required=True
    )
    add_acc = acc.add_parser("add", help="connect a provider account (key on stdin)")
    add_acc.add_argument("--provider", required=True, choices=list(PROVIDERS))
    add_acc.add_argument("--name", required=True)
    add_acc.add_argument("--api-key-stdin", action="store_true", help="read the key from stdin")
    add_acc.add_argument("--organization", help="organization id or login (Copilot: required)")
    add_acc.add_argument("--base-url", help="API base URL (gateways, proxies)")
    add_acc.add_argument("--monthly-budget", metavar="USD")
    add_acc.add_argument("--token-quota", type=_non_negative_int, metavar="N")
    add_acc.set_defaults(handler=cmd_accounts_add)
    list_acc = acc.add_parser("list", help="list accounts (keys masked)")
    list_acc.add_argument("--json", action="store_true")
    list_acc.set_defaults(handler=cmd_accounts_list)
    rm_acc = acc.add_parser("remove", help="remove an account and its usage")
    rm_acc.add_argument("name")
    rm_acc.set_defaults(handler=cmd_accounts_remove)
    test_acc = acc.add_parser("test", help="check an account's credential")
    test_acc.add_argument("name")
    test_acc.set_defaults(handler=cmd_accounts_test)

    keys = commands.add_parser("keys", help="encryption keys").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser(
        "rotate", help="re-encrypt credentials with ENCRYPTION_KEY (old key in *_PREVIOUS)"
    ).set_defaults(handler=cmd_keys_rotate)

    cli_pricing.register(commands)  # price, reconcile, reprice, prices override
    cli_exports.register(commands)  # export
    cli_sync.register(commands)  # sync, import
    cli_alerts.register(commands)  # budgets, alerts, forecast
    return parser


def _non_negative_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be zero or more")
    return value


def main(argv: Sequence[str] | None = None, stdin: Any = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # urllib3 logs each retry as a warning; the command ends with one line of its own.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    ctx = Context(stdin=stdin)
    try:
        handler: Handler = args.handler
        return handler(args, ctx)
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        log.debug("database error", exc_info=True)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: database error: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was committed", file=sys.stderr)
        return 130
