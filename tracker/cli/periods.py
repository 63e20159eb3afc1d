"""The month-end close commands: `periods list|show|close|approve|reopen|corrections` and
`gl list|add|remove|defaults`.

Registered by `tracker.cli.main.build_parser`. The command line is the server's operator, so
a sign-off names its signer with `--as USERNAME`: an active finance user or admin (an admin
to reopen), and the approver another person than the preparer, as on the Close page. The
journal entry of a closed month is an export: `export --format journal --period YYYY-MM`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.cli.common import CLI_ACTOR, Context, out, parse_month, table, usd
from tracker.closing import corrections, ledger, periods
from tracker.core.units import dec_str


def cmd_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        found = periods.list_periods(session=session)
    if args.json:
        out(json.dumps([_period_json(p) for p in found], indent=2))
        return 0
    table(
        ("MONTH", "STATUS", "PREPARED BY", "APPROVED BY", "CLOSED TOTAL", "NOW", "CORRECTIONS"),
        [
            (
                f"{p.month:%Y-%m}",
                p.status,
                p.prepared_by or "",
                p.approved_by or "",
                usd(p.closed_total),
                usd(p.current_total),
                p.corrections or "",
            )
            for p in found
        ],
    )
    return 0


def cmd_show(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        snap = periods.snapshot(session=session, month=args.month)
    if snap is None:
        out(f"{args.month:%Y-%m} is open: it has no snapshot until a finance user prepares it")
        return 0
    out(
        f"{snap.month:%Y-%m} {snap.state}: prepared by {snap.prepared_by} "
        f"{snap.prepared_at:%Y-%m-%d %H:%M} UTC"
        + (f", approved by {snap.approved_by}" if snap.approved_by else "")
    )
    label = periods.SCOPE_LABELS[args.by].upper()
    table((label, "TOTAL"), [(k or "-", usd(v)) for k, v in snap.totals(args.by).items()])
    out(f"total {usd(snap.total)}, of which accrued (not yet billed) {usd(snap.accrued)}")
    return 0


def cmd_close(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        snap = periods.prepare(session=session, month=args.month, actor=args.as_user)
    out(
        f"prepared {snap.month:%Y-%m} as {snap.prepared_by}: total {usd(snap.total)}, accrued "
        f"{usd(snap.accrued)}; another finance user or an admin approves it with "
        f"`python -m tracker periods approve {snap.month:%Y-%m} --as USERNAME`"
    )
    return 0


def cmd_approve(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        snap = periods.approve(session=session, month=args.month, actor=args.as_user)
    out(
        f"closed {snap.month:%Y-%m}: approved by {snap.approved_by}, prepared by "
        f"{snap.prepared_by}; total {usd(snap.total)}"
    )
    return 0


def cmd_reopen(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        periods.reopen(session=session, month=args.month, actor=args.as_user, reason=args.reason)
    out(f"reopened {args.month:%Y-%m}; its snapshot is kept as history")
    return 0


def cmd_corrections(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        found = corrections.list_corrections(session=session, month=args.month)
    if args.json:
        out(json.dumps([_correction_json(c) for c in found], indent=2))
        return 0
    if not found:
        out("no corrections: no closed month changed after its close")
        return 0
    header = ("MONTH", "POSTED TO", "PROVIDER", "ACCOUNT", "TEAM", "ORIGINAL", "NEW", "CHANGE")
    table(
        (*header, "CAUSE"),
        [
            (
                f"{c.month:%Y-%m}", f"{c.posted_month:%Y-%m}", c.provider, c.account, c.team,
                usd(c.original), usd(c.new), usd(c.difference), c.cause or "not known",
            )  # fmt: skip
            for c in found
        ],
    )  # fmt: skip
    return 0


def cmd_gl_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        chart = ledger.list_gl_accounts(session=session)
        defaults = ledger.gl_defaults(session=session)
    table(("CODE", "NAME", "KIND"), [(a.code, a.name, a.kind) for a in chart])
    out(f"default expense account: {defaults.expense or 'not set'}")
    out(f"accrued-liabilities account: {defaults.accrued_liabilities or 'not set'}")
    return 0


def cmd_gl_add(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        account = ledger.save_gl_account(
            session=session, code=args.code, name=args.name, kind=args.kind, actor=CLI_ACTOR
        )
        out(f"saved GL account {account.code} {account.name} ({account.kind})")
    return 0


def cmd_gl_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        ledger.remove_gl_account(session=session, code=args.code, actor=CLI_ACTOR)
    out(f"removed GL account {args.code}")
    return 0


def cmd_gl_defaults(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        before = ledger.gl_defaults(session=session)
        after = ledger.set_gl_defaults(
            session=session,
            expense=before.expense if args.expense is None else args.expense,
            accrued_liabilities=(
                before.accrued_liabilities
                if args.accrued_liabilities is None
                else args.accrued_liabilities
            ),
            actor=CLI_ACTOR,
        )
    out(
        f"default expense account: {after.expense or 'not set'}; accrued-liabilities account: "
        f"{after.accrued_liabilities or 'not set'}"
    )
    return 0


def _period_json(p: periods.PeriodView) -> dict[str, Any]:
    return {
        "month": f"{p.month:%Y-%m}",
        "status": p.status,
        "prepared_by": p.prepared_by,
        "prepared_at": p.prepared_at.isoformat() if p.prepared_at else None,
        "approved_by": p.approved_by,
        "approved_at": p.approved_at.isoformat() if p.approved_at else None,
        "closed_total": dec_str(p.closed_total),
        "current_total": dec_str(p.current_total),
        "corrections": p.corrections,
    }


def _correction_json(c: corrections.CorrectionView) -> dict[str, Any]:
    return {
        "month": f"{c.month:%Y-%m}",
        "posted_month": f"{c.posted_month:%Y-%m}",
        "provider": c.provider,
        "account": c.account,
        "team": c.team,
        "original": dec_str(c.original),
        "new": dec_str(c.new),
        "difference": dec_str(c.difference),
        "detected_at": c.detected_at.isoformat(),
        "cause": c.cause,
    }


def register(commands: Any) -> None:
    """Add `periods` and `gl` to the top-level subparsers."""
    grp = commands.add_parser(
        "periods", help="billing periods: close a month (two people), reopen, corrections"
    ).add_subparsers(dest="periods_command", required=True)
    lst = grp.add_parser("list", help="every month with its status and who signed it")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_list)
    show = grp.add_parser("show", help="a prepared or closed month's snapshot")
    show.add_argument("month", type=parse_month, metavar="YYYY-MM")
    show.add_argument("--by", choices=periods.SCOPES, default="provider")
    show.set_defaults(handler=cmd_show)
    for name, handler, what in (
        ("close", cmd_close, "prepare a month's close: take its snapshot for approval"),
        ("approve", cmd_approve, "approve a prepared month (another person): it is closed"),
    ):
        step = grp.add_parser(name, help=what)
        step.add_argument("month", type=parse_month, metavar="YYYY-MM")
        step.add_argument(
            "--as", dest="as_user", required=True, metavar="USERNAME",
            help="the finance user or admin signing this step",
        )  # fmt: skip
        step.set_defaults(handler=handler)
    ro = grp.add_parser("reopen", help="open a closed month again (an admin, with a reason)")
    ro.add_argument("month", type=parse_month, metavar="YYYY-MM")
    ro.add_argument("--reason", required=True)
    ro.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="an admin")
    ro.set_defaults(handler=cmd_reopen)
    cor = grp.add_parser("corrections", help="changes to closed months found after the close")
    cor.add_argument("--month", type=parse_month, metavar="YYYY-MM", help="affected or posted to")
    cor.add_argument("--json", action="store_true")
    cor.set_defaults(handler=cmd_corrections)

    gl = commands.add_parser(
        "gl", help="the chart of accounts and the default GL accounts of the close"
    ).add_subparsers(dest="gl_command", required=True)
    gl.add_parser("list", help="the chart of accounts and the defaults").set_defaults(
        handler=cmd_gl_list
    )
    add = gl.add_parser("add", help="add a GL account to the chart, or rename one")
    add.add_argument("code")
    add.add_argument("--name", required=True)
    add.add_argument("--kind", required=True, choices=ledger.KINDS)
    add.set_defaults(handler=cmd_gl_add)
    rem = gl.add_parser("remove", help="remove a GL account from the chart")
    rem.add_argument("code")
    rem.set_defaults(handler=cmd_gl_remove)
    de = gl.add_parser("defaults", help="the default expense and accrued-liabilities accounts")
    de.add_argument("--expense", metavar="CODE", help="'' clears it")
    de.add_argument("--accrued-liabilities", dest="accrued_liabilities", metavar="CODE")
    de.set_defaults(handler=cmd_gl_defaults)
