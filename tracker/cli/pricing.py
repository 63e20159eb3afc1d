"""The cost engine's commands: `price`, `reconcile`, `reprice` and `prices override ...`.

Registered by `tracker.cli.main.build_parser`; kept apart so the command line's other parts can
change without touching these. Output goes to standard output; errors are raised as
`TrackerError` and printed as one line by `tracker.cli.main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from tracker import jobs
from tracker.cli.common import CLI_ACTOR, Context, out, parse_date, table, whole_number
from tracker.core import units
from tracker.core.errors import InvalidInput, TrackerError
from tracker.costs import overrides, pricebook, reconcile, reprice
from tracker.providers.registry import PROVIDERS


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.6f}"


def _share(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


# --- price ------------------------------------------------------------------------------


def cmd_price(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        book = pricebook.PriceBook.from_db(session)
    quote = pricebook.price_usage(
        provider=args.provider,
        model=args.model,
        day=args.date,
        input_tokens=args.input_tokens,
        cached_tokens=args.cached_tokens,
        cache_write_tokens=args.cache_write_tokens,
        cache_write_1h_tokens=args.cache_write_1h_tokens,
        output_tokens=args.output_tokens,
        requests=args.requests,
        batch=args.batch,
        service_tier=args.service_tier or "",
        overrides=book,
    )
    if args.json:
        out(json.dumps(quote.as_json(), indent=2))
    if not quote.priced:
        raise TrackerError(f"cannot price {args.model!r} ({args.provider}): {quote.reason}")
    if args.json:
        return 0
    label = "approximate" if quote.approximate else "priced"
    out(
        f"{_money(quote.estimated_cost)} {quote.currency} ({label}; source: {quote.source}; "
        f"catalog model: {quote.model_id or '-'})"
    )
    if quote.unit_prices is not None:
        up = quote.unit_prices.as_json()
        parts = [f"{k.removesuffix('_per_mtok')} {v}" for k, v in up.items() if k != "request"]
        line = "unit prices, USD per million tokens: " + ", ".join(
            p for p in parts if not p.endswith("None")
        )
        if up["request"] is not None:
            line += f"; per request {up['request']}"
        out(line)
    for note in quote.notes:
        out(f"note: {note}")
    return 0


# --- reconcile --------------------------------------------------------------------------


def cmd_reconcile(args: argparse.Namespace, ctx: Context) -> int:
    _check_range(args.start, args.end)
    with ctx.reading() as session:
        report = reconcile.reconcile(session=session, start=args.start, end=args.end)
    if args.json:
        out(json.dumps(report.as_json(), indent=2))
        return 0
    t = report.totals
    out(f"billed vs estimated, {args.start} to {args.end} (USD, UTC days)")
    out("billed is compared with the estimate on the provider-days that report billed cost")
    out()
    table(
        ("PROVIDER", "BILLED", "ESTIMATED (SAME DAYS)", "VARIANCE", "SHARE", "ALL ESTIMATED"),
        [
            (
                p.provider,
                _money(p.billed),
                _money(p.estimated_on_billed_days if p.billed is not None else None),
                _money(p.variance),
                _share(p.variance_share),
                _money(p.estimated),
            )
            for p in t.providers
        ]
        + [
            (
                "TOTAL",
                _money(t.billed),
                _money(t.estimated_on_billed_days),
                _money(t.variance),
                _share(t.variance_share),
                _money(t.estimated),
            )
        ],
    )
    compared = [d for d in report.days if d.comparable]
    if compared:
        out()
        table(
            ("DAY", "PROVIDER", "BILLED", "ESTIMATED", "VARIANCE", "SHARE", "COMPLETE"),
            [
                (
                    d.day.isoformat(),
                    d.provider,
                    _money(d.billed),
                    _money(d.estimated),
                    _money(d.variance),
                    _share(d.variance_share),
                    "yes" if d.complete else "no: unpriced tokens",
                )
                for d in compared
            ],
        )
    if report.unpriced:
        out()
        out("unpriced models (their cost is missing from the estimate):")
        table(
            ("PROVIDER", "MODEL", "TOKENS", "ROWS", "FIRST DAY", "LAST DAY"),
            [
                (
                    m.provider,
                    m.model or "(none)",
                    f"{m.tokens:,}",
                    str(m.rows),
                    m.first_day.isoformat(),
                    m.last_day.isoformat(),
                )
                for m in report.unpriced
            ],
        )
    return 0


# --- reprice ----------------------------------------------------------------------------


def cmd_reprice(args: argparse.Namespace, ctx: Context) -> int:
    _check_range(args.start, args.end)
    runtime = ctx.migrated_runtime()
    factory = runtime.session_factory
    # A dry run never commits (its session closes with a rollback); a real run is one
    # transaction: all days re-priced and audited, or nothing.
    with factory() if args.dry_run else factory.begin() as session:
        report = reprice.reprice(
            session=session,
            start=args.start,
            end=args.end,
            dry_run=args.dry_run,
            actor=CLI_ACTOR,
        )
    # New estimates move projections, anomalies, alerts and closed months (a correction), as
    # a re-price on the Reconciliation page does; a failure there is retried by the worker.
    failed = jobs.after_new_usage(runtime) if report.rows_changed and not args.dry_run else []
    if args.json:
        out(json.dumps(report.as_json(), indent=2))
        return 0
    days = report.changed_days
    if days:
        table(
            ("DAY", "OLD ESTIMATE", "NEW ESTIMATE", "CHANGE", "ROWS CHANGED"),
            [
                (
                    d.day.isoformat(),
                    _money(d.old_estimated),
                    _money(d.new_estimated),
                    _money(d.change),
                    str(d.rows_changed),
                )
                for d in days
            ],
        )
    change = report.new_total - report.old_total
    verb = "would change" if args.dry_run else "changed"
    out(
        f"{report.rows_changed} of {report.rows} usage rows {verb}; estimated total "
        f"{_money(report.old_total)} -> {_money(report.new_total)} ({_money(change)})"
    )
    if args.dry_run:
        out("dry run: nothing was written; run again without --dry-run to apply")
    if failed:
        out("re-priced; the worker will retry: " + "; ".join(failed))
    return 0


# --- prices override --------------------------------------------------------------------


def cmd_override_add(args: argparse.Namespace, ctx: Context) -> int:
    kind = "discount" if args.discount is not None else "price"
    with ctx.transaction() as session:
        view = overrides.add_override(
            session=session,
            provider=args.provider,
            model=args.model,
            kind=kind,
            valid_from=args.valid_from,
            valid_to=args.valid_to,
            input_price=args.input_price,
            cached_input_price=args.cached_input_price,
            cache_write_price=args.cache_write_price,
            cache_write_1h_price=args.cache_write_1h_price,
            output_price=args.output_price,
            request_price=args.request_price,
            discount_pct=args.discount,
            note=args.note,
            actor=CLI_ACTOR,
        )
    end = view.valid_to - dt.timedelta(days=1) if view.valid_to else dt.date.today()
    out(f"added {kind} override #{view.id} for {view.provider}/{view.model or '*'}")
    out(
        "history is not re-priced yet: see the effect with `python -m tracker reprice "
        f"--start {view.valid_from} --end {max(end, view.valid_from)} --dry-run`"
    )
    return 0


def cmd_override_list(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        views = overrides.list_overrides(session=session, provider=args.provider)
    if args.json:
        out(json.dumps([v.as_json() for v in views], indent=2))
        return 0
    if not views:
        out("no price overrides; add one with `python -m tracker prices override add --help`")
        return 0

    def what(v: overrides.OverrideView) -> str:
        if v.kind == "discount":
            return f"{units.dec_str(v.discount_pct)}% off list"
        return ", ".join(
            f"{name.removesuffix('_price')} {value}"
            for name in overrides.PRICE_FIELDS
            if (value := getattr(v, name)) is not None
        )

    table(
        ("ID", "PROVIDER", "MODEL", "KIND", "FROM", "TO (EXCL.)", "PRICES (USD/M TOKENS)", "NOTE"),
        [
            (
                str(v.id),
                v.provider,
                v.model or "*",
                v.kind,
                v.valid_from.isoformat(),
                v.valid_to.isoformat() if v.valid_to else "open",
                what(v),
                (v.note or "")[:40],
            )
            for v in views
        ],
    )
    return 0


def cmd_override_remove(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.transaction() as session:
        view = overrides.remove_override(session=session, override_id=args.id, actor=CLI_ACTOR)
    out(f"removed override #{view.id} ({view.provider}/{view.model or '*'}); history keeps")
    out("its prices until you run `python -m tracker reprice` for those dates")
    return 0


def _check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise InvalidInput("--end is before --start")


# --- parser -----------------------------------------------------------------------------


def register(commands: Any) -> None:
    """Add the cost engine's commands to the top-level subparsers."""
    price = commands.add_parser("price", help="price a usage by hand (overrides apply)")
    price.add_argument("--provider", required=True, choices=list(PROVIDERS))
    price.add_argument("--model", required=True)
    price.add_argument("--date", required=True, type=parse_date, help="usage day, YYYY-MM-DD (UTC)")
    for flag, what in (
        ("--input-tokens", "uncached input tokens"),
        ("--cached-tokens", "cache-read input tokens"),
        ("--cache-write-tokens", "5-minute cache-write tokens"),
        ("--cache-write-1h-tokens", "1-hour cache-write tokens"),
        ("--output-tokens", "output tokens (reasoning included)"),
        ("--requests", "requests (for per-request prices)"),
    ):
        price.add_argument(flag, type=whole_number, default=0, metavar="N", help=what)
    price.add_argument("--batch", action="store_true", help="batch API usage")
    price.add_argument("--service-tier", help="e.g. priority or flex (default: standard)")
    price.add_argument("--json", action="store_true")
    price.set_defaults(handler=cmd_price)

    rec = commands.add_parser("reconcile", help="billed vs estimated cost per day and provider")
    rec.add_argument("--start", required=True, type=parse_date)
    rec.add_argument("--end", required=True, type=parse_date, help="inclusive")
    rec.add_argument("--json", action="store_true")
    rec.set_defaults(handler=cmd_reconcile)

    rep = commands.add_parser(
        "reprice",
        help="re-price stored usage (each day at its own dated prices, with current overrides)",
    )
    rep.add_argument("--start", required=True, type=parse_date)
    rep.add_argument("--end", required=True, type=parse_date, help="inclusive")
    rep.add_argument("--dry-run", action="store_true", help="show the per-day change only")
    rep.add_argument("--json", action="store_true")
    rep.set_defaults(handler=cmd_reprice)

    prices = commands.add_parser("prices", help="organisation prices").add_subparsers(
        dest="prices_command", required=True
    )
    override = prices.add_parser("override", help="custom prices and discounts").add_subparsers(
        dest="override_command", required=True
    )
    add = override.add_parser(
        "add",
        help="add a custom model price (USD per million tokens) or a % discount",
        description="Give --discount PCT for a discount on the list price (of --model, or of "
        "every model of the provider), or prices per million tokens for --model. "
        "Explicit prices win over discounts, discounts over list prices.",
    )
    add.add_argument("--provider", required=True, choices=list(PROVIDERS))
    add.add_argument("--model", help="model name (omit for every model: discounts only)")
    add.add_argument("--from", dest="valid_from", required=True, type=parse_date, metavar="DATE")
    add.add_argument(
        "--to", dest="valid_to", type=parse_date, metavar="DATE", help="exclusive (default: open)"
    )
    add.add_argument("--discount", metavar="PCT", help="percent off the list price")
    add.add_argument("--input-price", metavar="USD")
    add.add_argument("--cached-input-price", metavar="USD")
    add.add_argument("--cache-write-price", metavar="USD", help="5-minute cache writes")
    add.add_argument("--cache-write-1h-price", metavar="USD", help="1-hour cache writes")
    add.add_argument("--output-price", metavar="USD")
    add.add_argument("--request-price", metavar="USD", help="per request")
    add.add_argument("--note")
    add.set_defaults(handler=cmd_override_add)
    lst = override.add_parser("list", help="list overrides")
    lst.add_argument("--provider", choices=list(PROVIDERS))
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_override_list)
    rm = override.add_parser("remove", help="remove an override (history is not re-priced)")
    rm.add_argument("id", type=int)
    rm.set_defaults(handler=cmd_override_remove)
