"""`alerts add|list|remove|events|check`: alert rules and their events.

Webhook URLs are accepted on argv only as a
channel of `alerts add` (like a mail address they name where to send, and the command is run
by an admin); everything printed masks them. Errors are raised as `TrackerError` and printed
as one line by `tracker.cli.main`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import requests

from tracker.alerts import delivery
from tracker.alerts import rules as alert_rules
from tracker.cli.common import CLI_ACTOR, Context, out, table


def cmd_alerts_add(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        rule = alert_rules.add_rule(
            session=session,
            kind=args.kind,
            scope=args.scope,
            threshold=args.threshold,
            channels=args.channel or [],
            name=args.name,
            actor=CLI_ACTOR,
            cipher=ctx.runtime.cipher,
        )
        shown = alert_rules.rule_json(rule)
    unit = f" {shown['unit']}" if shown["unit"] else ""
    out(
        f"added alert {shown['id']}: {shown['kind']} on {shown['scope']} at "
        f"{', '.join(shown['thresholds'])}{unit} -> {', '.join(shown['channels'])}"
    )
    return 0


def cmd_alerts_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        rules = [alert_rules.rule_json(r) for r in alert_rules.list_rules(session=session)]
    if args.json:
        out(json.dumps(rules, indent=2))
        return 0
    if not rules:
        out("no alert rules yet; add one with `python -m tracker alerts add --help`")
        return 0
    table(
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
    with ctx.transaction() as session:
        alert_rules.remove_rule(session=session, rule_id=args.id, actor=CLI_ACTOR)
    out(f"removed alert {args.id} and its history")
    return 0


def cmd_alerts_events(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        rows = alert_rules.list_events(session=session, limit=args.limit)
        events = [alert_rules.event_json(e, r) for e, r in rows]
    if args.json:
        out(json.dumps(events, indent=2))
        return 0
    if not events:
        out("no alerts have fired yet")
        return 0
    table(
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
        cipher=runtime.cipher,
    )
    for subject in report.fired:
        out(("would fire: " if args.dry_run else "fired: ") + subject)
    out(report.summary())
    return 1 if report.failed else 0


def register(commands: Any) -> None:
    """Add `alerts` and its subcommands to the top-level subparsers."""
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
