"""The installed catalog against the price book, for the models that appear in usage.

`python -m tracker prices diff` answers two questions before and after a genai-prices
upgrade: where does the book (catalog + corrections + organisation overrides) price a used
model differently from the catalog alone, and by how much would the estimates of those days
change without that rule; and which corrections has the catalog caught up with (same prices
on every used day: the correction can go). Models the catalog does not know are listed with
what the book makes of them.

Read from the daily rollup: one resolution per provider, model, service tier and used day.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core.units import dec_str
from tracker.costs.catalog import catalog_model
from tracker.costs.corrections import NO_CORRECTIONS, Dated
from tracker.costs.pricebook import PriceBook
from tracker.costs.prices import (
    CATALOG_VERSION,
    FALLBACKS,
    PER_MILLION,
    PRICE_UNIT,
    UNIT_FIELDS,
    Resolved,
    UnitPrices,
)
from tracker.models import LINE_ITEM, TOKEN_COLUMNS, Account, Service, UsageDaily

# The rollup's counts -> the price they are priced at.
_COUNTED = {
    "input_tokens": "input",
    "cached_input_tokens": "cached_input",
    "cache_write_tokens": "cache_write",
    "cache_write_1h_tokens": "cache_write_1h",
    "output_tokens": "output",
    "requests": "request",
}


@dataclass(frozen=True)
class PriceDifference:
    """One price the book sets differently from the catalog over a run of used days."""

    provider: str
    model: str
    tier: str
    first_day: dt.date
    last_day: dt.date
    kind: str
    catalog: Decimal | None
    book: Decimal | None
    because: str
    # What the book's price adds to (or takes from) the estimates of those days: the rows'
    # counts of this kind times the difference (token columns and requests; parts and units
    # are not in the rollup).
    estimate_change: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "tier": self.tier,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "kind": self.kind,
            "unit": PRICE_UNIT[self.kind],
            "catalog": dec_str(self.catalog),
            "book": dec_str(self.book),
            "because": self.because,
            "estimate_change": dec_str(self.estimate_change),
        }


@dataclass(frozen=True)
class UnknownModel:
    provider: str
    model: str
    first_day: dt.date
    last_day: dt.date
    book: str  # what the book makes of it

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "book": self.book,
        }


@dataclass
class PriceDiff:
    catalog_version: str
    models: int = 0
    days: int = 0
    differences: list[PriceDifference] = field(default_factory=list)
    redundant: list[str] = field(default_factory=list)  # corrections the catalog agrees with
    unknown: list[UnknownModel] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "catalog_version": self.catalog_version,
            "models": self.models,
            "days": self.days,
            "differences": [d.as_json() for d in self.differences],
            "redundant_corrections": self.redundant,
            "unknown_models": [u.as_json() for u in self.unknown],
        }


def price_diff(*, session: Session, book: PriceBook | None = None) -> PriceDiff:
    """Compare the catalog alone with the book for every provider, model and service tier in
    usage (billed-only line items left out), day by used day."""
    book = book or PriceBook.from_db(session)
    catalog = PriceBook(corrections=NO_CORRECTIONS)
    d = UsageDaily
    stmt = (
        select(
            Service.name,
            d.model,
            d.service_tier,
            d.day,
            *[func.sum(getattr(d, c)) for c in (*TOKEN_COLUMNS, "requests")],
        )
        .join(Account, Account.id == d.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(d.model != "", ~d.usage_type.startswith(LINE_ITEM))
        .group_by(Service.name, d.model, d.service_tier, d.day)
        .order_by(Service.name, d.model, d.service_tier, d.day)
    )
    used: dict[tuple[str, str, str], list[tuple[dt.date, dict[str, int]]]] = defaultdict(list)
    for provider, model, tier, day, *sums in session.execute(stmt):
        counts = {_COUNTED[c]: int(n or 0) for c, n in zip(_COUNTED, sums, strict=True)}
        used[(provider, model, tier)].append((day, counts))
    report = PriceDiff(CATALOG_VERSION, models=len(used), days=sum(len(v) for v in used.values()))
    in_force: dict[Dated, bool] = {}  # correction -> the catalog agreed on every used day
    for (provider, model, tier), days in used.items():
        runs: list[tuple[tuple[Any, ...], dt.date, dt.date, dict[str, Decimal]]] = []
        unknown_days: list[dt.date] = []
        for day, counts in days:
            listed = catalog.resolve(provider, model, day, tier)
            ours = book.resolve(provider, model, day, tier)
            _note_corrections(book, provider, model, day, tier, listed, ours, in_force)
            if listed.prices is None:
                unknown_days.append(day)
                continue
            kinds = _differing(listed.prices, ours.prices)
            if not kinds:
                continue
            signature = (
                tuple((k, _price(listed.prices, k), _price(ours.prices, k)) for k in kinds),
                _because(ours),
            )
            change = {k: _change(listed.prices, ours.prices, k, counts.get(k)) for k in kinds}
            if runs and runs[-1][0] == signature and _next_used(days, runs[-1][2]) == day:
                sig, first, _, total = runs[-1]
                runs[-1] = (sig, first, day, {k: total[k] + change[k] for k in kinds})
            else:
                runs.append((signature, day, day, change))
        for (prices, because), first, last, total in runs:
            for kind, catalog_price, book_price in prices:
                report.differences.append(
                    PriceDifference(
                        provider,
                        model,
                        tier,
                        first,
                        last,
                        kind,
                        catalog_price,
                        book_price,
                        because,
                        total[kind] if kind in _COUNTED.values() else None,
                    )
                )
        if unknown_days:
            ours = book.resolve(provider, model, unknown_days[-1], tier)
            what = (
                f"{ours.source}: " + "; ".join(ours.prices.described()[:3])
                if ours.prices is not None
                else f"unpriced ({ours.reason})"
            )
            report.unknown.append(
                UnknownModel(provider, model, unknown_days[0], unknown_days[-1], what)
            )
    report.redundant = [
        f"{c.provider} {_subject(c)} from {c.effective_from} (source: {c.source})"
        for c, agreed in in_force.items()
        if agreed
    ]
    return report


def _price(prices: UnitPrices | None, kind: str) -> Decimal | None:
    return None if prices is None else getattr(prices, kind)


def _differing(catalog: UnitPrices, book: UnitPrices | None) -> list[str]:
    """The kinds priced differently, less those that only echo another through FALLBACKS."""
    kinds = [k for k in UNIT_FIELDS if _price(catalog, k) != _price(book, k)]
    return [
        k
        for k in kinds
        if not (
            k in FALLBACKS
            and FALLBACKS[k] in kinds
            and _price(catalog, k) == _price(catalog, FALLBACKS[k])
            and _price(book, k) == _price(book, FALLBACKS[k])
        )
    ]


def _change(catalog: UnitPrices, book: UnitPrices | None, kind: str, count: int | None) -> Decimal:
    old, new = _price(catalog, kind), _price(book, kind)
    if not count or old is None or new is None:
        return Decimal(0)
    per = Decimal(1_000_000) if kind in PER_MILLION else Decimal(1)
    return (new - old) * count / per


def _because(resolved: Resolved) -> str:
    rules = [n for n in resolved.notes if n.startswith(("corrected", "priced as", "organisation"))]
    rules += [n for n in resolved.notes if n.startswith("batch:")]
    return "; ".join(rules) or resolved.source


def _next_used(days: list[tuple[dt.date, dict[str, int]]], day: dt.date) -> dt.date | None:
    """The used day after `day` (runs join over days without usage)."""
    later = [d for d, _ in days if d > day]
    return later[0] if later else None


def _note_corrections(
    book: PriceBook,
    provider: str,
    model: str,
    day: dt.date,
    tier: str,
    listed: Resolved,
    ours: Resolved,
    in_force: dict[Dated, bool],
) -> None:
    """Record, for each correction in force on this used day, whether the catalog alone
    already gives the book's prices (then the correction adds nothing that day)."""
    info = catalog_model(provider, model)
    names = {model.lower()} | ({info.id.lower()} if info else set())
    corrections = book.corrections
    found: list[Dated] = []
    for t in {"", tier.lower()}:
        change = corrections.price_change(provider, names, day, t)
        if change is not None:
            found.append(change)
    alias, _ = corrections.alias(provider, names, day)
    if alias is not None:
        found.append(alias)
    agreed = listed.prices is not None and not _differing(listed.prices, ours.prices)
    for rule in found:
        in_force[rule] = in_force.get(rule, True) and agreed


def _subject(rule: Dated) -> str:
    models = ", ".join(sorted(getattr(rule, "models", ()))) or "every model"
    tier = getattr(rule, "tier", "")
    return f"{models}{f' ({tier})' if tier else ''}"
