"""FOCUS 1.2 CSV: one row per charge, i.e. per token kind (input, cached input, cache writes,
output) of a usage row, per request fee, per seat row, per billed line item.

See `docs/exports.md` for the column mapping and the cost columns' meaning. The charges
(`charge_records`) are FOCUS 1.4's too (`tracker.exports.focus14`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import operator
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import IO, NamedTuple

from tracker.attribution.teams import TeamResolver
from tracker.core.units import month_start, next_month
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import UnitPrices
from tracker.exports.rows import (
    CURRENCY,
    MICRO,
    MILLION,
    SEAT_USAGE_TYPE,
    ExportRow,
    decimal_str,
    safe_text,
)
from tracker.exports.tabular import ExportStats
from tracker.models import LINE_ITEM, AllocationMethod, CostSource
from tracker.providers.registry import display_name

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
    # FOCUS 1.3's split cost allocation columns (AllocatedMethodId, AllocatedMethodDetails),
    # as custom columns until the export moves to a FOCUS version that has them.
    "x_AllocatedMethodId",
    "x_AllocatedMethodDetails",
)
# What each allocation method split a day's billed line items by (`tracker.costs.allocate`).
_ALLOCATION_BASIS: dict[str, str] = {
    AllocationMethod.EXACT: "the only usage row the billed line item names",
    AllocationMethod.PROPORTIONAL_ESTIMATE: "list-price estimates of the usage rows it names",
    AllocationMethod.PROPORTIONAL_TOKENS: "tokens of the usage rows it names",
}
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
    price: Decimal | None = getattr(prices, kind)
    if price is None:
        return None
    return price if kind == "request" else price / MILLION


def _charges(row: ExportRow, list_book: PriceBook, book: PriceBook) -> list[_Charge]:
    """Split one usage record into FOCUS charges, with list and contracted unit prices."""
    label = row.model or row.usage_type or "usage"
    if row.usage_type.startswith(LINE_ITEM):
        quantity = row.other_units if row.other_units > 0 else Decimal(1)
        item = row.usage_type[len(LINE_ITEM) :] or "billed line item"
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


def service_name(provider: str, display: str | None = None) -> str:
    """The FOCUS ServiceName of a provider's charges (`OpenAI API`, `GitHub Copilot`, ...)."""
    return _SERVICE_NAMES.get(provider, f"{display or display_name(provider)} API")


def _fixed_columns(row: ExportRow) -> dict[str, str]:
    """The FOCUS columns that depend only on account, provider, project and day."""
    period_start, period_end = month_start(row.day), next_month(row.day)
    service_category, service_sub = (
        _DEV_SERVICE if row.provider == "github_copilot" else _AI_SERVICE
    )
    display = row.provider_display_name or display_name(row.provider)
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
        "ServiceName": service_name(row.provider, display),
        "ServiceSubcategory": service_sub,
        "ServiceProviderName": display,
    }


class ChargeRecord(NamedTuple):
    """One FOCUS charge: its usage record, its kind (`input`, `cached_input`, `cache_write`,
    `cache_write_1h`, `output`, `request`, `seat`, `line_item`, `units`) and its FOCUS 1.2
    columns (column -> text, formula-safe; '' is null)."""

    row: ExportRow
    kind: str
    rec: dict[str, str]


def focus_records(
    rows: Iterable[ExportRow],
    *,
    list_book: PriceBook,
    book: PriceBook,
    teams: TeamResolver | None = None,
) -> Iterator[dict[str, str]]:
    """FOCUS 1.2 rows (column -> text, formula-safe) for usage records: one per charge
    (see `charge_records`)."""
    for charge in charge_records(rows, list_book=list_book, book=book, teams=teams):
        yield charge.rec


def charge_records(
    rows: Iterable[ExportRow],
    *,
    list_book: PriceBook,
    book: PriceBook,
    teams: TeamResolver | None = None,
) -> Iterator[ChargeRecord]:
    """The charges of usage records, with their FOCUS 1.2 columns; `teams`: the row's team,
    cost center and GL account go into its Tags.

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
        if row.cost_source == CostSource.COVERED:
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
        tags = _tags(row, teams)
        method_id, method_details = _allocated(row)
        sku_base = row.model or row.usage_type or row.provider
        for charge, billed, contracted_cost, list_raw_cost in zip(
            charges, billed_parts, contracted_parts, list_raw, strict=True
        ):
            list_cost = (
                list_raw_cost.quantize(MICRO) if list_raw_cost is not None else contracted_cost
            )
            quantity = charge.quantity
            contracted_unit = charge.contracted_unit
            if (
                contracted_unit is None
                or row.estimated_cost is None
                # An estimate made at other prices (a re-price pending): its own unit price.
                or abs(contracted_unit * quantity - contracted_cost) > MICRO
            ):
                contracted_unit = _derived_unit(contracted_cost, quantity)
            list_unit = (
                charge.list_unit
                if charge.list_unit is not None
                else _derived_unit(list_cost, quantity)
            )
            sku = f"{sku_base}-{charge.kind}"
            billed_text = decimal_str(billed)
            quantity_text = _quantity_str(quantity)
            usage = billed >= 0
            rec = dict(fixed)
            rec.update(
                BilledCost=billed_text,
                ChargeCategory="Usage" if usage else "Credit",
                ChargeDescription=safe_text(charge.description),
                ChargeFrequency=frequency,
                # Consumption is a usage charge's alone (null on a credit).
                ConsumedQuantity=quantity_text if usage else "",
                ConsumedUnit=charge.unit if usage else "",
                ContractedCost=decimal_str(contracted_cost),
                # A credit has no unit price (a derived one would be negative).
                ContractedUnitPrice=decimal_str(contracted_unit) if usage else "",
                EffectiveCost=billed_text,
                ListCost=decimal_str(list_cost),
                ListUnitPrice=decimal_str(list_unit) if usage else "",
                PricingQuantity=quantity_text,
                PricingUnit=charge.unit,
                SkuId=safe_text(sku),
                SkuPriceId=safe_text(f"{sku}-{row.service_tier}" if row.service_tier else sku),
                SubAccountId=sub_id,
                SubAccountName=sub_name,
                Tags=tags,
                x_AllocatedMethodId=method_id,
                x_AllocatedMethodDetails=method_details,
            )
            yield ChargeRecord(row, charge.kind, rec)


def _allocated(row: ExportRow) -> tuple[str, str]:
    """(method id, details as JSON) of a usage row that carries a share of the provider's
    billed line items (an allocated charge, in FOCUS 1.3's words); empty for other rows."""
    basis = _ALLOCATION_BASIS.get(row.allocation_method or "")
    if (
        row.cost_source != CostSource.COVERED
        or row.allocated_cost is None
        or basis is None
        or row.usage_type.startswith(LINE_ITEM)  # the origin charge, not an allocated one
    ):
        return "", ""
    details = {
        "Origin": f"{row.provider_display_name} billed line items of {row.day.isoformat()}",
        "Basis": basis,
        "AllocatedCost": decimal_str(row.allocated_cost),
    }
    return str(row.allocation_method), json.dumps(details, sort_keys=True)


def _derived_unit(cost: Decimal, quantity: Decimal) -> Decimal:
    if not quantity:
        return Decimal(0)
    # Fine enough that unit x quantity stays within a micro-dollar of the cost up to a
    # billion units.
    return (cost / quantity).quantize(Decimal("1E-15")).normalize()


def _tags(row: ExportRow, teams: TeamResolver | None) -> str:
    tags = {
        "x_account": row.account,
        "x_cost_source": row.cost_source,
        "x_pricing_status": row.pricing_status,
    }
    if row.allocation_method:
        # How the row's share of the provider's billed line items was found (costs.allocate),
        # until the export moves to FOCUS 1.4's Allocated* columns.
        tags["x_allocation_method"] = row.allocation_method
    if teams is not None:
        team = teams.team(
            row.day,
            user=row.user_id,
            api_key=row.api_key_id,
            project=row.project_id,
            account=row.account,
        )
        tags["x_team"] = team
        center, gl = teams.books(team)
        if center:
            tags["x_cost_center"] = center
        if gl:
            tags["x_gl_account"] = gl
    if row.model:
        tags["x_model"] = row.model
    if row.api_key_id:
        tags["x_api_key_id"] = row.api_key_id
    if row.user_id:
        tags["x_user_id"] = row.user_id
    if row.service_tier:
        tags["x_service_tier"] = row.service_tier
    if row.usage_type:
        tags["x_usage_type"] = row.usage_type
    return json.dumps(tags, ensure_ascii=False, sort_keys=True)


def write_focus(
    rows: Iterable[ExportRow],
    out: IO[str],
    *,
    list_book: PriceBook,
    book: PriceBook,
    teams: TeamResolver | None = None,
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
    for rec in focus_records(counted(), list_book=list_book, book=book, teams=teams):
        writer.writerow(values(rec))
        stats.rows += 1
        stats.total_cost += Decimal(rec["BilledCost"])
    return stats
