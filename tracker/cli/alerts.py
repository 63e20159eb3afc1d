"""Budget, alert and forecast commands: `budgets ...`, `alerts ...`, `forecast`.

Registered by `tracker.cli.build_parser`. Webhook URLs are accepted on argv only as a
channel of `alerts add` (like a mail address they name where to send, and the command is run
by an admin); everything printed masks them. Errors are raised as `TrackerError` and printed
as one line by `tracker.cli.main`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

import requests

from tracker.alerts import delivery
from tracker.alerts import rules as alert_rules
from tracker.core import units
from tracker.models import utcnow
from tracker.planning import budgets, projections

if TYPE_CHECKING:
    from tracker.cli.main import Context

CLI_ACTOR = "cli"


def _out(line: str = "") -> None:
    sys.stdout.write(line + "\n")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        _out("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _usd(value: Any) -> str:
    return "" if value is None else f"${value:,.2f}"


# --- budgets -------------------------------------------------------------------------------


def cmd_budgets_set(args: argparse.Namespace, ctx: Context) -> int:
    monthly = None if args.clear else units.parse_money(args.monthly, what="budget")
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        scope = budgets.set_budget(session=session, scope=args.scope, monthly=monthly)
    if monthly is None:
        _out(f"cleared the monthly budget of {scope}")
    else:
        _out(f"set the monthly budget of {scope} to {_usd(monthly)}")
    return 0


def cmd_budgets_list(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory() as session:
        views = budgets.list_budgets(session=session, today=utcnow().date())
    if args.json:
        _out(json.dumps([v.as_json() for v in views], indent=2))
        return 0
    _table(
        ("SCOPE", "MONTHLY BUDGET", "SOURCE", "SPENT (MTD)", "USED"),
        [
            (
                v.scope,
                _usd(v.monthly_budget) or "not set",
                v.source,
                _usd(v.spent),
                "" if v.used_pct is None else f"{v.used_pct:.1f} %",
            )
            for v in views
        ],
    )
    return 0


# --- alerts --------------------------------------------------------------------------------


def cmd_alerts_add(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        rule = alert_rules.add_rule(
            session=session,
            kind=args.kind,
            scope=args.scope,
            threshold=args.threshold,
            channels=args.channel or [],
            name=args.name,
            actor=CLI_ACTOR,
        )
        shown = alert_rules.rule_json(rule)
    unit = f" {shown['unit']}" if shown["unit"] else ""
    _out(
        f"added alert {shown['id']}: {shown['kind']} on {shown['scope']} at "
        f"{', '.join(shown['thresholds'])}{unit} -> {', '.join(shown['channels'])}"
    )
    return 0


def cmd_alerts_list(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory() as session:
        rules = [alert_rules.rule_json(r) for r in alert_rules.list_rules(session=session)]
    if args.json:
        _out(json.dumps(rules, indent=2))
        return 0
    if not rules:
        _out("no alert rules yet; add one with `python -m tracker alerts add --help`")
        return 0
    _table(
        ("ID", "KIND", "SCOPE", "THRESHOLDS", "CHANNELS", "ENABLED"),
        [
            (
                r["id"],
                r["kind"],
                r["scope"],
                (", ".join(r["thresholds"]) + f" {r['unit']}").strip()
                if r["kind"] != "unpriced"
                else "",
                ", ".join(r["channels"]),
                "yes" if r["enabled"] else "no",
            )
            for r in rules
        ],
    )
    return 0


def cmd_alerts_remove(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory.begin() as session:
        alert_rules.remove_rule(session=session, rule_id=args.id, actor=CLI_ACTOR)
    _out(f"removed alert {args.id} and its history")
    return 0


def cmd_alerts_events(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    with runtime.session_factory() as session:
        rows = alert_rules.list_events(session=session, limit=args.limit)
        events = [alert_rules.event_json(e, r) for e, r in rows]
    if args.json:
        _out(json.dumps(events, indent=2))
        return 0
    if not events:
        _out("no alerts have fired yet")
        return 0
    _table(
        ("ID", "FIRED (UTC)", "RULE", "PERIOD", "DELIVERY", "TRIES", "SUBJECT / LAST ERROR"),
        [
            (
                e["id"],
                e["fired_at"][:16].replace("T", " "),
                e["alert_id"],
                e["period"],
                e["delivery_status"],
                e["delivery_attempts"],
                (e["last_delivery_error"] or e["message"].splitlines()[0])[:90],
            )
            for e in events
        ],
    )
    return 0


def cmd_alerts_check(args: argparse.Namespace, ctx: Context) -> int:
    runtime = ctx.migrated_runtime()
    report = delivery.run_check(
        session_factory=runtime.session_factory,
        settings=runtime.settings,
        http=requests.Session(),
        dry_run=args.dry_run,
    )
    for subject in report.fired:
        _out(("would fire: " if args.dry_run else "fired: ") + subject)
    _out(report.summary())
    return 1 if report.failed else 0


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
        _out(json.dumps([p.as_json() for p in results], indent=2))
        return 0
    _table(
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
                _usd(p.actual_to_date),
                _usd(p.projected_total),
                f"{_usd(p.lower)} - {_usd(p.upper)}",
                _usd(p.budget) or "-",
                p.budget_exhausted_on.isoformat() if p.budget_exhausted_on else "-",
                "-" if p.backtest_mape is None else f"{p.backtest_mape:.1f} %",
                "-" if p.run_rate_mape is None else f"{p.run_rate_mape:.1f} %",
            )
            for p in results
        ],
    )
    _out(f"month {today:%Y-%m}; actuals through {results[0].as_of if results else today} (UTC)")
    return 0


def register(commands: Any) -> None:
    """Add the budget, alert and forecast commands to the top-level subparsers."""
    bud = commands.add_parser("budgets", help="monthly budgets (USD)").add_subparsers(
        dest="budgets_command", required=True
    )
    bset = bud.add_parser("set", help="set a monthly budget for org, a service or an account")
    bset.add_argument("--scope", required=True, help="org, service:PROVIDER or account:NAME")
    group = bset.add_mutually_exclusive_group(required=True)
    group.add_argument("--monthly", metavar="USD", help="monthly budget in USD")
    group.add_argument("--clear", action="store_true", help="remove the budget")
    bset.set_defaults(handler=cmd_budgets_set)
    blist = bud.add_parser("list", help="budgets and month-to-date spend")
    blist.add_argument("--json", action="store_true")
    blist.set_defaults(handler=cmd_budgets_list)

    alr = commands.add_parser("alerts", help="alert rules and their events").add_subparsers(
        dest="alerts_command", required=True
    )
    add = alr.add_parser("add", help="add an alert rule")
    add.add_argument("--kind", required=True, choices=alert_rules.KINDS)
    add.add_argument("--scope", default="org", help="org (default), service:NAME, account:NAME")
    add.add_argument(
        "--threshold",
        metavar="N",
        help="budget/quota/projected: percent (default 50,75,90,100 / 100); variance: percent "
        "(10); sync: hours (6); ratelimit: percent remaining (10); anomaly: USD over baseline",
    )
    add.add_argument(
        "--channel",
        action="append",
        required=True,
        metavar="email:ADDRESS|slack:URL|webhook:URL",
        help="where to send it (repeatable)",
    )
    add.add_argument("--name", help="a label (default: kind, scope and threshold)")
    add.set_defaults(handler=cmd_alerts_add)
    lst = alr.add_parser("list", help="list alert rules (webhook URLs masked)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_alerts_list)
    rm = alr.add_parser("remove", help="remove an alert rule and its events")
    rm.add_argument("id", type=int)
    rm.set_defaults(handler=cmd_alerts_remove)
    ev = alr.add_parser("events", help="fired alerts and their delivery status")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--limit", type=int, default=200)
    ev.set_defaults(handler=cmd_alerts_events)
    chk = alr.add_parser(
        "check", help="evaluate every rule once and deliver (exit 1 if a send failed)"
    )
    chk.add_argument("--dry-run", action="store_true", help="show what would fire; send nothing")
    chk.set_defaults(handler=cmd_alerts_check)

    fc = commands.add_parser("forecast", help="month-end projections with backtest error")
    fc.add_argument("--scope", help="one scope only: org, service:NAME or account:NAME")
    fc.add_argument("--json", action="store_true")
    fc.set_defaults(handler=cmd_forecast)
