"""`credits add|list|remove`: credit grants per account, burned down by usage, with the
projected exhaustion and the provider's balance beside the ledger."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.cli.common import CLI_ACTOR, Context, amount, out, parse_date, signed, table, usd
from tracker.core.units import today_utc
from tracker.planning import credits


def cmd_credits_add(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        label = credits.add_grant(
            session=session,
            account=args.account,
            amount=args.amount,
            currency=args.currency,
            starts_on=args.start,
            expires_on=args.expires,
            priority=args.priority,
            note=args.note,
            actor=CLI_ACTOR,
        )
    out(f"added grant {label}")
    return 0


def cmd_credits_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        found = credits.ledger(session=session, today=today_utc(), account=args.account)
    if args.json:
        out(json.dumps([a.as_json() for a in found], indent=2))
        return 0
    if not found:
        out("no credit grant recorded, and no provider reports a balance")
        return 0
    for a in found:
        runs_out = str(a.exhausted_on) if a.exhausted_on else a.exhaustion
        out(
            f"{a.account} ({a.provider}): {usd(a.available)} left now, {usd(a.upcoming)} "
            f"starting later; runs out: {runs_out}"
        )
        if a.provider_balance is not None:
            line = f"  provider balance {amount(a.provider_balance, a.provider_currency or 'USD')}"
            if a.balance_difference is not None:
                line += (
                    f", ledger {usd(a.ledger_balance)}, difference {signed(a.balance_difference)}"
                )
            else:
                line += " (not compared: the ledger burns USD only)"
            out(line)
        if a.grants:
            table(
                (
                    "  ID",
                    "PRIORITY",
                    "AMOUNT",
                    "STARTS",
                    "EXPIRES",
                    "USED",
                    "EXPIRED",
                    "LEFT",
                    "STATUS",
                ),
                [
                    (
                        f"  {g.id}",
                        g.priority,
                        amount(g.amount, g.currency),
                        g.starts_on,
                        g.expires_on or "never",
                        "-" if g.used is None else usd(g.used),
                        "-" if g.expired is None else usd(g.expired),
                        amount(g.remaining, g.currency),
                        g.status,
                    )
                    for g in a.grants
                ],
            )
    return 0


def cmd_credits_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        label = credits.remove_grant(session=session, grant_id=args.id, actor=CLI_ACTOR)
    out(f"removed grant {label}")
    return 0


def register(commands: Any) -> None:
    """Add `credits` to the top-level subparsers."""
    cr = commands.add_parser(
        "credits", help="credit grants and prepaid balances per account"
    ).add_subparsers(dest="credits_command", required=True)
    cadd = cr.add_parser("add", help="record a credit grant on an account")
    cadd.add_argument("--account", required=True, metavar="NAME")
    cadd.add_argument("--amount", required=True)
    cadd.add_argument("--currency", default="USD", help="ISO code (default USD)")
    cadd.add_argument("--start", required=True, type=parse_date, metavar="YYYY-MM-DD")
    cadd.add_argument(
        "--expires", type=parse_date, metavar="YYYY-MM-DD", help="first day it can't be used"
    )
    cadd.add_argument("--priority", type=int, default=1, help="lower is used first (default 1)")
    cadd.add_argument("--note")
    cadd.set_defaults(handler=cmd_credits_add)
    clst = cr.add_parser("list", help="balances, grants, projected exhaustion")
    clst.add_argument("--account", metavar="NAME")
    clst.add_argument("--json", action="store_true")
    clst.set_defaults(handler=cmd_credits_list)
    crem = cr.add_parser("remove", help="remove a grant recorded by mistake")
    crem.add_argument("id", type=int)
    crem.set_defaults(handler=cmd_credits_remove)
