"""The bulk writer: upsert usage rows on their natural key, in batches, in the caller's transaction.

PostgreSQL: COPY into a temporary staging table, then one INSERT ... ON CONFLICT DO UPDATE
per batch. SQLite: executemany with the same upsert. Rows with the same natural key inside one
call are added up (e.g. OpenRouter's several endpoints of one model); a stored row is replaced.
Used by the sync and by CSV imports.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, column, func, select, table, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tracker.core.db import COPY_NULL, copy_in, copy_text
from tracker.core.errors import TrackerError
from tracker.models import (
    TOKEN_COLUMNS,
    USAGE_NATURAL_KEY,
    CostSource,
    UsageLabelMonthly,
    UsageRecord,
)
from tracker.models.usage_kinds import added, as_json
from tracker.providers.base import (
    UsageRow,
)

log = logging.getLogger(__name__)


BATCH_SIZE = 5000  # rows per COPY + INSERT ... ON CONFLICT (or executemany on SQLite)


SUMMED = (*TOKEN_COLUMNS, "requests", "other_units")


def upsert_rows(
    session: Session,
    account_id: int,
    rows: Iterable[UsageRow],
    *,
    stamp: dt.datetime,
    days: tuple[dt.date, dt.date] | None = None,
    batch_size: int = BATCH_SIZE,
) -> None:
    """Upsert rows on the natural key in batches, streaming; rows of this pass (same `stamp`)
    with one key are added up, rows of earlier passes are replaced.

    With `days`, rows outside that inclusive range are dropped: the pass could not replace
    them consistently (a provider that pads its answer with other days).
    """
    batch: dict[tuple[Any, ...], UsageRow] = {}
    for row in rows:
        if days is not None and not days[0] <= row.day <= days[1]:
            log.debug("dropping a row for %s outside %s..%s", row.day, days[0], days[1])
            continue
        key = row.natural_key
        batch[key] = merge_rows(batch[key], row) if key in batch else row
        if len(batch) >= batch_size:
            _write_batch(session, account_id, list(batch.values()), stamp)
            batch.clear()
    if batch:
        _write_batch(session, account_id, list(batch.values()), stamp)


def merge_rows(a: UsageRow, b: UsageRow) -> UsageRow:
    """Two rows with one natural key, added up (names and currency: the first one's)."""
    billed: Decimal | None = None
    if a.billed_cost is not None or b.billed_cost is not None:
        billed = (a.billed_cost or Decimal(0)) + (b.billed_cost or Decimal(0))
    listed: Decimal | None = None
    if a.list_cost is not None or b.list_cost is not None:
        listed = (a.list_cost or Decimal(0)) + (b.list_cost or Decimal(0))
    return UsageRow(
        day=a.day,
        model=a.model,
        project_id=a.project_id,
        api_key_id=a.api_key_id,
        user_id=a.user_id,
        usage_type=a.usage_type,
        service_tier=a.service_tier,
        project_name=a.project_name or b.project_name,
        api_key_name=a.api_key_name or b.api_key_name,
        user_name=a.user_name or b.user_name,
        input_tokens=a.input_tokens + b.input_tokens,
        cached_input_tokens=a.cached_input_tokens + b.cached_input_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        cache_write_1h_tokens=a.cache_write_1h_tokens + b.cache_write_1h_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        requests=a.requests + b.requests,
        other_units=a.other_units + b.other_units,
        other_unit_name=a.other_unit_name or b.other_unit_name,
        billed_cost=billed,
        currency=a.currency,
        details=added(a.details, b.details),
        list_cost=listed,
    )


def _write_batch(
    session: Session, account_id: int, rows: Sequence[UsageRow], stamp: dt.datetime
) -> None:
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name not in ("postgresql", "sqlite"):
        raise TrackerError(f"unsupported database {dialect.name!r}")
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        # COPY into a staging table and one INSERT ... SELECT ... ON CONFLICT per batch: a
        # multi-row VALUES statement spends most of its time being built and compiled
        # (hundreds of rows/s at 500 rows a batch), COPY moves tens of thousands a second.
        _copy_to_stage(connection, account_id, rows, stamp)
        connection.execute(_pg_upsert_from_stage())
        return
    values = [
        (
            account_id,
            r.day,
            r.model,
            r.project_id,
            r.api_key_id,
            r.user_id,
            r.usage_type,
            r.service_tier,
            r.project_name,
            r.api_key_name,
            r.user_name,
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.cache_write_1h_tokens,
            r.output_tokens,
            r.requests,
            r.other_units,
            r.other_unit_name,
            as_json(r.details),
            r.billed_cost,
            r.list_cost,
            None,  # estimated_cost: priced after the upsert
            r.currency,
            CostSource.BILLED if r.billed_cost is not None else CostSource.NONE,
            "pending",
            stamp,
        )
        for r in rows
    ]
    # One compiled single-row statement, run with executemany (cached by SQLAlchemy).
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(UsageRecord)
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=list(USAGE_NATURAL_KEY),
            set_=_upsert_set(stmt, dialect.name == "postgresql"),
        ),
        [dict(zip(_WRITTEN, v, strict=True)) for v in values],
    )


# The columns a sync writes, in the staging table's (and the COPY's) order.
_WRITTEN = (
    *USAGE_NATURAL_KEY,
    "project_name",
    "api_key_name",
    "user_name",
    *SUMMED,
    "other_unit_name",
    "usage_details",
    "billed_cost",
    "list_cost",
    "estimated_cost",
    "currency",
    "cost_source",
    "pricing_status",
    "synced_at",
)
_STAGE = "tmp_usage_upsert"
_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r]")


def _copy_line(account_id: int, r: UsageRow, tail: str) -> str:
    """One row in COPY text format, in `_WRITTEN` order (`tail`: the columns every row of
    the batch shares)."""
    texts = (
        r.model,
        r.project_id,
        r.api_key_id,
        r.user_id,
        r.usage_type,
        r.service_tier,
        r.project_name,
        r.api_key_name,
        r.user_name,
        r.other_unit_name,
        r.currency,
    )
    if _NEEDS_ESCAPE.search("".join(t for t in texts if t)):
        (
            model,
            project_id,
            api_key_id,
            user_id,
            usage_type,
            tier,
            project_name,
            key_name,
            user_name,
            unit_name,
            currency,
        ) = map(copy_text, texts)
    else:
        model, project_id, api_key_id, user_id, usage_type, tier, currency = (
            r.model,
            r.project_id,
            r.api_key_id,
            r.user_id,
            r.usage_type,
            r.service_tier,
            r.currency,
        )
        project_name = COPY_NULL if r.project_name is None else r.project_name
        key_name = COPY_NULL if r.api_key_name is None else r.api_key_name
        user_name = COPY_NULL if r.user_name is None else r.user_name
        unit_name = COPY_NULL if r.other_unit_name is None else r.other_unit_name
    # JSON of kind names and whole numbers: nothing in it needs COPY's escaping.
    details = json.dumps(dict(r.details), separators=(",", ":")) if r.details else COPY_NULL
    billed, source = (
        (COPY_NULL, CostSource.NONE)
        if r.billed_cost is None
        else (r.billed_cost, CostSource.BILLED)
    )
    listed = COPY_NULL if r.list_cost is None else r.list_cost
    return (
        f"{account_id}\t{r.day.isoformat()}\t{model}\t{project_id}\t{api_key_id}\t{user_id}\t"
        f"{usage_type}\t{tier}\t{project_name}\t{key_name}\t{user_name}\t{r.input_tokens}\t"
        f"{r.cached_input_tokens}\t{r.cache_write_tokens}\t{r.cache_write_1h_tokens}\t"
        f"{r.output_tokens}\t{r.requests}\t{r.other_units}\t{unit_name}\t{details}\t{billed}\t"
        f"{listed}\t{COPY_NULL}\t{currency}\t{source}{tail}"
    )


def _copy_to_stage(
    connection: Any, account_id: int, rows: Sequence[UsageRow], stamp: dt.datetime
) -> None:
    # The stage has usage_records' column types and no constraints; it lives until the
    # transaction ends (one per sync pass), emptied before each batch.
    connection.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ON COMMIT DROP AS "
        f"SELECT {', '.join(_WRITTEN)} FROM usage_records WITH NO DATA"
    )
    connection.exec_driver_sql(f"TRUNCATE {_STAGE}")
    tail = f"\tpending\t{stamp.isoformat()}\n"
    buffer = io.StringIO("".join([_copy_line(account_id, r, tail) for r in rows]))
    copy_in(connection, f"COPY {_STAGE} ({', '.join(_WRITTEN)}) FROM STDIN", buffer)


@functools.cache
def _pg_upsert_from_stage() -> Any:
    stage = table(_STAGE, *[column(name) for name in _WRITTEN])
    stmt = postgresql.insert(UsageRecord).from_select(
        list(_WRITTEN), select(*[stage.c[name] for name in _WRITTEN])
    )
    return stmt.on_conflict_do_update(
        index_elements=list(USAGE_NATURAL_KEY), set_=_upsert_set(stmt, pg=True)
    )


def _upsert_set(stmt: Any, pg: bool) -> dict[str, Any]:
    """The ON CONFLICT update: a row of this pass (same stamp) adds up, an older one is
    replaced; the estimate is cleared for re-pricing."""
    old, new = UsageRecord.__table__.c, stmt.excluded
    same_pass = old.synced_at == new.synced_at
    billed = case(
        (
            same_pass,
            case(
                (and_(old.billed_cost.is_(None), new.billed_cost.is_(None)), None),
                else_=func.coalesce(old.billed_cost, 0) + func.coalesce(new.billed_cost, 0),
            ),
        ),
        else_=new.billed_cost,
    )
    listed = case(
        (
            same_pass,
            case(
                (and_(old.list_cost.is_(None), new.list_cost.is_(None)), None),
                else_=func.coalesce(old.list_cost, 0) + func.coalesce(new.list_cost, 0),
            ),
        ),
        else_=new.list_cost,
    )
    set_: dict[str, Any] = {
        name: case((same_pass, old[name] + new[name]), else_=new[name]) for name in SUMMED
    }
    set_.update(
        billed_cost=billed,
        list_cost=listed,
        cost_source=case((billed.is_(None), CostSource.NONE), else_=CostSource.BILLED),
        estimated_cost=None,
        pricing_status="pending",
        project_name=func.coalesce(new.project_name, old.project_name),
        api_key_name=func.coalesce(new.api_key_name, old.api_key_name),
        user_name=func.coalesce(new.user_name, old.user_name),
        other_unit_name=func.coalesce(new.other_unit_name, old.other_unit_name),
        usage_details=case((same_pass, _added_details(pg)), else_=new.usage_details),
        currency=new.currency,
        synced_at=new.synced_at,
    )
    return set_


def _added_details(pg: bool) -> Any:
    """Two rows' usage details added up in SQL (a key met again in a later batch of one
    pass): each kind's counts summed; one row's when the other has none."""
    each = "json_each_text" if pg else "json_each"
    group = "json_object_agg" if pg else "json_group_object"
    total = "sum(CAST(value AS bigint))" if pg else "sum(value)"
    old, new = "usage_records.usage_details", "excluded.usage_details"
    return text(
        f"CASE WHEN {old} IS NULL THEN {new} WHEN {new} IS NULL THEN {old} ELSE "
        f"(SELECT {group}(key, total) FROM (SELECT key, {total} AS total FROM "
        f"(SELECT key, value FROM {each}({old}) UNION ALL "
        f"SELECT key, value FROM {each}({new})) AS parts GROUP BY key) AS sums) END"
    )


# The names a provider reports beside its ids: kind (as in usage_labels) -> (id, name) columns.
NAMED = {
    "project": ("project_id", "project_name"),
    "api_key": ("api_key_id", "api_key_name"),
    "user": ("user_id", "user_name"),
}


def reported_names(rows: Iterable[UsageRow], into: dict[str, dict[str, str]]) -> Iterator[UsageRow]:
    """Pass `rows` through, noting into `into[kind][id]` each name they carry."""
    for row in rows:
        for kind, (ident, name) in NAMED.items():
            value, key = getattr(row, name), getattr(row, ident)
            if value and key:
                into.setdefault(kind, {})[key] = value
        yield row


def rename_earlier(session: Session, account_id: int, names: dict[str, dict[str, str]]) -> int:
    """Give the account's rows of every day the names a pass reported (a renamed project,
    key or user reads the same on old days as on new ones); returns the rows changed.

    Which ids have another name stored is read from the small monthly label rollup, so a pass
    that renamed nothing writes nothing (and the rollups' triggers only see renamed rows)."""
    changed = 0
    labels = UsageLabelMonthly
    for kind, seen in names.items():
        ident_column, name_column = NAMED[kind]
        stale = {
            ident
            for ident, label in session.execute(
                select(labels.ident, labels.label)
                .where(
                    labels.account_id == account_id,
                    labels.kind == kind,
                    labels.ident.in_(list(seen)),
                )
                .distinct()
            )
            if label != seen[ident]
        }
        for ident in sorted(stale):
            ident_col = getattr(UsageRecord, ident_column)
            name_col = getattr(UsageRecord, name_column)
            result = session.execute(
                update(UsageRecord)
                .where(
                    UsageRecord.account_id == account_id,
                    ident_col == ident,
                    name_col.is_distinct_from(seen[ident]),
                )
                .values({name_column: seen[ident]})
            )
            changed += result.rowcount or 0  # type: ignore[attr-defined]
    if changed:
        log.info("renamed %d earlier usage rows of account %s", changed, account_id)
    return changed
