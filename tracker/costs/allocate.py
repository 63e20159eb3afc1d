"""Allocation: every billed line item's amount lands on the usage rows it pays for.

Providers bill coarser than they meter: OpenAI's costs come per project, line item (model
and token kind) and key, Anthropic's per workspace and description, while usage comes per
model, project, key and tier. The usage rows of a billed account-day are `covered`
(`tracker.costs.spend`); here each billed line item of that day is split over the covered
usage rows that match every dimension the bill names (project, API key, model, service
tier), in proportion to their list-price estimates, or to their tokens where a row has no
estimate. Amounts are split in whole micro-dollars by largest remainder, so the pieces add up
exactly to the bill; ties go to the lower row id, so a re-run gives the same pieces.

The result is stored on the rows, and every total reads it through the spend rule:

- a covered usage row: `allocated_cost` (the sum of its pieces) and `allocation_method`
  (`exact` when a bill named it alone, else `proportional_estimate` or
  `proportional_tokens`: the least exact method of its pieces);
- an allocated line item: `covered`, `allocated_cost` 0 (its amount now sits on the usage),
  `allocation_method` as used to spread it;
- a line item no usage row matches: stays `billed` (it counts itself, its own line in every
  breakdown) with `allocation_method` `unallocated`.

`allocate` runs after every pricing pass (`tracker.costs.estimate`), in the same transaction
as the sync that wrote the bills, and only writes rows whose allocation changed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Column, MetaData, Numeric, String, Table, and_, or_, select, text
from sqlalchemy import insert as sa_insert
from sqlalchemy.orm import Session

from tracker.costs.prices import STANDARD_TIERS
from tracker.models import (
    IMPORT_USAGE_TYPE,
    LINE_ITEM,
    TOKEN_COLUMNS,
    AllocationMethod,
    CostSource,
    UsageRecord,
)

_u = UsageRecord
# The dimensions a bill may name; a usage row must match each one the bill names.
DIMENSIONS = ("project_id", "api_key_id", "model", "service_tier")
# Least exact last: a row with pieces of several methods reports the least exact one.
_ORDER = [
    AllocationMethod.EXACT,
    AllocationMethod.PROPORTIONAL_ESTIMATE,
    AllocationMethod.PROPORTIONAL_TOKENS,
]
_tmp_meta = MetaData()
_TMP = Table(
    "tmp_allocation_updates",
    _tmp_meta,
    Column("id", BigInteger, primary_key=True),
    Column("cost_source", String(16)),
    Column("allocated_cost", Numeric(18, 6)),
    Column("allocation_method", String(24)),
    prefixes=["TEMPORARY"],
)
_COLUMNS = (
    _u.id,
    _u.account_id,
    _u.day,
    _u.usage_type,
    *(_u.__table__.c[d] for d in DIMENSIONS),
    _u.billed_cost,
    _u.estimated_cost,
    *(_u.__table__.c[t] for t in TOKEN_COLUMNS),
    _u.cost_source,
    _u.allocated_cost,
    _u.allocation_method,
)
MICRO = Decimal("0.000001")


def allocate(
    *, session: Session, start: dt.date, end: dt.date, account_ids: Sequence[int] | None = None
) -> int:
    """Allocate the billed line items of days start..end (all accounts if None) over their
    covered usage rows; return how many rows changed."""
    if account_ids is not None and not account_ids:
        return 0
    session.flush()
    is_line_item = _u.usage_type.like(f"{LINE_ITEM}%")
    stmt = (
        select(*_COLUMNS)
        .where(
            _u.day >= start,
            _u.day <= end,
            _u.usage_type != IMPORT_USAGE_TYPE,
            or_(
                _u.cost_source == CostSource.COVERED,
                and_(is_line_item, _u.billed_cost.is_not(None)),
            ),
        )
        .order_by(_u.account_id, _u.day, _u.id)
    )
    if account_ids is not None:
        stmt = stmt.where(_u.account_id.in_(account_ids))
    connection = session.connection()
    rows = connection.execute(stmt.execution_options(stream_results=True, yield_per=20_000))
    changes: list[tuple[Any, ...]] = []
    staged = 0
    for _, day_rows in itertools.groupby(rows, key=lambda r: (r.account_id, r.day)):
        changes.extend(_changes(list(day_rows)))
        if len(changes) >= 20_000:
            staged += _stage(connection, changes, create=not staged)
            changes = []
    if changes:
        staged += _stage(connection, changes, create=not staged)
    if staged:
        connection.execute(
            text(
                "UPDATE usage_records SET cost_source = t.cost_source, "
                "allocated_cost = t.allocated_cost, allocation_method = t.allocation_method "
                f"FROM {_TMP.name} AS t WHERE usage_records.id = t.id"
            )
        )
        connection.execute(text(f"DROP TABLE {_TMP.name}"))
        for obj in list(session.identity_map.values()):
            if isinstance(obj, UsageRecord):
                session.expire(obj, ["cost_source", "allocated_cost", "allocation_method"])
    return staged


def _changes(rows: list[Any]) -> Iterable[tuple[Any, ...]]:
    """(id, cost_source, allocated_cost, allocation_method) for the rows of one account-day
    whose allocation differs from what is stored."""
    bills = [r for r in rows if r.usage_type.startswith(LINE_ITEM) and r.billed_cost is not None]
    usage = [r for r in rows if not r.usage_type.startswith(LINE_ITEM)]
    micros: dict[int, int] = defaultdict(int)
    methods: dict[int, AllocationMethod] = {}
    wanted: dict[int, tuple[str, Decimal | None, str | None]] = {}
    for bill in bills:
        matches = [u for u in usage if all(_matches(bill, u, d) for d in DIMENSIONS)]
        if not matches:
            wanted[bill.id] = (CostSource.BILLED, None, AllocationMethod.UNALLOCATED)
            continue
        method, weights = _weights(matches)
        amount = int((bill.billed_cost / MICRO).to_integral_value())
        for row, piece in zip(matches, split(amount, weights), strict=True):
            micros[row.id] += piece
            if _ORDER.index(method) >= _ORDER.index(methods.get(row.id, method)):
                methods[row.id] = method
        wanted[bill.id] = (CostSource.COVERED, Decimal(0).quantize(MICRO), method)
    for row in usage:
        if row.id in methods:
            wanted[row.id] = (
                CostSource.COVERED,
                (micros[row.id] * MICRO).quantize(MICRO),
                methods[row.id],
            )
        else:
            wanted[row.id] = (CostSource.COVERED, None, None)
    for row in rows:
        target = wanted[row.id]
        stored = None if row.allocated_cost is None else Decimal(row.allocated_cost)
        if (row.cost_source, stored, row.allocation_method) != target:
            yield (row.id, *target)


def _matches(bill: Any, usage: Any, dimension: str) -> bool:
    named = getattr(bill, dimension)
    if not named:
        return True
    if dimension == "service_tier":  # "standard" on the bill is the usage's default tier
        return _tier(getattr(usage, dimension)) == _tier(named)
    return bool(getattr(usage, dimension) == named)


def _tier(tier: str) -> str:
    return "" if tier.lower() in STANDARD_TIERS else tier.lower()


def _weights(rows: list[Any]) -> tuple[AllocationMethod, list[int]]:
    """The method and integer weights for splitting a bill over `rows`."""
    if len(rows) == 1:
        return AllocationMethod.EXACT, [1]
    estimates = [r.estimated_cost for r in rows]
    if all(e is not None for e in estimates) and any(estimates):
        return AllocationMethod.PROPORTIONAL_ESTIMATE, [
            int((Decimal(e) / MICRO).to_integral_value()) for e in estimates
        ]
    tokens = [sum(getattr(r, t) or 0 for t in TOKEN_COLUMNS) for r in rows]
    if any(tokens):
        return AllocationMethod.PROPORTIONAL_TOKENS, tokens
    return AllocationMethod.PROPORTIONAL_TOKENS, [1] * len(rows)  # no tokens: evenly


def split(amount: int, weights: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights` (integers, not all 0), in whole units, by
    largest remainder: the parts add up to `amount` exactly; ties go to the earlier part."""
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    remainders = [(amount * w % total, -i) for i, w in enumerate(weights)]
    short = amount - sum(parts)
    for _, negative_index in sorted(remainders, reverse=True)[:short]:
        parts[-negative_index] += 1
    return parts


def _stage(connection: Any, changes: list[tuple[Any, ...]], *, create: bool) -> int:
    if create:
        _TMP.create(connection, checkfirst=False)
    keys = ("id", "cost_source", "allocated_cost", "allocation_method")
    rows = [dict(zip(keys, c, strict=True)) for c in changes]
    if connection.dialect.name == "sqlite":
        # sqlite3 cannot bind Decimal: the NUMERIC column converts the text exactly.
        for row in rows:
            if row["allocated_cost"] is not None:
                row["allocated_cost"] = str(row["allocated_cost"])
    connection.execute(sa_insert(_TMP), rows)
    return len(rows)
