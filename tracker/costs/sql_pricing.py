"""The price book's per-row rule as one SQL expression, for pricing rows set-based on PostgreSQL.

`PriceBook.outcome` prices one row in Python; a million-row import cannot afford a Python
call per row. Here the book resolves each distinct (provider, model, day, tier) once, the
unit prices go to a temporary table (`stage_unit_prices`), and `outcome_sql` prices every
row in the statement that writes it. Both follow the same rule (exact decimal arithmetic,
rounded half up to 6 places); `tests/costs/test_sql_pricing.py` checks that the Python
pricer finds nothing to change after the SQL one ran.

PostgreSQL only: SQLite keeps NUMERIC as a double, so its products would not be exact.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal

from sqlalchemy.engine import Connection

from tracker.core.db import copy_in, copy_text
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import NO_ESTIMATE_USAGE_TYPES, TOKEN_KINDS

UNIT_PRICES = "tmp_unit_prices"
# The row columns `outcome_sql` reads (in TOKEN_KINDS order for the token counts).
# The price kinds a row of token columns and requests uses.
ROW_KINDS = (*TOKEN_KINDS, "request")
TOKEN_COLUMNS_BY_KIND = {
    "input": "input_tokens",
    "cached_input": "cached_input_tokens",
    "cache_write": "cache_write_tokens",
    "cache_write_1h": "cache_write_1h_tokens",
    "output": "output_tokens",
}


def stage_unit_prices(
    connection: Connection, book: PriceBook, keys: Iterable[tuple[str, str, dt.date, str]]
) -> None:
    """Resolve each (provider, model, day, tier) once and COPY its unit prices (USD per single
    token, per request) into a temporary table that lives until the transaction ends."""
    price_columns = ", ".join(f"p_{k} numeric" for k in ROW_KINDS)
    flag_columns = ", ".join(f"{f}_{k} boolean" for f in ("v", "t") for k in ROW_KINDS)
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {UNIT_PRICES} (provider text, model text, day date, "
        f"tier text, {price_columns}, priced boolean, approximate boolean, {flag_columns}, "
        "tier_start bigint, sized boolean, PRIMARY KEY (provider, model, day, tier)) "
        "ON COMMIT DROP"
    )
    lines = []
    for provider, model, day, tier in keys:
        resolved = book.resolve(provider, model, day, tier)
        prices = resolved.prices
        units: list[Decimal | None] = (
            [None] * (len(TOKEN_KINDS) + 1)
            if prices is None
            else [None if (p := getattr(prices, k)) is None else p.scaleb(-6) for k in TOKEN_KINDS]
            + [prices.request]
        )
        fields = [
            provider,
            model,
            day.isoformat(),
            tier,
            *(None if u is None else format(u, "f") for u in units),
            "t" if prices is not None else "f",
            "t" if resolved.approximate else "f",
            *("t" if k in resolved.varying else "f" for k in ROW_KINDS),
            *("t" if k in resolved.tiered else "f" for k in ROW_KINDS),
            None if resolved.tier_start is None else str(resolved.tier_start),
            "t" if resolved.sized_requests else "f",
        ]
        lines.append("\t".join(copy_text(f) for f in fields) + "\n")
    copy_in(connection, f"COPY {UNIT_PRICES} FROM STDIN", io.StringIO("".join(lines)))
    connection.exec_driver_sql(f"ANALYZE {UNIT_PRICES}")


def outcome_sql(row: Mapping[str, str], prices: str = "p") -> tuple[str, str]:
    """(estimated_cost, pricing_status) SQL for a row whose columns are the expressions in
    `row` (keys: the token columns, requests, other_units, billed_cost, usage_type), joined
    to `UNIT_PRICES` as `prices` (LEFT JOIN: no match prices nothing).

    The rule of `PriceBook.outcome` for rows without usage details or named units (what
    the CSV fast path writes): billed-only line items (`cost:...`) and fees have no
    estimate; a row with no tokens is an empty bucket, unless it has requests (priced per
    request) or other units (no price: unpriced); a token kind without a price leaves the
    row unpriced; other units make an estimate approximate, and so does a price that could
    have been another (`Resolved.approximate_for`).
    """
    counts = {k: f"coalesce({row[c]}, 0)" for k, c in TOKEN_COLUMNS_BY_KIND.items()}
    requests = f"coalesce({row['requests']}, 0)"
    other = f"coalesce({row['other_units']}, 0)"
    usage_type = row["usage_type"]
    no_tokens = " AND ".join(f"{c} = 0" for c in counts.values())
    fees = ", ".join(f"'{t}'" for t in sorted(NO_ESTIMATE_USAGE_TYPES))
    missing_price = " OR ".join(
        f"({counts[k]} > 0 AND {prices}.p_{k} IS NULL)" for k in TOKEN_KINDS
    )
    status = (
        f"CASE WHEN {usage_type} LIKE 'cost:%' THEN 'not_applicable' "
        f"WHEN {no_tokens} AND ({row['billed_cost']} IS NOT NULL OR {usage_type} IN ({fees})) "
        "THEN 'not_applicable' "
        f"WHEN {no_tokens} AND {other} <> 0 THEN 'unpriced' "
        f"WHEN {no_tokens} AND {requests} = 0 THEN 'not_applicable' "
        f"WHEN {prices}.priced IS NOT TRUE OR {missing_price} THEN 'unpriced' "
        f"WHEN {_could_differ(counts, requests, prices)} OR {other} <> 0 THEN 'approximate' "
        "ELSE 'priced' END"
    )
    total = " + ".join(f"{counts[k]} * coalesce({prices}.p_{k}, 0)" for k in TOKEN_KINDS)
    total += f" + {requests} * coalesce({prices}.p_request, 0)"
    # round() on NUMERIC rounds half away from zero: half up, as amounts are never negative.
    cost = f"CASE WHEN ({status}) IN ('priced', 'approximate') THEN round({total}, 6) END"
    return cost, status


def _could_differ(counts: Mapping[str, str], requests: str, prices: str) -> str:
    """`Resolved.approximate_for` in SQL, for the token kinds and requests."""
    used = {**counts, "request": requests}
    varying = " OR ".join(f"({used[k]} > 0 AND {prices}.v_{k})" for k in ROW_KINDS)
    tiered = " OR ".join(f"({used[k]} > 0 AND {prices}.t_{k})" for k in ROW_KINDS)
    prompt = " + ".join(
        counts[k] for k in ("input", "cached_input", "cache_write", "cache_write_1h")
    )
    crossed = (
        f"({prices}.tier_start IS NOT NULL AND ({tiered}) "
        f"AND {prompt} - greatest({requests} - 1, 0) > {prices}.tier_start)"
    )
    return (
        f"({prices}.approximate OR {varying} OR {crossed} OR ({prices}.sized AND {requests} > 0))"
    )
