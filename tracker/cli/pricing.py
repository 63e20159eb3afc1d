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
from tracker.costs import overrides, price_diff, pricebook, reconcile, reprice
from tracker.costs.prices import PRICE_UNIT
from tracker.models.usage_kinds import SEARCH_CONTEXT_SIZES
from tracker.providers.registry import PROVIDERS


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.6f}"


def _share(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


# --- price ------------------------------------------------------------------------------


# `price` options for usage details: (flag, detail kind, help). Token parts are given apart
# from --input-tokens, --cached-tokens and --output-tokens (which then count text only).
DETAIL_OPTIONS = (
    ("--input-audio-tokens", "input_audio_tokens", "uncached audio input tokens"),
    ("--cached-audio-tokens", "cached_audio_tokens", "cache-read audio input tokens"),
    ("--output-audio-tokens", "output_audio_tokens", "audio output tokens"),
    ("--input-image-tokens", "input_image_tokens", "uncached image input tokens"),
    ("--cached-image-tokens", "cached_image_tokens", "cache-read image input tokens"),
    ("--output-image-tokens", "output_image_tokens", "image output tokens"),
    ("--reasoning-tokens", "reasoning_tokens", "reasoning tokens (where billed apart)"),
    ("--web-search-calls", "web_search_calls", "web search tool calls"),
    ("--file-search-calls", "file_search_calls", "file search tool calls"),
    ("--code-interpreter-sessions", "code_interpreter_sessions", "code interpreter sessions"),
    ("--images", "images", "images (per-image prices)"),
    ("--audio-seconds", "audio_seconds", "seconds of audio (per-hour prices)"),
    ("--characters", "characters", "characters (speech)"),
)


def cmd_price(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        book = pricebook.PriceBook.from_db(session)
    details = {kind: getattr(args, kind) for _, kind, _ in DETAIL_OPTIONS}
    if args.search_context_size:
        details[f"requests_{args.search_context_size}_context"] = args.requests
    quote = pricebook.price_usage(
        provider=args.provider,
        model=args.model,
        day=args.date,
        # The command takes each kind apart; the book takes parts inside their column.
        input_tokens=args.input_tokens
        + details["input_audio_tokens"]
        + details["input_image_tokens"],
        cached_tokens=args.cached_tokens
        + details["cached_audio_tokens"]
        + details["cached_image_tokens"],
        cache_write_tokens=args.cache_write_tokens,
        cache_write_1h_tokens=args.cache_write_1h_tokens,
        output_tokens=args.output_tokens
        + details["output_audio_tokens"]
        + details["output_image_tokens"]
        + details["reasoning_tokens"],
        requests=args.requests,
        batch=args.batch,
        service_tier=args.service_tier or "",
        details={k: v for k, v in details.items() if v},
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
        out("unit prices, USD: " + "; ".join(quote.unit_prices.described()))
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


# --- prices diff ------------------------------------------------------------------------


def cmd_prices_diff(args: argparse.Namespace, ctx: Context) -> int:
    with ctx.reading() as session:
        report = price_diff.price_diff(session=session)
    if args.json:
        out(json.dumps(report.as_json(), indent=2))
        return 0
    out(
        f"genai-prices {report.catalog_version} against the price book (catalog + corrections "
        f"+ overrides), for the {report.models} model(s) and service tier(s) in usage"
    )
    if report.differences:
        out()
        out("the book prices these differently from the catalog (BOOK - CATALOG: what that")
        out("price adds to the estimates of those days; a catalog upgrade changes nothing")
        out("here while the rule stays):")
        table(
            (
                "PROVIDER",
                "MODEL",
                "TIER",
                "FROM",
                "TO",
                "PRICE",
                "CATALOG",
                "BOOK",
                "BOOK - CATALOG",
                "BECAUSE",
            ),
            [
                (
                    d.provider,
                    d.model,
                    d.tier or "standard",
                    d.first_day.isoformat(),
                    d.last_day.isoformat(),
                    f"{d.kind.replace('_', ' ')} ({PRICE_UNIT[d.kind]})",
                    units.dec_str(d.catalog) or "none",
                    units.dec_str(d.book) or "none",
                    _money(d.estimate_change),
                    d.because,
                )
                for d in report.differences
            ],
        )
    else:
        out("the book prices every used model as the catalog does")
    if report.redundant:
        out()
        out("corrections the installed catalog already agrees with on every used day")
        out("(remove them from price_corrections.json once checked):")
        for line in report.redundant:
            out(f"  {line}")
    if report.unknown:
        out()
        out("models the catalog does not know:")
        table(
            ("PROVIDER", "MODEL", "FIRST DAY", "LAST DAY", "THE BOOK"),
            [
                (u.provider, u.model, u.first_day.isoformat(), u.last_day.isoformat(), u.book)
                for u in report.unknown
            ],
        )
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
            extra_prices=dict(args.price or []),
            note=args.note,
            source=args.source,
            checked_on=args.checked_on,
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
            [
                f"{name.removesuffix('_price')} {value}"
                for name in overrides.PRICE_FIELDS
                if (value := getattr(v, name)) is not None
            ]
            + [f"{k} {units.dec_str(value)}" for k, value in v.extra_prices.items()]
        )

    table(
        ("ID", "PROVIDER", "MODEL", "KIND", "FROM", "TO (EXCL.)", "PRICES (USD)", "SOURCE", "NOTE"),
        [
            (
                str(v.id),
                v.provider,
                v.model or "*",
                v.kind,
                v.valid_from.isoformat(),
                v.valid_to.isoformat() if v.valid_to else "open",
                what(v),
                f"{v.source or '-'}{f' ({v.checked_on})' if v.checked_on else ''}"[:50],
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
        ("--output-tokens", "output tokens (reasoning included unless given apart)"),
        ("--requests", "requests (for per-request prices)"),
    ):
        price.add_argument(flag, type=whole_number, default=0, metavar="N", help=what)
    for flag, kind, what in DETAIL_OPTIONS:
        price.add_argument(flag, dest=kind, type=whole_number, default=0, metavar="N", help=what)
    price.add_argument(
        "--search-context-size",
        choices=SEARCH_CONTEXT_SIZES,
        help="the search context size of the --requests (Perplexity's per-request fee)",
    )
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

    prices = commands.add_parser(
        "prices", help="the price book: organisation prices, catalog differences"
    ).add_subparsers(dest="prices_command", required=True)
    diff = prices.add_parser(
        "diff",
        help="where the book (corrections, overrides) prices used models unlike the catalog",
        description="Compare the installed genai-prices catalog with the price book for the "
        "models in usage: the prices that differ and why, what they change in the estimates, "
        "corrections the catalog has caught up with, and models it does not know.",
    )
    diff.add_argument("--json", action="store_true")
    diff.set_defaults(handler=cmd_prices_diff)
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
    add.add_argument(
        "--price",
        nargs=2,
        action="append",
        metavar=("KIND", "USD"),
        help="a price of another kind, e.g. --price input_audio 32 (per million tokens) or "
        "--price code_interpreter 0.03 (per session); see docs/pricing.md",
    )
    add.add_argument("--source", help="where the price comes from: a contract, an invoice, a URL")
    add.add_argument(
        "--checked-on", type=parse_date, metavar="DATE", help="when the price was last checked"
    )
    add.add_argument("--note")
    add.set_defaults(handler=cmd_override_add)
    lst = override.add_parser("list", help="list overrides")
    lst.add_argument("--provider", choices=list(PROVIDERS))
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=cmd_override_list)
    rm = override.add_parser("remove", help="remove an override (history is not re-priced)")
    rm.add_argument("id", type=int)
    rm.set_defaults(handler=cmd_override_remove)
