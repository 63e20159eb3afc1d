"""Exports for finance: usage CSV and JSON, the Excel month pack, and FOCUS 1.2 CSV.

Every export reads the same filtered row query (`usage_rows`): UTC days `start..end`
inclusive and the usage explorer's filters (provider, account, model, project, API key).
Rows are streamed from the database in chunks (`yield_per`, a server-side cursor on
PostgreSQL), so a million-row CSV or FOCUS export never holds the table in memory.

Money is `Decimal` from the database to the file, written in plain notation without rounding
(`NUMERIC(18, 6)` values keep their six places; no float noise). The cost of a row is its
provider-billed cost where reported, else our estimate (the dashboard's rule); a row with
neither is unpriced and counts as zero.

Spreadsheet safety: text cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return
(model, project and key names come from outside) get a leading apostrophe in CSV, FOCUS and
Excel output, so a spreadsheet shows them as text instead of running them as formulas. JSON
keeps values as they are (it is not opened by spreadsheets). Credentials are never selected.

FOCUS: one row per charge, i.e. per token kind (input, cached input, cache writes, output) of
a usage row, per request fee, per seat row, per billed line item. See `docs/exports.md` for
the column mapping and the cost columns' meaning.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.core.units import month_start, next_month
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import UnitPrices
from tracker.costs.spend import row_spend
from tracker.models import PROVIDERS, Account, CostProjection, Service, UsageRecord, all_tokens
from tracker.reporting.sources import Dimensions, filter_usage

log = logging.getLogger(__name__)

FORMATS = ("csv", "json", "xlsx", "focus")
# Formats that are text and may go to standard output; xlsx is a zip file and needs a path.
TEXT_FORMATS = frozenset({"csv", "json", "focus"})
CHUNK_ROWS = 5_000
MICRO = Decimal("0.000001")
MILLION = Decimal(1_000_000)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CURRENCY = "USD"
COST_LINE_PREFIX = "cost:"
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

    @property
    def cost(self) -> Decimal | None:
        """What the row counts toward spend (tracker.spend); None if unpriced."""
        if self.cost_source == "none":
            return None
        return row_spend(self.billed_cost, self.estimated_cost, self.cost_source)


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


# --- CSV and JSON ----------------------------------------------------------------------

CSV_COLUMNS = (
    "day",
    "provider",
    "account",
    "model",
    "project_id",
    "project_name",
    "api_key_id",
    "api_key_name",
    "usage_type",
    "service_tier",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
    "other_units",
    "other_unit_name",
    "billed_cost",
    "estimated_cost",
    "cost",
    "currency",
    "cost_source",
    "pricing_status",
)
_TEXT_COLUMNS = frozenset(
    {
        "provider",
        "account",
        "model",
        "project_id",
        "project_name",
        "api_key_id",
        "api_key_name",
        "usage_type",
        "service_tier",
        "other_unit_name",
        "currency",
        "cost_source",
        "pricing_status",
    }
)
_INT_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
)


def _row_values(row: ExportRow) -> dict[str, Any]:
    return {
        "day": row.day.isoformat(),
        "provider": row.provider,
        "account": row.account,
        "model": row.model,
        "project_id": row.project_id,
        "project_name": row.project_name,
        "api_key_id": row.api_key_id,
        "api_key_name": row.api_key_name,
        "usage_type": row.usage_type,
        "service_tier": row.service_tier,
        **{name: int(getattr(row, name)) for name in _INT_COLUMNS},
        "other_units": money_str(row.other_units),
        "other_unit_name": row.other_unit_name,
        "billed_cost": money_str(row.billed_cost),
        "estimated_cost": money_str(row.estimated_cost),
        "cost": money_str(row.cost),
        "currency": row.currency,
        "cost_source": row.cost_source,
        "pricing_status": row.pricing_status,
    }


@dataclass
class ExportStats:
    """What an export wrote: usage records read, rows written and the cost total (USD)."""

    records: int = 0
    rows: int = 0
    total_cost: Decimal = field(default_factory=lambda: Decimal(0))


def write_csv(rows: Iterable[ExportRow], out: IO[str]) -> ExportStats:
    """Write one CSV line per usage record (columns `CSV_COLUMNS`, UTF-8, ISO dates)."""
    stats = ExportStats()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = _row_values(row)
        writer.writerow(
            [safe_text(values[c]) if c in _TEXT_COLUMNS else values[c] for c in CSV_COLUMNS]
        )
        stats.records += 1
        stats.rows += 1
        stats.total_cost += row.cost or 0
    return stats


def write_json(
    rows: Iterable[ExportRow], out: IO[str], *, start: dt.date, end: dt.date
) -> ExportStats:
    """Write one JSON document: range, then `rows` (money as exact decimal strings), totals."""
    stats = ExportStats()
    head = {"format": "ai-cost-tracker.usage/1", "start": start.isoformat(), "end": end.isoformat()}
    out.write(json.dumps(head)[:-1] + ', "currency": "USD", "rows": [')
    for row in rows:
        values = _row_values(row)
        # Money stays a string: JSON numbers become binary floats in most readers.
        for name in ("other_units", "billed_cost", "estimated_cost", "cost"):
            values[name] = values[name] or None
        out.write(("\n" if not stats.rows else ",\n") + json.dumps(values, ensure_ascii=False))
        stats.records += 1
        stats.rows += 1
        stats.total_cost += row.cost or 0
    out.write(f'\n], "row_count": {stats.rows}, "total_cost": "{money_str(stats.total_cost)}"}}\n')
    return stats


# --- FOCUS 1.2 -------------------------------------------------------------------------

FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "ServiceProviderName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
_AI_SERVICE = ("AI and Machine Learning", "Generative AI")
_DEV_SERVICE = ("Developer Tools", "Developer Platforms")
_SERVICE_NAMES = {
    "openai": "OpenAI API",
    "anthropic": "Claude API",
    "github_copilot": "GitHub Copilot",
    "groq": "GroqCloud",
    "perplexity": "Perplexity API",
    "openrouter": "OpenRouter API",
    "deepseek": "DeepSeek API",
}
_TOKEN_CHARGES = (
    ("input", "input_tokens", "input tokens"),
    ("cached_input", "cached_input_tokens", "cached input tokens"),
    ("cache_write", "cache_write_tokens", "cache write tokens"),
    ("cache_write_1h", "cache_write_1h_tokens", "cache write (1 h) tokens"),
    ("output", "output_tokens", "output tokens"),
)


@dataclass(frozen=True)
class _Charge:
    kind: str  # input, cached_input, ..., request, seat, line_item, units
    description: str
    quantity: Decimal
    unit: str
    list_unit: Decimal | None  # USD per unit, before organisation overrides
    contracted_unit: Decimal | None  # USD per unit, after overrides and discounts


def _unit_name(name: str | None) -> str:
    """A FOCUS unit name: capitalised words, plural ('seats' -> 'Seats')."""
    if not name:
        return "Units"
    words = name.replace("_", " ").split()
    text = " ".join(w[:1].upper() + w[1:] for w in words)
    return text if text.endswith("s") else text + "s"


def _per_unit(prices: UnitPrices | None, kind: str) -> Decimal | None:
    if prices is None:
        return None
    price = getattr(prices, kind)
    if price is None:
        return None
    return price if kind == "request" else price / MILLION


def _charges(row: ExportRow, list_book: PriceBook, book: PriceBook) -> list[_Charge]:
    """Split one usage record into FOCUS charges, with list and contracted unit prices."""
    label = row.model or row.usage_type or "usage"
    if row.usage_type.startswith(COST_LINE_PREFIX):
        quantity = row.other_units if row.other_units > 0 else Decimal(1)
        item = row.usage_type[len(COST_LINE_PREFIX) :] or "billed line item"
        return [_Charge("line_item", item, quantity, _unit_name(None), None, None)]
    if row.usage_type == SEAT_USAGE_TYPE or (
        row.provider == "github_copilot" and row.other_unit_name == "seats"
    ):
        quantity = row.other_units if row.other_units > 0 else Decimal(1)
        return [_Charge("seat", f"{label} seats", quantity, "Seats", None, None)]
    tokens = [(kind, getattr(row, column), text) for kind, column, text in _TOKEN_CHARGES]
    listed = list_book.resolve(row.provider, row.model, row.day, row.service_tier).prices
    contracted = book.resolve(row.provider, row.model, row.day, row.service_tier).prices
    charges = [
        _Charge(
            kind,
            f"{label} {text}",
            Decimal(count),
            "Tokens",
            _per_unit(listed, kind),
            _per_unit(contracted, kind),
        )
        for kind, count, text in tokens
        if count
    ]
    if row.requests and (not charges or (contracted and contracted.request is not None)):
        charges.append(
            _Charge(
                "request",
                f"{label} requests",
                Decimal(row.requests),
                "Requests",
                _per_unit(listed, "request"),
                _per_unit(contracted, "request"),
            )
        )
    if not charges:
        quantity = row.other_units if row.other_units > 0 else Decimal(1)
        unit = _unit_name(row.other_unit_name)
        charges.append(_Charge("units", f"{label} {unit.lower()}", quantity, unit, None, None))
    return charges


def allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` into micro-dollar parts proportional to `weights` that sum exactly to it.

    Largest-remainder rounding; equal parts when every weight is zero.
    """
    if len(weights) == 1:
        return [total]
    if not any(weights) or any(w < 0 for w in weights):
        weights = [Decimal(1)] * len(weights)
    units = (total / MICRO).to_integral_value()
    if units * MICRO != total:
        # More than six decimals (not from the database): give the sub-micro rest to the last.
        units = (total / MICRO).to_integral_value(rounding=ROUND_DOWN)
    weight_sum = sum(weights)
    raw = [units * w / weight_sum for w in weights]
    parts = [r.to_integral_value(rounding=ROUND_DOWN) for r in raw]
    rest = int(units - sum(parts))
    step = 1 if rest >= 0 else -1
    order = sorted(range(len(raw)), key=lambda i: raw[i] - parts[i], reverse=step > 0)
    for i in order[: abs(rest)]:
        parts[i] += step
    result = [p * MICRO for p in parts]
    result[-1] += total - sum(result)
    return result


def _stamp(day: dt.date) -> str:
    return day.isoformat() + "T00:00:00Z"


def _quantity_str(value: Decimal) -> str:
    # Token and seat counts are whole numbers: skip Decimal formatting (hot path).
    if value == value.to_integral_value():
        return f"{int(value)}.0"
    return decimal_str(value)


def _fixed_columns(row: ExportRow) -> dict[str, str]:
    """The FOCUS columns that depend only on account, provider, project and day."""
    period_start, period_end = month_start(row.day), next_month(row.day)
    service_category, service_sub = (
        _DEV_SERVICE if row.provider == "github_copilot" else _AI_SERVICE
    )
    display = row.provider_display_name or PROVIDERS.get(row.provider, {}).get(
        "display_name", row.provider
    )
    account_key = row.organization_id or row.account
    return {
        "BillingAccountId": safe_text(account_key),
        "BillingAccountName": safe_text(row.account),
        "BillingCurrency": (row.currency or CURRENCY).upper(),
        "BillingPeriodStart": _stamp(period_start),
        "BillingPeriodEnd": _stamp(period_end),
        "ChargeClass": "",
        "ChargePeriodStart": _stamp(row.day),
        "ChargePeriodEnd": _stamp(row.day + dt.timedelta(days=1)),
        # Our key for the provider's monthly bill (the APIs give no invoice numbers).
        "InvoiceId": safe_text(f"{row.provider}-{account_key}-{period_start:%Y-%m}"),
        "InvoiceIssuerName": display,
        "PricingCategory": "Standard",
        "ProviderName": display,
        "PublisherName": display,
        "ServiceCategory": service_category,
        "ServiceName": _SERVICE_NAMES.get(row.provider, f"{display} API"),
        "ServiceSubcategory": service_sub,
        "ServiceProviderName": display,
    }


def focus_records(
    rows: Iterable[ExportRow], *, list_book: PriceBook, book: PriceBook
) -> Iterator[dict[str, str]]:
    """FOCUS 1.2 rows (column -> text, formula-safe) for usage records: one per charge.

    Cost columns, per charge (USD):
    - BilledCost: the record's billed cost where reported, else its estimate, else 0; split
      across the record's charges in proportion to their contracted cost.
    - EffectiveCost: equal to BilledCost (no commitment discounts or amortisation to spread).
    - ContractedCost: the estimate at the organisation's prices (overrides, discounts)
      split the same way; where there is no estimate, the billed cost.
    - ListCost: list unit price (without organisation overrides) x quantity; where no list
      price is known, the contracted cost.
    Unit prices without a price-book price are derived as cost / quantity.
    """
    fixed_cache: dict[tuple[int, str, dt.date], dict[str, str]] = {}
    for row in rows:
        key = (row.account_id, row.project_id, row.day)
        fixed = fixed_cache.get(key)
        if fixed is None:
            if len(fixed_cache) > 10_000:  # bounded: rows arrive ordered by day
                fixed_cache.clear()
            fixed = fixed_cache[key] = _fixed_columns(row)
        charges = _charges(row, list_book, book)
        billed_total = row.cost if row.cost is not None else Decimal(0)
        contracted_total = row.estimated_cost if row.estimated_cost is not None else billed_total
        list_raw = [c.list_unit * c.quantity if c.list_unit is not None else None for c in charges]
        if row.cost_source == "covered":
            # The provider bills this day on its own line items (exported as their own
            # charges): these token charges carry the quantities at $0, or the day would
            # be counted twice in every cost column.
            contracted_total = Decimal(0)
            list_raw = [Decimal(0) for _ in charges]
            charges = [replace(c, list_unit=None, contracted_unit=None) for c in charges]
        if len(charges) == 1:
            billed_parts, contracted_parts = [billed_total], [contracted_total]
        else:
            contracted_raw = [
                c.contracted_unit * c.quantity if c.contracted_unit is not None else None
                for c in charges
            ]
            basis = contracted_raw if None not in contracted_raw else list_raw
            weights = (
                [v for v in basis if v is not None]
                if None not in basis
                else [c.quantity for c in charges]
            )
            billed_parts = allocate(billed_total, weights)
            contracted_parts = allocate(contracted_total, weights)
        frequency = "Recurring" if charges[0].kind == "seat" else "Usage-Based"
        sub_id = safe_text(row.project_id)
        sub_name = safe_text(row.project_name or row.project_id) if sub_id else ""
        tags = _tags(row)
        sku_base = row.model or row.usage_type or row.provider
        for charge, billed, contracted_cost, list_raw_cost in zip(
            charges, billed_parts, contracted_parts, list_raw, strict=True
        ):
            list_cost = (
                list_raw_cost.quantize(MICRO) if list_raw_cost is not None else contracted_cost
            )
            quantity = charge.quantity
            contracted_unit = (
                charge.contracted_unit
                if charge.contracted_unit is not None and row.estimated_cost is not None
                else _derived_unit(contracted_cost, quantity)
            )
            list_unit = (
                charge.list_unit
                if charge.list_unit is not None
                else _derived_unit(list_cost, quantity)
            )
            sku = f"{sku_base}-{charge.kind}"
            billed_text = decimal_str(billed)
            quantity_text = _quantity_str(quantity)
            rec = dict(fixed)
            rec.update(
                BilledCost=billed_text,
                ChargeCategory="Credit" if billed < 0 else "Usage",
                ChargeDescription=safe_text(charge.description),
                ChargeFrequency=frequency,
                ConsumedQuantity=quantity_text,
                ConsumedUnit=charge.unit,
                ContractedCost=decimal_str(contracted_cost),
                ContractedUnitPrice=decimal_str(contracted_unit),
                EffectiveCost=billed_text,
                ListCost=decimal_str(list_cost),
                ListUnitPrice=decimal_str(list_unit),
                PricingQuantity=quantity_text,
                PricingUnit=charge.unit,
                SkuId=safe_text(sku),
                SkuPriceId=safe_text(f"{sku}-{row.service_tier}" if row.service_tier else sku),
                SubAccountId=sub_id,
                SubAccountName=sub_name,
                Tags=tags,
            )
            yield rec


def _derived_unit(cost: Decimal, quantity: Decimal) -> Decimal:
    if not quantity:
        return Decimal(0)
    return (cost / quantity).quantize(Decimal("1E-12")).normalize()


def _tags(row: ExportRow) -> str:
    tags = {
        "x_account": row.account,
        "x_cost_source": row.cost_source,
        "x_pricing_status": row.pricing_status,
    }
    if row.model:
        tags["x_model"] = row.model
    if row.api_key_id:
        tags["x_api_key_id"] = row.api_key_id
    if row.service_tier:
        tags["x_service_tier"] = row.service_tier
    if row.usage_type:
        tags["x_usage_type"] = row.usage_type
    return json.dumps(tags, ensure_ascii=False, sort_keys=True)


def write_focus(
    rows: Iterable[ExportRow], out: IO[str], *, list_book: PriceBook, book: PriceBook
) -> ExportStats:
    """Write a FOCUS 1.2 CSV (columns `FOCUS_COLUMNS`) for the usage records."""
    stats = ExportStats()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)

    def counted() -> Iterator[ExportRow]:
        for row in rows:
            stats.records += 1
            yield row

    values = operator.itemgetter(*FOCUS_COLUMNS)
    for rec in focus_records(counted(), list_book=list_book, book=book):
        writer.writerow(values(rec))
        stats.rows += 1
        stats.total_cost += Decimal(rec["BilledCost"])
    return stats


# --- Excel month pack ------------------------------------------------------------------


@dataclass
class _Agg:
    cost: Decimal = field(default_factory=lambda: Decimal(0))
    billed: Decimal = field(default_factory=lambda: Decimal(0))
    estimated: Decimal = field(default_factory=lambda: Decimal(0))
    tokens: int = 0
    requests: int = 0
    records: int = 0
    unpriced: int = 0

    def add(self, row: ExportRow) -> None:
        if row.cost_source == "billed" and row.billed_cost is not None:
            self.billed += row.billed_cost
            self.cost += row.billed_cost
        elif row.cost_source == "estimated" and row.estimated_cost is not None:
            self.estimated += row.estimated_cost
            self.cost += row.estimated_cost
        elif row.cost_source == "none":
            self.unpriced += 1
        self.tokens += all_tokens(row)
        self.requests += row.requests
        self.records += 1


_AGG_HEADERS = [
    "Cost (USD)",
    "Billed (USD)",
    "Estimated (USD)",
    "Tokens",
    "Requests",
    "Records",
    "Unpriced records",
]


def _agg_values(a: _Agg) -> list[Any]:
    return [a.cost, a.billed, a.estimated, a.tokens, a.requests, a.records, a.unpriced]


@dataclass(frozen=True)
class _BudgetLine:
    scope: str
    budget: Decimal | None
    actual: Decimal


def write_xlsx(
    rows: Iterable[ExportRow],
    out: IO[bytes],
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    filters: Dimensions,
) -> ExportStats:
    """Write the Excel month pack: Summary, By provider, By model, By project, Daily, Unpriced.

    Money cells are numbers with a currency format (Excel stores binary floats: exact to far
    below a cent at these magnitudes); headers are frozen.
    """
    import xlsxwriter  # here so the other formats do not need it loaded

    stats = ExportStats()
    total = _Agg()
    by_provider: dict[str, _Agg] = {}
    by_account: dict[str, _Agg] = {}
    by_model: dict[tuple[str, str], _Agg] = {}
    by_project: dict[tuple[str, str, str], _Agg] = {}
    daily: dict[dt.date, _Agg] = {}
    unpriced: dict[tuple[str, str, str, str], _Agg] = {}
    for row in rows:
        total.add(row)
        by_provider.setdefault(row.provider_display_name, _Agg()).add(row)
        by_account.setdefault(row.account, _Agg()).add(row)
        by_model.setdefault((row.provider_display_name, row.model or "(not reported)"), _Agg()).add(
            row
        )
        project = row.project_name or row.project_id or "(none)"
        by_project.setdefault((row.account, row.project_id, project), _Agg()).add(row)
        daily.setdefault(row.day, _Agg()).add(row)
        if row.cost is None:
            key = (row.account, row.model, row.usage_type, row.pricing_status)
            unpriced.setdefault(key, _Agg()).add(row)
        stats.records += 1
    stats.rows = stats.records
    stats.total_cost = total.cost

    book = xlsxwriter.Workbook(
        out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    bold = book.add_format({"bold": True})
    money = book.add_format({"num_format": '"$"#,##0.00'})
    whole = book.add_format({"num_format": "#,##0"})
    date_fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    pct = book.add_format({"num_format": "0.0%"})

    def cell(sheet: Any, r: int, c: int, value: Any, kind: str = "") -> None:
        if value is None:
            sheet.write_blank(r, c, None)
        elif kind == "money":
            sheet.write_number(r, c, float(value), money)
        elif kind == "int":
            sheet.write_number(r, c, int(value), whole)
        elif kind == "pct":
            sheet.write_number(r, c, float(value), pct)
        elif isinstance(value, dt.date):
            sheet.write_datetime(r, c, dt.datetime.combine(value, dt.time()), date_fmt)
        else:
            sheet.write_string(r, c, safe_text(str(value)))

    kinds = ["money", "money", "money", "int", "int", "int", "int"]

    def table(
        name: str, keys: list[str], groups: dict[Any, _Agg], key_kinds: list[str] | None = None
    ) -> None:
        sheet = book.add_worksheet(name)
        for c, header in enumerate([*keys, *_AGG_HEADERS]):
            sheet.write_string(0, c, header, bold)
        sheet.freeze_panes(1, 0)
        ordered = (
            sorted(groups.items(), key=lambda kv: (-kv[1].cost, kv[0]))
            if name != "Daily"
            else sorted(groups.items())
        )
        for r, (key, agg) in enumerate(ordered, start=1):
            parts = key if isinstance(key, tuple) else (key,)
            for c, part in enumerate(parts):
                cell(sheet, r, c, part, (key_kinds or [""] * len(parts))[c])
            for c, (value, kind) in enumerate(
                zip(_agg_values(agg), kinds, strict=True), start=len(parts)
            ):
                cell(sheet, r, c, value, kind)
        last = len(ordered) + 1
        cell(sheet, last, 0, "Total")
        for c, (value, kind) in enumerate(
            zip(_agg_values(_sum_aggs(groups.values())), kinds, strict=True), start=len(keys)
        ):
            cell(sheet, last, c, value, kind)
        sheet.set_column(0, len(keys) - 1, 24)
        sheet.set_column(len(keys), len(keys) + len(_AGG_HEADERS) - 1, 16)

    summary = book.add_worksheet("Summary")
    summary.set_column(0, 0, 34)
    summary.set_column(1, 4, 18)
    lines: list[tuple[str, Any, str]] = [
        ("Period start (UTC)", start, ""),
        ("Period end (UTC, inclusive)", end, ""),
        ("Filters", _describe(filters), ""),
        ("Currency", CURRENCY, ""),
        ("Total cost", total.cost, "money"),
        ("of which billed by providers", total.billed, "money"),
        ("of which estimated", total.estimated, "money"),
        ("Usage records", total.records, "int"),
        ("Unpriced records (counted as 0)", total.unpriced, "int"),
    ]
    summary.write_string(0, 0, "Item", bold)
    summary.write_string(0, 1, "Value", bold)
    summary.freeze_panes(1, 0)
    r = 1
    for label, value, kind in lines:
        cell(summary, r, 0, label)
        cell(summary, r, 1, value, kind)
        r += 1
    r += 1
    for c, header in enumerate(
        [
            "Budget vs actual (monthly budgets)",
            "Monthly budget (USD)",
            "Actual in range (USD)",
            "Used",
        ]
    ):
        summary.write_string(r, c, header, bold)
    r += 1
    for line in _budget_lines(
        session=session, total=total, by_provider=by_provider, by_account=by_account
    ):
        cell(summary, r, 0, line.scope)
        cell(summary, r, 1, line.budget, "money")
        cell(summary, r, 2, line.actual, "money")
        used = line.actual / line.budget if line.budget else None
        cell(summary, r, 3, used, "pct")
        r += 1
    r += 1
    for c, header in enumerate(
        [
            "Projection (month of the end date)",
            "Projected total (USD)",
            "Lower",
            "Upper",
            "Computed at (UTC)",
        ]
    ):
        summary.write_string(r, c, header, bold)
    r += 1
    projection = session.scalars(
        select(CostProjection).where(
            CostProjection.scope == "org", CostProjection.month == end.replace(day=1)
        )
    ).first()
    if projection is None:
        cell(summary, r, 0, "no projection yet")
    else:
        cell(summary, r, 0, f"organisation, {projection.month:%Y-%m} ({projection.method})")
        cell(summary, r, 1, projection.projected_total, "money")
        cell(summary, r, 2, projection.lower_bound, "money")
        cell(summary, r, 3, projection.upper_bound, "money")
        cell(summary, r, 4, projection.computed_at.strftime("%Y-%m-%d %H:%M"))

    table("By provider", ["Provider"], by_provider)
    table("By model", ["Provider", "Model"], by_model)
    table("By project", ["Account", "Project id", "Project"], by_project)
    table("Daily", ["Day (UTC)"], daily, ["date"])
    table("Unpriced", ["Account", "Model", "Usage type", "Pricing status"], unpriced)
    book.close()
    return stats


def _sum_aggs(aggs: Iterable[_Agg]) -> _Agg:
    total = _Agg()
    for a in aggs:
        total.cost += a.cost
        total.billed += a.billed
        total.estimated += a.estimated
        total.tokens += a.tokens
        total.requests += a.requests
        total.records += a.records
        total.unpriced += a.unpriced
    return total


def _budget_lines(
    *, session: Session, total: _Agg, by_provider: dict[str, _Agg], by_account: dict[str, _Agg]
) -> list[_BudgetLine]:
    """Budgets (organisation, services, accounts) beside the exported actuals."""
    from tracker.planning.budgets import org_budget  # loads pandas: only the month pack needs it

    org, source = org_budget(session=session)
    lines = [
        _BudgetLine(
            f"Organisation ({source} budget)"
            if org is not None
            else "Organisation (no budget set)",
            org,
            total.cost,
        )
    ]
    for display, budget in session.execute(
        select(Service.display_name, Service.monthly_budget)
        .where(Service.monthly_budget.is_not(None))
        .order_by(Service.display_name)
    ):
        agg = by_provider.get(display)
        lines.append(_BudgetLine(f"Service: {display}", budget, agg.cost if agg else Decimal(0)))
    for name, budget in session.execute(
        select(Account.name, Account.monthly_budget)
        .where(Account.monthly_budget.is_not(None))
        .order_by(Account.name)
    ):
        agg = by_account.get(name)
        lines.append(_BudgetLine(f"Account: {name}", budget, agg.cost if agg else Decimal(0)))
    return lines


def _describe(filters: Dimensions) -> str:
    parts = [
        f"{name}: {', '.join(values)}"
        for name, values in (
            ("providers", filters.providers),
            ("accounts", filters.accounts),
            ("models", filters.models),
            ("projects", filters.projects),
            ("API keys", filters.api_keys),
        )
        if values
    ]
    return "; ".join(parts) or "none (everything)"


# --- the one entry point ---------------------------------------------------------------


def export(
    *,
    session: Session,
    fmt: str,
    start: dt.date,
    end: dt.date,
    filters: Dimensions | None = None,
    out: IO[Any],
) -> ExportStats:
    """Write an export of UTC days start..end (inclusive) to `out`.

    `out` is a text stream (UTF-8) for csv, json and focus, a binary stream for xlsx; a
    binary stream is accepted for the text formats too (wrapped as UTF-8).
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    check_range(start, end)
    flt = filters or Dimensions()
    rows = usage_rows(session=session, start=start, end=end, filters=flt)
    if fmt == "xlsx":
        if isinstance(out, io.TextIOBase):
            raise InvalidInput("xlsx is a binary file; write it to a file, not standard output")
        return write_xlsx(rows, out, session=session, start=start, end=end, filters=flt)
    text, wrapper = _text_stream(out)
    try:
        if fmt == "csv":
            stats = write_csv(rows, text)
        elif fmt == "json":
            stats = write_json(rows, text, start=start, end=end)
        else:
            stats = write_focus(
                rows, text, list_book=PriceBook(()), book=PriceBook.from_db(session)
            )
    finally:
        if wrapper is not None:
            wrapper.flush()
            wrapper.detach()
    log.info("exported %s records as %s (%s rows)", stats.records, fmt, stats.rows)
    return stats


def _text_stream(out: IO[Any]) -> tuple[IO[str], io.TextIOWrapper | None]:
    if isinstance(out, io.TextIOBase) or hasattr(out, "encoding"):
        return out, None
    wrapper = io.TextIOWrapper(out, encoding="utf-8", newline="")
    return wrapper, wrapper


def export_bytes(
    *,
    session: Session,
    fmt: str,
    start: dt.date,
    end: dt.date,
    filters: Dimensions | None = None,
) -> bytes:
    """The whole export as bytes (for download buttons; small ranges only)."""
    buffer = io.BytesIO()
    export(session=session, fmt=fmt, start=start, end=end, filters=filters, out=buffer)
    return buffer.getvalue()


FILE_EXTENSIONS: dict[str, str] = {"csv": "csv", "json": "json", "xlsx": "xlsx", "focus": "csv"}
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "json": "application/json",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "focus": "text/csv",
}


def file_name(fmt: str, start: dt.date, end: dt.date) -> str:
    """A download file name such as `ai-costs-focus-2025-01-01-to-2025-01-31.csv`."""
    return f"ai-costs-{fmt}-{start.isoformat()}-to-{end.isoformat()}.{FILE_EXTENSIONS[fmt]}"
