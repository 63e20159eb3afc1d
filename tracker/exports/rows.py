"""The one row query every export reads, and the value formatting every writer shares.

`usage_rows` streams UTC days `start..end` inclusive under the usage explorer's filters in
chunks (`yield_per`, a server-side cursor on PostgreSQL), so a million-row export never
holds the table in memory. Credentials are never selected.

Spreadsheet safety (`safe_text`): text cells that start with `=`, `+`, `-`, `@`, a tab or a
carriage return (model, project and key names come from outside) get a leading apostrophe,
so a spreadsheet shows them as text instead of running them as formulas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.costs.spend import row_spend
from tracker.models import Account, CostSource, Service, UsageRecord
from tracker.reporting.sources import Dimensions, filter_usage

# "focus" is FOCUS 1.2 (one CSV); "focus-1.4" the FOCUS 1.4 datasets (a zip).
FORMATS = ("csv", "json", "xlsx", "focus", "focus-1.4")
FOCUS_VERSIONS = {"1.2": "focus", "1.4": "focus-1.4"}  # the CLI's --focus-version
# Formats that are text and may go to standard output; xlsx and FOCUS 1.4 are zip files and
# need a path.
TEXT_FORMATS = frozenset({"csv", "json", "focus"})
CHUNK_ROWS = 5_000
MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CURRENCY = "USD"
SEAT_USAGE_TYPE = "seats"

_u = UsageRecord


# --- the row query ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRow:
    """One usage record as exported (no credential fields exist here by construction)."""

    day: dt.date
    provider: str
    provider_display_name: str
    account: str
    account_id: int
    organization_id: str | None
    model: str
    project_id: str
    project_name: str | None
    api_key_id: str
    api_key_name: str | None
    user_id: str
    user_name: str | None
    usage_type: str
    service_tier: str
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    output_tokens: int
    requests: int
    other_units: Decimal
    other_unit_name: str | None
    billed_cost: Decimal | None
    estimated_cost: Decimal | None
    currency: str
    cost_source: str
    pricing_status: str
    allocated_cost: Decimal | None
    allocation_method: str | None

    @property
    def cost(self) -> Decimal | None:
        """What the row counts toward spend (tracker.costs.spend); None if unpriced."""
        if self.cost_source == CostSource.NONE:
            return None
        return row_spend(
            self.billed_cost, self.estimated_cost, self.cost_source, self.allocated_cost
        )


_ROW_COLUMNS = (
    _u.day,
    Service.name.label("provider"),
    Service.display_name.label("provider_display_name"),
    Account.name.label("account"),
    Account.id.label("account_id"),
    Account.organization_id,
    _u.model,
    _u.project_id,
    _u.project_name,
    _u.api_key_id,
    _u.api_key_name,
    _u.user_id,
    _u.user_name,
    _u.usage_type,
    _u.service_tier,
    _u.input_tokens,
    _u.cached_input_tokens,
    _u.cache_write_tokens,
    _u.cache_write_1h_tokens,
    _u.output_tokens,
    _u.requests,
    _u.other_units,
    _u.other_unit_name,
    _u.billed_cost,
    _u.estimated_cost,
    _u.currency,
    _u.cost_source,
    _u.pricing_status,
    _u.allocated_cost,
    _u.allocation_method,
)


def check_range(start: dt.date, end: dt.date) -> None:
    """Refuse a range whose end is before its start."""
    if end < start:
        raise InvalidInput(
            f"the end date {end.isoformat()} is before the start date {start.isoformat()}; "
            "give --start on or before --end"
        )


def usage_rows(
    *, session: Session, start: dt.date, end: dt.date, filters: Dimensions | None = None
) -> Iterator[ExportRow]:
    """Stream the usage records of UTC days start..end (inclusive) under the filters.

    Ordered by day, account and record id; fetched `CHUNK_ROWS` at a time.
    """
    check_range(start, end)
    stmt = filter_usage(select(*_ROW_COLUMNS), (filters or Dimensions()).over(start, end))
    stmt = stmt.order_by(_u.day, _u.account_id, _u.id)
    result = session.execute(stmt, execution_options={"yield_per": CHUNK_ROWS})
    for r in result:
        values: tuple[Any, ...] = tuple(r)
        yield ExportRow(*values)


def count_rows(
    *, session: Session, start: dt.date, end: dt.date, filters: Dimensions | None = None
) -> int:
    """How many usage records an export of this range and filters would hold."""
    check_range(start, end)
    stmt = filter_usage(select(func.count(_u.id)), (filters or Dimensions()).over(start, end))
    return int(session.scalar(stmt) or 0)


# --- value formatting ------------------------------------------------------------------


def safe_text(value: str | None) -> str:
    """A text cell a spreadsheet will not run as a formula (leading apostrophe if needed)."""
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def money_str(value: Decimal | None) -> str:
    """A Decimal in plain notation, exactly as stored ('' for None)."""
    return "" if value is None else format(value, "f")


def decimal_str(value: Decimal | int) -> str:
    """A FOCUS decimal: plain notation, always with a decimal point (`1.0`, not `1`)."""
    text = format(Decimal(value).normalize() if isinstance(value, Decimal) else Decimal(value), "f")
    return text if "." in text else text + ".0"
