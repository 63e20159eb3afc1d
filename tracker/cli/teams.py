"""`teams ...`: teams, their dated mappings, shared-cost rules and the monthly chargeback."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.attribution import teams
from tracker.attribution.chargeback import chargeback
from tracker.cli.common import Context, out, parse_date, parse_month, table, usd
from tracker.core.errors import InvalidInput
from tracker.core.units import dec_str, today_utc


def cmd_add(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        team = teams.add_team(
            session=session,
            name=args.name,
            cost_center=args.cost_center,
            gl_account=args.gl_account,
            actor="cli",
        )
    out(f"added team {team.name}")
    return 0


def cmd_update(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        teams.update_team(
            session=session,
            name=args.name,
            cost_center=args.cost_center,
            gl_account=args.gl_account,
            actor="cli",
        )
    out(f"updated team {args.name}")
    return 0


def cmd_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        teams.remove_team(session=session, name=args.name, actor="cli")
    out(f"removed team {args.name}; its spend is unassigned unless mapped again")
    return 0


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        found = teams.list_teams(session=session)
        mappings = teams.list_mappings(session=session)
        rules = teams.list_rules(session=session)
    if args.json:
        out(
            json.dumps(
                {
                    "teams": [
                        {"name": t.name, "cost_center": t.cost_center, "gl_account": t.gl_account}
                        for t in found
                    ],
                    "mappings": [
                        {
                            "id": m.id,
                            "kind": m.kind,
                            "value": m.value,
                            "team": m.team,
                            "valid_from": str(m.valid_from),
                            "valid_to": str(m.valid_to) if m.valid_to else None,
                        }
                        for m in mappings
                    ],
                    "rules": [{"id": r.id, "rule": r.describe()} for r in rules],
                },
                indent=2,
            )
        )
        return 0
    table(
        ("TEAM", "COST CENTER", "GL ACCOUNT"),
        [(t.name, t.cost_center or "-", t.gl_account or "-") for t in found],
    )
    out()
    table(
        ("ID", "KIND", "VALUE", "TEAM", "FROM", "TO"),
        [(m.id, m.kind, m.value, m.team, m.valid_from, m.valid_to or "open") for m in mappings],
    )
    out()
    table(
        ("ID", "RULE", "FROM", "TO"),
        [(r.id, r.describe(), r.valid_from, r.valid_to or "open") for r in rules],
    )
    return 0


def cmd_map(args: argparse.Namespace, ctx: Context) -> int:
    kind, value = next((k, getattr(args, k)) for k in teams.KINDS if getattr(args, k) is not None)
    with ctx.transaction() as session:
        view = teams.add_mapping(
            session=session,
            kind=kind,
            value=value,
            team=args.team,
            valid_from=args.valid_from,
            valid_to=args.valid_to,
            actor="cli",
        )
    out(
        f"mapping #{view.id}: {teams.KIND_LABELS[kind]} {value} -> {view.team} "
        f"from {view.valid_from}"
    )
    return 0


def cmd_unmap(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        if args.valid_to is None:
            teams.remove_mapping(session=session, mapping_id=args.id, actor="cli")
        else:
            teams.end_mapping(
                session=session, mapping_id=args.id, valid_to=args.valid_to, actor="cli"
            )
    if args.valid_to is None:
        out(f"removed mapping #{args.id}")
    else:
        out(f"mapping #{args.id} ends: it no longer holds from {args.valid_to}")
    return 0


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    try:
        stream = open(args.file, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with stream, ctx.transaction() as session:
        try:
            added = teams.import_mappings(session=session, stream=stream, actor="cli")
        except UnicodeDecodeError:
            raise InvalidInput(f"{args.file} is not UTF-8 text; save it as UTF-8 CSV") from None
    out(f"imported {added} mapping(s)")
    return 0


def cmd_share(args: argparse.Namespace, ctx: Context) -> int:
    targets: list[tuple[str, str | None]] = []
    for raw in args.team or []:
        name, _, percent = raw.partition("=")
        targets.append((name, percent or None))
    with ctx.transaction() as session:
        rule = teams.add_rule(
            session=session,
            source=args.source,
            method=args.method,
            targets=targets,
            valid_from=args.valid_from,
            valid_to=args.valid_to,
            actor="cli",
        )
    out(f"rule #{rule.id}: {rule.describe()}")
    return 0


def cmd_unshare(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        teams.remove_rule(session=session, rule_id=args.id, actor="cli")
    out(f"removed shared-cost rule #{args.id}")
    return 0


def cmd_chargeback(args: argparse.Namespace, ctx: Context) -> int:
    month = args.month or today_utc().replace(day=1)
    with ctx.reading() as session:
        result = chargeback(session=session, month=month)
    if args.json:
        out(
            json.dumps(
                {
                    "month": f"{result.month:%Y-%m}",
                    "total": dec_str(result.total),
                    "teams": {team: dec_str(cost) for team, cost in result.by_team().items()},
                    "pieces": [
                        {
                            "team": p.team,
                            "cost_center": p.cost_center,
                            "gl_account": p.gl_account,
                            "provider": p.provider,
                            "account": p.account,
                            "project": p.project,
                            "api_key": p.api_key,
                            "user": p.user,
                            "model": p.model,
                            "method": p.method,
                            "shared_from": p.shared_from,
                            "cost": dec_str(p.cost),
                        }
                        for p in result.pieces
                    ],
                },
                indent=2,
            )
        )
        return 0
    if not result.pieces:
        out(f"no spend in {result.month:%Y-%m} (UTC); sync or import usage first")
        return 0
    table(("TEAM", "COST"), [(team, usd(cost)) for team, cost in result.by_team().items()])
    out(f"total {usd(result.total)} for {result.month:%Y-%m} (UTC)")
    return 0


def register(commands: Any) -> None:
    """Add `teams` to the top-level subparsers."""
    grp = commands.add_parser(
        "teams", help="teams, mappings, shared-cost rules and the chargeback"
    ).add_subparsers(dest="teams_command", required=True)
    add = grp.add_parser("add", help="add a team")
    add.add_argument("name")
    add.add_argument("--cost-center")
    add.add_argument("--gl-account")
    add.set_defaults(handler=cmd_add)
    upd = grp.add_parser("update", help="change a team's cost center or GL account")
    upd.add_argument("name")
    upd.add_argument("--cost-center")
    upd.add_argument("--gl-account")
    upd.set_defaults(handler=cmd_update)
    rem = grp.add_parser("remove", help="remove a team, its mappings and rules")
    rem.add_argument("name")
    rem.set_defaults(handler=cmd_remove)
    lst = grp.add_parser("list", help="teams, mappings and shared-cost rules")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)

    mp = grp.add_parser(
        "map", help="give a team an account's, project's, API key's or user's spend"
    )
    what = mp.add_mutually_exclusive_group(required=True)
    what.add_argument("--user", metavar="USER_ID")
    what.add_argument("--api-key", dest="api_key", metavar="KEY_ID")
    what.add_argument("--project", metavar="PROJECT_ID")
    what.add_argument("--account", metavar="ACCOUNT_NAME")
    mp.add_argument("--team", required=True)
    mp.add_argument("--from", dest="valid_from", type=parse_date, required=True)
    mp.add_argument("--to", dest="valid_to", type=parse_date, help="first day it no longer holds")
    mp.set_defaults(handler=cmd_map)
    um = grp.add_parser("unmap", help="end a mapping on a day (--to), or remove it")
    um.add_argument("id", type=int)
    um.add_argument("--to", dest="valid_to", type=parse_date, help="first day it no longer holds")
    um.set_defaults(handler=cmd_unmap)
    imp = grp.add_parser(
        "import", help="add mappings from a CSV (kind,value,team,valid_from,valid_to)"
    )
    imp.add_argument("file", metavar="FILE.csv")
    imp.set_defaults(handler=cmd_import)

    sh = grp.add_parser("share", help="split a team's (or the unassigned) spend over teams")
    sh.add_argument("--source", required=True, help="a team, or Unassigned")
    sh.add_argument("--method", required=True, choices=teams.METHODS)
    sh.add_argument(
        "--team",
        action="append",
        metavar="TEAM[=PERCENT]",
        help="a target team (repeat); PERCENT for --method fixed; none: every other team",
    )
    sh.add_argument("--from", dest="valid_from", type=parse_date, required=True)
    sh.add_argument("--to", dest="valid_to", type=parse_date, help="first day it no longer holds")
    sh.set_defaults(handler=cmd_share)
    us = grp.add_parser("unshare", help="remove a shared-cost rule")
    us.add_argument("id", type=int)
    us.set_defaults(handler=cmd_unshare)

    cb = grp.add_parser("chargeback", help="a month's spend by team")
    cb.add_argument("--month", type=parse_month, metavar="YYYY-MM", help="default: this month")
    cb.add_argument("--json", action="store_true")
    cb.set_defaults(handler=cmd_chargeback)
