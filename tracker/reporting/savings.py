"""The Savings page's ledger: per month and provider, what the organisation's choices saved
against the list price, and what negotiated prices saved against it on the bill.

Each usage row's tokens are priced at the list price (catalog and corrections, no
organisation override) in several ways, and the differences are the savings:

- **cache**: every prompt token at the uncached input price, minus the price with cache
  reads and writes at their own prices (so a cache write's premium counts against it);
- **batch**, **flex**: the standard tier's price minus the row's tier's price;
- **off-peak**: for models with time-of-day prices, the day's peak price minus the price the
  estimate used. Daily totals cannot tell the hour, so this assumes the day's usage came when
  the estimate assumes it did: it is marked approximate;
- **negotiated**: where the provider billed the row (directly, or as its share of a billed
  line item), the list price at the row's tier minus the bill. A billed line item that no
  usage row took (unallocated, e.g. Claude Code or claude.ai spend without token rows) counts
  too when its provider reported its list amount (`list_cost`, Anthropic's analytics
  `list_amount`): that amount minus the bill. An allocated line item is not counted again:
  its bill already sits on the usage rows priced above.

**Missed** savings (not in the total): usage that could have taken a cheaper mode the
organisation already uses with the same provider that month. Embeddings at the standard tier
while batch is used (embeddings are never interactive: batch-eligible) count the standard
price minus the batch price. Cache misses on repeated prompts are not counted: daily usage
buckets cannot tell a repeated prompt from a new one.

Billed-only line items, seats and rows the list price cannot price (unknown models, units)
are left out; the token columns are priced (their audio and image parts at the column's
rate). UTC months; amounts exact, rounded only when shown.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core.units import month_start
from tracker.costs.catalog import catalog_model, peak_prices
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import (
    BATCH_TIER,
    NO_ESTIMATE_USAGE_TYPES,
    PER_MILLION,
    Resolved,
    UnitPrices,
)
from tracker.models import LINE_ITEM, Account, CostSource, Service, UsageRecord
from tracker.providers.registry import display_name

KINDS = ("cache", "batch", "flex", "off_peak", "negotiated")
COLUMNS = ["month", "provider", *KINDS, "total", "list_cost", "missed_batch", "approximate"]
BATCH_ELIGIBLE = frozenset({"embeddings"})  # usage types that never need an answer at once
_COUNTS = ("input", "cached_input", "cache_write", "cache_write_1h", "output", "request")


@dataclass
class SavingsLine:
    """One month and provider."""

    month: dt.date
    provider: str
    saved: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(KINDS, Decimal(0)))
    list_cost: Decimal = Decimal(0)  # the row's tier at list price, cache included
    approximate: bool = False
    uses_batch: bool = False  # some usage of this provider this month ran as batch
    batch_eligible: Decimal = Decimal(0)  # what batch would have saved on eligible usage

    @property
    def missed_batch(self) -> Decimal:
        """Batch-eligible usage at the standard price while batch is used: what it missed."""
        return self.batch_eligible if self.uses_batch else Decimal(0)

    @property
    def total(self) -> Decimal:
        return sum(self.saved.values(), Decimal(0))


def savings_ledger(
    *, session: Session, start: dt.date, end: dt.date, providers: Iterable[str] = ()
) -> list[SavingsLine]:
    """The ledger for the UTC days start..end (every provider, or those named), by month and
    provider."""
    listed = PriceBook()  # catalog and corrections: the list price, no organisation override
    u = UsageRecord
    stmt = (
        select(
            Service.name,
            u.model,
            u.service_tier,
            u.day,
            u.cost_source,
            u.usage_type,
            func.sum(u.input_tokens),
            func.sum(u.cached_input_tokens),
            func.sum(u.cache_write_tokens),
            func.sum(u.cache_write_1h_tokens),
            func.sum(u.output_tokens),
            func.sum(u.requests),
            func.sum(u.billed_cost),
            func.sum(u.allocated_cost),
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(
            u.day >= start,
            u.day <= end,
            ~u.usage_type.startswith(LINE_ITEM),
            u.usage_type.not_in(sorted(NO_ESTIMATE_USAGE_TYPES)),
        )
        .group_by(Service.name, u.model, u.service_tier, u.day, u.cost_source, u.usage_type)
    )
    if names := list(providers):
        stmt = stmt.where(Service.name.in_(names))
    lines: dict[tuple[dt.date, str], SavingsLine] = {}
    for provider, model, tier, day, source, usage_type, *sums in session.execute(stmt):
        *tokens, billed, allocated = sums
        counts = dict(zip(_COUNTS, (int(n or 0) for n in tokens), strict=True))
        if not any(counts.values()):
            continue
        key = (month_start(day), provider)
        line = lines.get(key) or lines.setdefault(key, SavingsLine(key[0], provider))
        _add(line, listed, provider, model, tier.lower(), day, counts, source, billed, allocated)
        if tier.lower() == BATCH_TIER:
            line.uses_batch = True
        elif not tier and usage_type in BATCH_ELIGIBLE:
            line.batch_eligible += _batch_saving(listed, provider, model, day, counts)
    quoted = (
        select(Service.name, u.day, func.sum(u.list_cost), func.sum(u.billed_cost))
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(
            u.day >= start,
            u.day <= end,
            u.usage_type.startswith(LINE_ITEM),
            u.cost_source == CostSource.BILLED,
            u.list_cost.is_not(None),
            u.billed_cost.is_not(None),
        )
        .group_by(Service.name, u.day)
    )
    if names:
        quoted = quoted.where(Service.name.in_(names))
    for provider, day, list_amount, bill in session.execute(quoted):
        key = (month_start(day), provider)
        line = lines.get(key) or lines.setdefault(key, SavingsLine(key[0], provider))
        line.saved["negotiated"] += Decimal(list_amount or 0) - Decimal(bill or 0)
        line.list_cost += Decimal(list_amount or 0)
    return sorted(lines.values(), key=lambda s: (s.month, display_name(s.provider)))


def _add(
    line: SavingsLine,
    listed: PriceBook,
    provider: str,
    model: str,
    tier: str,
    day: dt.date,
    counts: dict[str, int],
    source: str,
    billed: Decimal | None,
    allocated: Decimal | None,
) -> None:
    standard = listed.resolve(provider, model, day, "")
    at_tier = listed.resolve(provider, model, day, tier) if tier else standard
    if standard.prices is None or at_tier.prices is None:
        return
    with_cache = _cost(standard, counts)
    tier_cost = _cost(at_tier, counts)
    if with_cache is None or tier_cost is None:
        return
    prompt = sum(counts[k] for k in ("input", "cached_input", "cache_write", "cache_write_1h"))
    uncached = _cost(standard, {"input": prompt, "output": counts["output"],
                                "request": counts["request"]})  # fmt: skip
    if uncached is not None:
        line.saved["cache"] += uncached - with_cache
    if tier in (BATCH_TIER, "flex"):
        line.saved[tier] += with_cache - tier_cost
    info = catalog_model(provider, model)
    peak = peak_prices(info, day) if info is not None and standard.varying else None
    if peak is not None:
        at_peak = _cost_at(peak, counts)
        if at_peak is not None:
            line.saved["off_peak"] += at_peak - with_cache
            line.approximate = True
    bill = allocated if source == CostSource.COVERED else billed
    if source in (CostSource.COVERED, CostSource.BILLED) and bill is not None:
        line.saved["negotiated"] += tier_cost - bill
    line.list_cost += tier_cost
    line.approximate = line.approximate or at_tier.approximate or standard.approximate


def _batch_saving(
    listed: PriceBook, provider: str, model: str, day: dt.date, counts: dict[str, int]
) -> Decimal:
    """What batch would have saved on standard-tier usage (0 where either price is unknown)."""
    standard = _cost(listed.resolve(provider, model, day, ""), counts)
    batch = _cost(listed.resolve(provider, model, day, BATCH_TIER), counts)
    return standard - batch if standard is not None and batch is not None else Decimal(0)


def _cost(resolved: Resolved, counts: dict[str, int]) -> Decimal | None:
    cost, _ = resolved.total(dict(counts))
    return cost


def _cost_at(prices: UnitPrices, counts: dict[str, int]) -> Decimal | None:
    total = Decimal(0)
    for kind, count in counts.items():
        price = getattr(prices.with_fallbacks(), kind)
        if not count:
            continue
        if price is None:
            if kind in PER_MILLION:
                return None
            continue
        total += price * count / (Decimal(1_000_000) if kind in PER_MILLION else 1)
    return total


def savings_frame(
    *, session: Session, start: dt.date, end: dt.date, providers: Iterable[str] = ()
) -> pd.DataFrame:
    """The ledger as the page shows it: one row per month and provider (display name)."""
    rows: list[dict[str, Any]] = [
        {
            "month": s.month,
            "provider": display_name(s.provider),
            **s.saved,
            "total": s.total,
            "list_cost": s.list_cost,
            "missed_batch": s.missed_batch,
            "approximate": s.approximate,
        }
        for s in savings_ledger(session=session, start=start, end=end, providers=providers)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def by_kind(lines: Iterable[SavingsLine]) -> dict[str, Decimal]:
    """What each kind saved over the lines, and the total."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        for kind, amount in line.saved.items():
            sums[kind] += amount
    return {**{k: sums[k] for k in KINDS}, "total": sum(sums.values(), Decimal(0))}
