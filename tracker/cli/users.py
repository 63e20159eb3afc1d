"""`users add|setup-link|invite|reset-link`: dashboard users.

A password is read from standard input, never from the command line. The links are
single-use and printed once (`tracker.identity.links`).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from tracker.cli.common import Context, out
from tracker.core.errors import InvalidInput
from tracker.identity import links, users
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


def _print_link(ctx: Context, purpose: links.Purpose, token: str, who_and_how: str) -> int:
    """A single-use link, printed once (only its hash is stored)."""
    out(who_and_how)
    out(links.url(ctx.settings.link_base, purpose, token))
    return 0


def cmd_users_setup_link(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        token = links.issue_setup(session=session)
    return _print_link(
        ctx,
        links.Purpose.SETUP,
        token,
        "Open this link to create the first admin (valid 24 hours, once; earlier links stop):",
    )


def cmd_users_invite(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        token = links.issue_invitation(
            session=session,
            email=args.email,
            role=args.role,
            actor="cli",
            valid=dt.timedelta(days=ctx.settings.invite_valid_days),
        )
    return _print_link(
        ctx,
        links.Purpose.INVITE,
        token,
        f"Send this link to {args.email.strip().lower()} (valid "
        f"{ctx.settings.invite_valid_days} days, once):",
    )


def cmd_users_reset_link(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        token = links.issue_reset(
            session=session,
            username=args.username,
            actor="cli",
            valid=dt.timedelta(hours=ctx.settings.reset_valid_hours),
        )
    return _print_link(
        ctx,
        links.Purpose.RESET,
        token,
        f"Give this link to {args.username} (valid {ctx.settings.reset_valid_hours} hours, "
        "once; using it ends their sessions):",
    )


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
    setup = user_cmds.add_parser(
        "setup-link", help="print a one-time link to create the first admin"
    )
    setup.set_defaults(handler=cmd_users_setup_link)
    invite = user_cmds.add_parser("invite", help="print a single-use invitation link")
    invite.add_argument("email")
    invite.add_argument("--role", required=True, choices=tuple(Role))
    invite.set_defaults(handler=cmd_users_invite)
    reset = user_cmds.add_parser("reset-link", help="print a one-time password-reset link")
    reset.add_argument("username")
    reset.set_defaults(handler=cmd_users_reset_link)
