"""Price stored usage: fill `usage_records.estimated_cost` and `pricing_status` for a range.

Runs right after a sync or on request (`reprice`), then lets `tracker.costs.spend` decide
`cost_source` in the same write.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, Numeric, String, Table, select, text
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tracker.core.db import COPY_NULL, copy_in
from tracker.core.errors import InvalidInput
from tracker.costs.allocate import allocate
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import EstimateSummary
from tracker.costs.spend import billed_days, cost_source_of
from tracker.models import IMPORT_USAGE_TYPE, Account, CostSource, Service, UsageRecord
from tracker.models.usage_kinds import from_json

log = logging.getLogger(__name__)

_tmp_meta = MetaData()
_TMP = Table(
    "tmp_pricing_updates",
    _tmp_meta,
    Column("id", BigInteger, primary_key=True),
    Column("estimated_cost", Numeric(18, 6)),
    Column("pricing_status", String(16)),
    Column("cost_source", String(16)),
    prefixes=["TEMPORARY"],
)
# Rows read and priced per round trip: at 50,000 the worker's peak RSS in a 1M-row back-fill
# was 296 MB (target < 300), at 20,000 it is 220 MB, at the same speed.
CHUNK_SIZE = 20_000


def row_outcome(
    book: PriceBook,
    *,
    provider: str,
    model: str,
    day: dt.date,
    usage_type: str,
    service_tier: str,
    tokens: tuple[int, int, int, int, int],
    requests: int,
    other_units: Decimal,
    billed: bool = False,
    other_unit_name: str | None = None,
    details: dict[str, int] | None = None,
) -> tuple[Decimal | None, str]:
    """(estimated_cost rounded for storage or None, pricing_status) for one stored row."""
    return book.outcome(
        provider,
        model,
        day,
        usage_type,
        service_tier,
        *tokens,
        requests,
        other_units,
        Decimal(0) if billed else None,
        other_unit_name,
        details,
    )


def estimate_range(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    account_ids: list[int] | None = None,
    book: PriceBook | None = None,
) -> EstimateSummary:
    """Price every usage row with `start <= day <= end` (all accounts if `account_ids` is None).

    Sets `estimated_cost` (NULL when unpriceable, never $0 for an unknown model),
    `pricing_status`, then `cost_source` by the rule of `tracker.costs.spend`; writes only rows
    that change, in the caller's transaction. `billed_cost` is never touched.
    """
    return price_stored(
        session=session, start=start, end=end, account_ids=account_ids, book=book, write=True
    )


OnRow = Callable[[dt.date, Decimal | None, Decimal | None, str, str], None]


def price_stored(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    account_ids: list[int] | None,
    book: PriceBook | None,
    write: bool,
    on_row: OnRow | None = None,
) -> EstimateSummary:
    """Price stored rows in one streamed read; write changes if `write`; tell `on_row`.

    `on_row(day, old_cost, new_cost, old_status, new_status)` sees every row. Changed rows
    are staged in a temporary table while reading (never the table being read) and applied
    with one UPDATE ... FROM at the end.
    """
    if end < start:
        raise InvalidInput("the end date is before the start date")
    started = time.perf_counter()
    session.flush()
    book = book or PriceBook.from_db(session)
    summary = EstimateSummary()
    if account_ids is not None and not account_ids:
        return summary
    u = UsageRecord
    stmt = (
        select(
            u.id,
            Service.name,
            u.model,
            u.day,
            u.usage_type,
            u.service_tier,
            u.input_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.cache_write_1h_tokens,
            u.output_tokens,
            u.requests,
            u.other_units,
            u.billed_cost,
            u.estimated_cost,
            u.pricing_status,
            u.cost_source,
            u.account_id,
            u.other_unit_name,
            u.usage_details,
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= start, u.day <= end)
    )
    if account_ids is not None:
        stmt = stmt.where(u.account_id.in_(account_ids))

    unpriced: dict[tuple[str, str], int] = defaultdict(int)
    by_status: Counter[str] = summary.by_status
    connection = session.connection()  # Core rows: no ORM overhead per row
    staged = False
    outcome = book.outcome
    # Which amount counts depends on the whole account-day (tracker.costs.spend): know the billed
    # days first, so the source is written with the estimate in one pass.
    days_billed = billed_days(connection, start=start, end=end, account_ids=account_ids)
    # Streamed (a server-side cursor on PostgreSQL): bounded memory for a million rows.
    result = connection.execute(stmt.execution_options(stream_results=True, yield_per=CHUNK_SIZE))
    for partition in result.partitions():
        pending: list[tuple[Any, ...]] = []
        rows: list[Any] = list(partition)
        for row in rows:
            rid, provider, model, day, usage_type, tier, i, c, w, w1, o, n, other, billed = row[:14]
            old_cost, old_status, old_source, account_id, unit_name, stored = row[14:]
            details = from_json(stored) if stored else None
            cost, status = outcome(
                provider,
                model,
                day,
                usage_type,
                tier,
                i,
                c,
                w,
                w1,
                o,
                n,
                other,
                billed,
                unit_name,
                details,
            )
            by_status[status] += 1
            if status == "unpriced":
                unpriced[(provider, model)] += (i or 0) + (c or 0) + (w or 0) + (w1 or 0) + (o or 0)
            if on_row is not None:
                on_row(day, old_cost, cost, old_status, status)
            source = cost_source_of(
                billed,
                cost,
                (account_id, day) in days_billed,
                imported=usage_type == IMPORT_USAGE_TYPE,
            )
            if source == CostSource.BILLED and old_source == CostSource.COVERED:
                source = old_source  # a line item allocated to its usage (costs.allocate)
            if cost != old_cost or status != old_status or source != old_source:
                pending.append((rid, cost, status, source))
        summary.rows += len(rows)
        summary.updated += len(pending)
        if write and pending:
            _stage(connection, pending, create=not staged)
            staged = True
    if staged:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"ANALYZE {_TMP.name}"))  # temp tables have no stats
        connection.execute(
            text(
                "UPDATE usage_records SET estimated_cost = t.estimated_cost, "
                "pricing_status = t.pricing_status, cost_source = t.cost_source "
                f"FROM {_TMP.name} AS t WHERE usage_records.id = t.id"
            )
        )
        connection.execute(text(f"DROP TABLE {_TMP.name}"))
        _expire_usage(session)
    if write:
        # Estimates weigh the split of the day's bills: allocate after every pricing pass.
        allocate(session=session, start=start, end=end, account_ids=account_ids)
    summary.unpriced_tokens = dict(unpriced)
    summary.seconds = time.perf_counter() - started
    log.info(
        "priced %d usage rows (%d %s) in %.2fs: %s",
        summary.rows,
        summary.updated,
        "changed" if write else "would change",
        summary.seconds,
        dict(summary.by_status),
    )
    return summary


def _stage(connection: Connection, pending: list[tuple[Any, ...]], *, create: bool) -> None:
    """Add changed rows (id, estimated_cost, pricing_status, cost_source) to the temp table.

    The driver's own bulk insert is used where there is one: row-by-row statements are too
    slow for a million rows.
    """
    if create:
        _TMP.create(connection, checkfirst=False)
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        # COPY is several times faster than multi-row INSERTs for a million rows. Values
        # are ids, decimals and fixed status words: nothing needs escaping.
        buffer = io.StringIO(
            "".join(
                f"{r}\t{COPY_NULL if c is None else c}\t{st}\t{src}\n" for r, c, st, src in pending
            )
        )
        copy_in(connection, f"COPY {_TMP.name} FROM STDIN", buffer)
    elif dialect.name == "sqlite":
        # sqlite3 cannot bind Decimal; the NUMERIC column converts the text exactly as
        # SQLAlchemy's own binding would.
        connection.exec_driver_sql(
            f"INSERT INTO {_TMP.name} VALUES (?, ?, ?, ?)",
            [(r, None if c is None else str(c), st, src) for r, c, st, src in pending],
        )
    else:
        keys = ("id", "estimated_cost", "pricing_status", "cost_source")
        connection.execute(sa_insert(_TMP), [dict(zip(keys, p, strict=True)) for p in pending])


def _expire_usage(session: Session) -> None:
    # The UPDATE went around the ORM: make loaded rows re-read their priced columns.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, UsageRecord):
            session.expire(obj, ["estimated_cost", "pricing_status", "cost_source"])
