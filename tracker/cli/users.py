"""`users add`: dashboard users (the password is read from standard input)."""

from __future__ import annotations

import argparse
from typing import Any

from tracker.cli.common import Context, out
from tracker.core.errors import InvalidInput
from tracker.identity import users
from tracker.models import Role


def cmd_users_add(args: argparse.Namespace, ctx: Context) -> int:
    if not args.password_stdin:
        raise InvalidInput("pass the password on standard input with --password-stdin")
    password = ctx.read_secret("password")
    with ctx.transaction() as session:
        user = users.add_user(
            session=session,
            username=args.username,
            email=args.email,
            role=args.role,
            password=password,
            name=args.name,
        )
        out(f"added user {user.username} ({user.role})")
    return 0


def register(commands: Any) -> None:
    """Add `users` and its subcommands to the top-level subparsers."""
    user_cmds = commands.add_parser("users", help="dashboard users").add_subparsers(
        dest="users_command", required=True
    )
    add_user = user_cmds.add_parser("add", help="add a user (password on stdin)")
    add_user.add_argument("username")
    add_user.add_argument("--email", required=True)
    add_user.add_argument("--role", required=True, choices=tuple(Role))
    add_user.add_argument("--name", help="display name (default: the username)")
    add_user.add_argument("--password-stdin", action="store_true", help="read the password")
    add_user.set_defaults(handler=cmd_users_add)
