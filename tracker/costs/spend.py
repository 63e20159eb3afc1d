"""What counts as spend: the one rule every total (dashboard, budgets, alerts, exports) uses.

Each usage row says in `cost_source` which of its amounts counts:

- `billed`: the provider's own amount (`billed_cost`).
- `estimated`: our price-book estimate (`estimated_cost`), where the provider reports no
  amount for that account and day.
- `covered`: the row's cost is inside the provider's billed line items for the same account
  and day (OpenAI's costs API and Anthropic's cost report bill per line item, apart from the
  per-model token rows); it counts its share of them, `allocated_cost`
  (`tracker.costs.allocate`; NULL until allocated: $0, or the day would count twice). A
  line item whose amount went to its usage rows is covered too, with a share of 0. Only
  synced rows are covered, and only by synced bills: an imported row's `cost` is its own,
  so an imported row without one is estimated.
- `none`: neither billed nor priceable (an unknown model); counts $0 and is flagged as
  unpriced, never silently priced at $0.

`assign_cost_sources` sets the column after each sync, import and re-pricing; readers use
`ROW_SPEND` (SQL) or `row_spend` (Python) and never re-derive the rule.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    case,
    cast,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from tracker.models import IMPORT_USAGE_TYPE, CostSource, UsageRecord

_u = UsageRecord

# The amount of a row that counts toward spend (NUMERIC; 0 for covered and unpriced rows).
ROW_SPEND: ColumnElement[Decimal] = case(
    (_u.cost_source == CostSource.BILLED, _u.billed_cost),
    (_u.cost_source == CostSource.COVERED, _u.allocated_cost),
    (_u.cost_source == CostSource.ESTIMATED, _u.estimated_cost),
    else_=0,
)


def micros(column: Any) -> ColumnElement[int]:
    """A money expression as whole micro-dollars: sums of these are exact on SQLite too
    (SQLite keeps NUMERIC as a double)."""
    return cast(func.round(column * 1_000_000), BigInteger)


ROW_SPEND_MICROS: ColumnElement[int] = micros(func.coalesce(ROW_SPEND, 0))
# The part of a row's spend that is the provider's billed money (its own bill, or its
# allocated share of the day's line items), in micro-dollars.
ROW_BILLED_MICROS: ColumnElement[int] = case(
    (_u.cost_source == CostSource.BILLED, micros(func.coalesce(_u.billed_cost, 0))),
    (_u.cost_source == CostSource.COVERED, micros(func.coalesce(_u.allocated_cost, 0))),
    else_=0,
)


def row_spend(
    billed: Decimal | None,
    estimated: Decimal | None,
    cost_source: str,
    allocated: Decimal | None = None,
) -> Decimal:
    """The Python twin of ROW_SPEND, for rows already read (exports)."""
    if cost_source == CostSource.BILLED and billed is not None:
        return billed
    if cost_source == CostSource.COVERED and allocated is not None:
        return allocated
    if cost_source == CostSource.ESTIMATED and estimated is not None:
        return estimated
    return Decimal(0)


def cost_source_of(
    billed: Decimal | None, estimated: Decimal | None, day_billed: bool, *, imported: bool = False
) -> str:
    """The rule for one row; `day_billed`: its account has a synced billed amount that day;
    `imported`: the row came from a CSV import (never covered)."""
    if billed is not None:
        return CostSource.BILLED
    if day_billed and not imported:
        return CostSource.COVERED
    return CostSource.ESTIMATED if estimated is not None else CostSource.NONE


def billed_days(
    connection: Connection, *, start: dt.date, end: dt.date, account_ids: list[int] | None
) -> set[tuple[int, dt.date]]:
    """The (account_id, day) pairs in start..end that have a synced billed amount."""
    stmt = (
        select(_u.account_id, _u.day)
        .where(
            _u.billed_cost.is_not(None),
            _u.usage_type != IMPORT_USAGE_TYPE,
            _u.day >= start,
            _u.day <= end,
        )
        .distinct()
    )
    if account_ids is not None:
        stmt = stmt.where(_u.account_id.in_(account_ids))
    return {(account_id, day) for account_id, day in connection.execute(stmt)}


def assign_cost_sources(
    *, session: Session, start: dt.date, end: dt.date, account_ids: list[int] | None = None
) -> int:
    """Set `cost_source` on rows with start <= day <= end; return how many changed.

    For rows written without a pricing pass (the price book's `estimate_range` decides the
    source itself, in the same write as the estimate). One UPDATE in the caller's
    transaction.
    """
    if account_ids is not None and not account_ids:
        return 0
    billed = aliased(UsageRecord)
    billed_days = select(billed.account_id, billed.day).where(
        billed.billed_cost.is_not(None),
        billed.usage_type != IMPORT_USAGE_TYPE,
        billed.day >= start,
        billed.day <= end,
    )
    if account_ids is not None:
        billed_days = billed_days.where(billed.account_id.in_(account_ids))
    # An uncorrelated semi-join: PostgreSQL hashes the billed account-days once, where a
    # correlated EXISTS probed the index for every row (minutes at a million rows).
    has_billed_line = tuple_(_u.account_id, _u.day).in_(billed_days)
    source = case(
        (_u.billed_cost.is_not(None), CostSource.BILLED),
        (and_(has_billed_line, _u.usage_type != IMPORT_USAGE_TYPE), CostSource.COVERED),
        (_u.estimated_cost.is_not(None), CostSource.ESTIMATED),
        else_=CostSource.NONE,
    )
    where = [_u.day >= start, _u.day <= end, _u.cost_source != source]
    if account_ids is not None:
        where.append(_u.account_id.in_(account_ids))
    result = session.execute(
        update(_u).where(and_(*where)).values(cost_source=source),
        execution_options={"synchronize_session": False},
    )
    # The UPDATE went around the ORM: loaded rows must re-read their cost source.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, UsageRecord):
            session.expire(obj, ["cost_source"])
    return int(getattr(result, "rowcount", 0) or 0)
