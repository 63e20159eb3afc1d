"""`accounts add|list|remove|test` and `keys rotate`: provider accounts and their encrypted keys.

The API key is read from standard input only; listings show its last 4 characters.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.alerts import rules as alert_rules
from tracker.cli.common import Context, out, table, usd, whole_number
from tracker.core.errors import InvalidInput, TrackerError
from tracker.providers import accounts
from tracker.providers.registry import PROVIDERS, provider_info


def cmd_accounts_add(args: argparse.Namespace, ctx: Context) -> int:
    info = provider_info(args.provider)
    if info.needs_organization and not (args.organization or "").strip():
        # add_account refuses it too, in words the app can show; here, with the option's name
        # (and before the key is asked for).
        raise InvalidInput(
            f"{info.display_name} accounts need --organization (the organization's login)"
        )
    if args.api_key_stdin:
        key = ctx.read_secret("API key")
    elif info.csv_only:
        key = ""  # usage comes by CSV import
    else:
        raise InvalidInput("pass the API key on standard input with --api-key-stdin")
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
            allow_custom_base_url=runtime.settings.allow_custom_base_urls,
        )
        out(f"added {account.service.name} account {account.name} (key {account.masked_key})")
    return 0


def cmd_accounts_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        views = accounts.list_accounts(session=session)
    if args.json:
        out(json.dumps([v.as_json() for v in views], indent=2))
        return 0
    if not views:
        out("no accounts yet; add one with `python -m tracker accounts add --help`")
        return 0
    rows = [
        (
            v.name,
            v.provider,
            v.masked_key,
            v.status,
            v.last_sync_at.strftime("%Y-%m-%d %H:%M UTC") if v.last_sync_at else "never",
            usd(v.monthly_budget),
            (v.last_error or "")[:60],
        )
        for v in views
    ]
    table(("NAME", "PROVIDER", "KEY", "STATUS", "LAST SYNC", "BUDGET", "LAST ERROR"), rows)
    return 0


def cmd_accounts_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        accounts.remove_account(session=session, name=args.name)
    out(f"removed account {args.name} and its usage history")
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
    out(f"{args.name}: OK: {outcome.message}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        rotated = accounts.rotate_keys(session=session, cipher=runtime.cipher)
        rotated += alert_rules.reseal_channels(session=session, cipher=runtime.cipher)
    out(f"re-encrypted {rotated} credential(s) with key {runtime.cipher.current_key_id}")
    if rotated:
        out("you can now remove ENCRYPTION_KEY_PREVIOUS")
    return 0


def register(commands: Any) -> None:
    """Add `accounts` and `keys` to the top-level subparsers."""
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
    add_acc.add_argument("--token-quota", type=whole_number, metavar="N")
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
