"""`budgets set|list` and `forecast`: monthly budgets (USD) and month-end projections."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.cli.common import Context, out, table, usd
from tracker.core import units
from tracker.core.errors import InvalidInput
from tracker.models import utcnow
from tracker.planning import budgets, projections

# --- budgets -------------------------------------------------------------------------------


SET_USAGE = "give the scope and the amount, e.g. `budgets set team:Web 500` (or --clear)"


def cmd_budgets_set(args: argparse.Namespace, ctx: Context) -> int:
    scope_given = [v for v in (args.scope_arg, args.scope) if v]
    amount_given = [v for v in (args.monthly_arg, args.monthly) if v]
    if len(scope_given) != 1:
        raise InvalidInput(
            f"{'two scopes were' if scope_given else 'no scope was'} given; {SET_USAGE}"
        )
    if args.clear == bool(amount_given) or len(amount_given) > 1:
        raise InvalidInput(f"give either one amount in USD or --clear; {SET_USAGE}")
    monthly = None if args.clear else units.parse_money(amount_given[0], what="budget")
    with ctx.transaction() as session:
        scope = budgets.set_budget(session=session, scope=scope_given[0], monthly=monthly)
    if monthly is None:
        out(f"cleared the monthly budget of {scope}")
    else:
        out(f"set the monthly budget of {scope} to {usd(monthly)}")
    return 0


def cmd_budgets_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        views = budgets.list_budgets(session=session, today=utcnow().date())
    if args.json:
        out(json.dumps([v.as_json() for v in views], indent=2))
        return 0
    table(
        ("SCOPE", "MONTHLY BUDGET", "SOURCE", "SPENT (MTD)", "USED"),
        [
            (
                v.scope,
                usd(v.monthly_budget) or "not set",
                v.source,
                usd(v.spent),
                "" if v.used_pct is None else f"{v.used_pct:.1f} %",
            )
            for v in views
        ],
    )
    return 0


# --- forecast ------------------------------------------------------------------------------


def cmd_forecast(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    today = utcnow().date()
    with runtime.session_factory() as session:
        if args.scope:
            results = [projections.project_scope(session=session, scope=args.scope, today=today)]
        else:
            results = projections.project_all(session=session, today=today)
    if args.json:
        out(json.dumps([p.as_json() for p in results], indent=2))
        return 0
    table(
        (
            "SCOPE",
            "SPENT",
            "PROJECTED",
            "80 % INTERVAL",
            "BUDGET",
            "RUNS OUT",
            "BACKTEST MAPE",
            "RUN-RATE MAPE",
        ),
        [
            (
                p.scope,
                usd(p.actual_to_date),
                usd(p.projected_total),
                f"{usd(p.lower)} - {usd(p.upper)}",
                usd(p.budget) or "-",
                p.budget_exhausted_on.isoformat() if p.budget_exhausted_on else "-",
                "-" if p.backtest_mape is None else f"{p.backtest_mape:.1f} %",
                "-" if p.run_rate_mape is None else f"{p.run_rate_mape:.1f} %",
            )
            for p in results
        ],
    )
    out(f"month {today:%Y-%m}; actuals through {results[0].as_of if results else today} (UTC)")
    return 0


def register(commands: Any) -> None:
    """Add `budgets` and `forecast` to the top-level subparsers."""
    bud = commands.add_parser("budgets", help="monthly budgets (USD)").add_subparsers(
        dest="budgets_command", required=True
    )
    bset = bud.add_parser(
        "set",
        help="set a monthly budget for org, a service, an account or a team",
        description="budgets set SCOPE USD (e.g. `budgets set team:Web 500`), or with "
        "--scope and --monthly; --clear removes the budget",
    )
    scopes = "org, service:PROVIDER, account:NAME or team:NAME (`teams list`)"
    bset.add_argument("scope_arg", nargs="?", metavar="SCOPE", help=scopes)
    bset.add_argument("monthly_arg", nargs="?", metavar="USD", help="monthly budget in USD")
    bset.add_argument("--scope", help=scopes)
    bset.add_argument("--monthly", metavar="USD", help="monthly budget in USD")
    bset.add_argument("--clear", action="store_true", help="remove the budget")
    bset.set_defaults(handler=cmd_budgets_set)
    blist = bud.add_parser("list", help="budgets and month-to-date spend")
    blist.add_argument("--json", action="store_true")
    blist.set_defaults(handler=cmd_budgets_list)

    fc = commands.add_parser("forecast", help="month-end projections with backtest error")
    fc.add_argument("--scope", help="one scope only: org, service:NAME, account:NAME or team:NAME")
    fc.add_argument("--json", action="store_true")
    fc.set_defaults(handler=cmd_forecast)
