"""`invoices add|import|list|remove`: provider invoices matched against the synced billed totals."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tracker.cli.common import (
    CLI_ACTOR,
    Context,
    amount,
    out,
    parse_date,
    parse_month,
    signed,
    table,
    usd,
)
from tracker.core.errors import InvalidInput
from tracker.costs import invoice_csv, invoices
from tracker.providers.registry import PROVIDERS

# --- invoices ------------------------------------------------------------------------------------


def _variance(match: invoices.InvoiceMatch) -> str:
    """Invoice minus billed, and that as a share of the invoice."""
    if match.variance is None:
        return "-"
    share = "" if match.variance_pct is None else f" ({match.variance_pct:+.2f} %)"
    return signed(match.variance) + share


def _summary(match: invoices.InvoiceMatch) -> str:
    line = (
        f"invoice {match.invoice_number} of {match.account} ({match.period:%Y-%m}): "
        f"{match.status}; invoice {amount(match.amount, match.currency)}, "
        f"billed {usd(match.billed)}"
    )
    if match.status in (invoices.MatchStatus.WITHIN_TOLERANCE, invoices.MatchStatus.UNMATCHED):
        line += f", variance {_variance(match)}"
    explanation = match.explanation()
    return line + (f"; {explanation}" if explanation else "")


def cmd_invoices_add(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        invoice_id = invoices.add_invoice(
            session=session,
            actor=CLI_ACTOR,
            provider=args.provider,
            account=args.account,
            invoice_number=args.invoice_id,
            period=args.period,
            issued_on=args.issue_date,
            due_on=args.due_date,
            amount=args.amount,
            currency=args.currency,
            po_number=args.po_number,
        )
        (match,) = invoices.list_invoices(
            session=session, tolerance_pct=ctx.settings.invoice_tolerance_pct, ids=[invoice_id]
        )
    out("recorded " + _summary(match))
    return 0


def cmd_invoices_import(args: argparse.Namespace, ctx: Context) -> int:
    try:
        stream = open(args.file, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InvalidInput(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with stream, ctx.transaction() as session:
        count = invoice_csv.import_invoices(session=session, stream=stream, actor=CLI_ACTOR)
    out(f"recorded {count} invoice(s); `invoices list` shows how each matches")
    return 0


def cmd_invoices_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        found = invoices.list_invoices(
            session=session,
            tolerance_pct=ctx.settings.invoice_tolerance_pct,
            period=args.period,
            account=args.account,
        )
    if args.json:
        out(json.dumps([m.as_json() for m in found], indent=2))
        return 0
    if not found:
        out(
            "no invoice recorded"
            + (" for that month or account" if args.period or args.account else "")
        )
        return 0
    table(
        ("ID", "MONTH", "PROVIDER", "ACCOUNT", "INVOICE", "AMOUNT", "BILLED", "VARIANCE", "STATUS"),
        [
            (
                m.id,
                f"{m.period:%Y-%m}",
                m.provider,
                m.account,
                m.invoice_number,
                amount(m.amount, m.currency),
                usd(m.billed),
                _variance(m),
                m.status,
            )
            for m in found
        ],
    )
    for m in found:
        if explanation := m.explanation():
            out(f"{m.account} {m.invoice_number}: {explanation}")
    return 0


def cmd_invoices_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        label = invoices.remove_invoice(session=session, invoice_id=args.id, actor=CLI_ACTOR)
    out(f"removed invoice {label}")
    return 0


def register(commands: Any) -> None:
    """Add `invoices` to the top-level subparsers."""
    inv = commands.add_parser(
        "invoices", help="provider invoices, matched against the synced billed totals"
    ).add_subparsers(dest="invoices_command", required=True)
    add = inv.add_parser("add", help="record one invoice")
    add.add_argument("--provider", required=True, choices=list(PROVIDERS))
    add.add_argument("--account", required=True, metavar="NAME")
    add.add_argument("--invoice-id", required=True, help="the provider's invoice id")
    add.add_argument("--period", required=True, type=parse_month, metavar="YYYY-MM")
    add.add_argument("--issue-date", required=True, type=parse_date, metavar="YYYY-MM-DD")
    add.add_argument("--due-date", type=parse_date, metavar="YYYY-MM-DD")
    add.add_argument("--amount", required=True, help="as on the invoice, e.g. 1234.56")
    add.add_argument("--currency", default="USD", help="ISO code (default USD)")
    add.add_argument("--po-number")
    add.set_defaults(handler=cmd_invoices_add)
    imp = inv.add_parser("import", help="record the invoices of a CSV, all or none")
    imp.add_argument("file", metavar="FILE.csv")
    imp.set_defaults(handler=cmd_invoices_import)
    lst = inv.add_parser("list", help="invoices with their match status and variance")
    lst.add_argument("--period", type=parse_month, metavar="YYYY-MM")
    lst.add_argument("--account", metavar="NAME")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_invoices_list)
    rem = inv.add_parser("remove", help="remove an invoice recorded by mistake")
    rem.add_argument("id", type=int)
    rem.set_defaults(handler=cmd_invoices_remove)
