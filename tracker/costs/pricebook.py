"""The price book: list prices, dated corrections and overrides resolved for one usage.

- Precedence: explicit organisation price > organisation discount > list price (catalog, or a
  correction from `price_corrections.json` where the catalog misses a documented change).
- Usage rows are daily totals, so a per-request price tier (long-context prices) cannot be
  chosen: the base tier is used and the estimate is marked approximate.
- A model the book cannot price has no estimate (NULL, status `unpriced`), never $0.
- `price_usage` prices one usage by hand (the CLI's `price` command).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.core.units import dec_str
from tracker.costs.catalog import catalog_model, catalog_prices, variant_active
from tracker.costs.corrections import Corrections, load_corrections
from tracker.costs.overrides import OverrideView, pick_override
from tracker.costs.prices import (
    BATCH_TIER,
    CURRENCY,
    EXACT,
    NO_ESTIMATE_USAGE_TYPES,
    STANDARD_TIERS,
    STORE_PLACES,
    STORE_QUANTUM,
    TOKEN_KINDS,
    UNIT_FIELDS,
    PriceQuote,
    Resolved,
    UnitPrices,
)
from tracker.models import LINE_ITEM, PriceOverride
from tracker.providers.registry import PROVIDERS


class PriceBook:
    """Resolves unit prices per (provider, model, day, tier), cached; prices usages."""

    def __init__(
        self, overrides: Sequence[OverrideView] = (), corrections: Corrections | None = None
    ) -> None:
        self.overrides = list(overrides)
        self.corrections = corrections or load_corrections()
        self._cache: dict[tuple[str, str, dt.date, str], Resolved] = {}
        self._by_provider: dict[str, list[OverrideView]] = defaultdict(list)
        for o in self.overrides:
            self._by_provider[o.provider].append(o)

    @classmethod
    def from_db(cls, session: Session) -> PriceBook:
        """A book with every override stored in the database."""
        rows = session.scalars(select(PriceOverride).order_by(PriceOverride.id))
        return cls([OverrideView.of(o) for o in rows])

    def resolve(self, provider: str, model: str, day: dt.date, tier: str = "") -> Resolved:
        """Unit prices for one provider, model, UTC day and service tier (cached)."""
        key = (provider, model, day, tier)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._resolve(provider, model, day, tier)
        return found

    def _resolve(self, provider: str, model: str, day: dt.date, tier: str) -> Resolved:
        info = catalog_model(provider, model)
        names = {model.lower()} | ({info.id.lower()} if info else set())
        notes: list[str] = []
        approximate = False
        tier = tier.lower()
        batch = tier == BATCH_TIER

        # 1. list price: a correction for a documented change, else the catalog. `standard`
        # is the standard-tier list price; `listed` the catalog's price for the row's tier
        # where it has one that day (then `tier_done`).
        source = "none"
        standard: UnitPrices | None = None
        listed: UnitPrices | None = None
        tier_done = False
        change = next(
            (c for c in self.corrections.price_changes if c.applies(provider, names, day)), None
        )
        if change is not None:
            standard = listed = change.prices
            source = "correction"
            notes.append(f"corrected list price (source: {change.source})")
        elif info is not None:
            at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
            context: dict[str, str] | None = None
            if batch and variant_active(info, {"processing": "batch"}, at):
                context = {"processing": "batch"}
            elif tier not in STANDARD_TIERS and not batch:
                if variant_active(info, {"service_tier": tier}, at):
                    context = {"service_tier": tier}
            standard, approximate, more = catalog_prices(info, day, None)
            listed = standard
            if context is not None:
                listed, approximate, more = catalog_prices(info, day, context)
                tier_done = True
            notes.extend(more)
            source = "catalog"

        # 2. organisation overrides: explicit price > discount > list price.
        candidates = [
            o
            for o in self._by_provider.get(provider, ())
            if o.active(day) and o.matches(provider, names)
        ]
        explicit = pick_override([o for o in candidates if o.kind == "price"])
        discount = pick_override([o for o in candidates if o.kind == "discount"])
        prices: UnitPrices | None
        if explicit is not None:
            # An explicit price is a standard-tier price: kinds it leaves empty keep the
            # standard list price, and the tier (batch) is applied below to all of them.
            own = explicit.unit_prices
            base = standard or UnitPrices()
            prices = UnitPrices(
                *(
                    getattr(own, k) if getattr(own, k) is not None else getattr(base, k)
                    for k in UNIT_FIELDS
                )
            )
            if all(getattr(own, k) is not None for k in TOKEN_KINDS):
                approximate = False  # nothing left from the (approximated) list price
            source, tier_done = "override", False
            notes.append(f"organisation price #{explicit.id}")
        elif listed is not None and discount is not None and discount.discount_pct is not None:
            prices = listed.scaled(1 - discount.discount_pct / 100)
            source = "discount"
            notes.append(f"organisation discount #{discount.id}: {dec_str(discount.discount_pct)}%")
        else:
            prices = listed

        if prices is None:
            reason = (
                f"{model!r} is not in the price book for {provider}"
                if model
                else "no model reported"
            )
            return Resolved(None, "none", reason=reason)

        # 3. the service tier, where the catalog had no price for it on that day.
        if batch and not tier_done:
            multiplier = self.corrections.batch_multipliers.get(provider)
            if multiplier is not None:
                prices = prices.scaled(multiplier)
                if source == "catalog":
                    source = "correction"
                notes.append(f"batch: {provider} batch multiplier {multiplier} applied")
            else:
                approximate = True
                notes.append(f"batch: no batch price known for {provider}; standard price used")
        elif not batch and tier not in STANDARD_TIERS and not tier_done:
            approximate = True
            notes.append(f"service tier {tier!r} has no known price; standard price used")

        return Resolved(
            prices.with_fallbacks(),
            source,
            approximate=approximate,
            model_id=info.id if info else None,
            notes=tuple(notes),
        )

    def outcome(
        self,
        provider: str,
        model: str,
        day: dt.date,
        usage_type: str,
        tier: str,
        i: int | None,
        c: int | None,
        w: int | None,
        w1: int | None,
        o: int | None,
        requests: int | None,
        other_units: Decimal | None,
        billed: Decimal | None,
    ) -> tuple[Decimal | None, str]:
        """(estimated_cost rounded for storage or None, pricing_status) for one stored row.

        The hot path of `estimate_range` (positional, no allocations beyond the result).
        Rows without tokens are billed-only line items (`cost:...`), seats, or usage metered
        per image, second, byte...: with a billed cost (or as seats) there is nothing to
        estimate; without one their cost is missing from the estimate, so they are unpriced.
        """
        if usage_type.startswith(LINE_ITEM):
            return None, "not_applicable"
        if not (i or c or w or w1 or o):
            if billed is not None or usage_type in NO_ESTIMATE_USAGE_TYPES:
                return None, "not_applicable"
            if other_units:
                return None, "unpriced"
            if not requests:
                return None, "not_applicable"  # an empty bucket
        r = self._cache.get((provider, model, day, tier)) or self.resolve(
            provider, model, day, tier
        )
        if r.prices is None:
            return None, "unpriced"
        total, _ = r.total(i or 0, c or 0, w or 0, w1 or 0, o or 0, requests or 0)
        if total is None:
            return None, "unpriced"
        status = "approximate" if r.approximate or other_units else "priced"
        return _stored(total, r.exponent), status

    def quote(
        self,
        *,
        provider: str,
        model: str,
        day: dt.date,
        input_tokens: int = 0,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
        output_tokens: int = 0,
        requests: int = 0,
        tier: str = "",
    ) -> PriceQuote:
        """Price one usage (our convention: `input_tokens` is uncached input only)."""
        counts = (input_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens)
        if min(*counts, output_tokens, requests) < 0:
            raise InvalidInput("token and request counts must be zero or more")
        r = self.resolve(provider, model, day, tier)
        cost, reason = _cost(r, (*counts, output_tokens), requests)
        if cost is None:
            return PriceQuote(
                None,
                CURRENCY,
                False,
                False,
                r.prices,
                r.source,
                r.model_id,
                r.notes,
                reason or r.reason,
            )
        return PriceQuote(
            cost, CURRENCY, True, r.approximate, r.prices, r.source, r.model_id, r.notes
        )


def _cost(
    resolved: Resolved, tokens: tuple[int, int, int, int, int], requests: int
) -> tuple[Decimal | None, str | None]:
    """Exact cost (unrounded), or None and why."""
    total, reason = resolved.total(*tokens, requests)
    if total is None:
        return None, reason
    return Decimal(total).scaleb(resolved.exponent, EXACT), None


def _stored(total: int, exponent: int) -> Decimal:
    """`total * 10**exponent` dollars rounded half up to 6 places, in integer arithmetic."""
    shift = -STORE_PLACES - exponent
    if shift <= 0:
        return Decimal(total * 10**-shift).scaleb(-STORE_PLACES)
    quotient, remainder = divmod(total, 10**shift)
    if 2 * remainder >= 10**shift:
        quotient += 1
    return Decimal(quotient).scaleb(-STORE_PLACES)


def price_usage(
    *,
    provider: str,
    model: str,
    day: dt.date,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    output_tokens: int = 0,
    requests: int = 0,
    batch: bool = False,
    service_tier: str = "",
    overrides: Sequence[OverrideView] | PriceBook = (),
) -> PriceQuote:
    """Price one usage by hand: `input_tokens` is uncached input; cache reads/writes apart.

    `overrides` is a list of `OverrideView` (e.g. `list_overrides(session=...)`) or a
    `PriceBook` to reuse its cache.
    """
    if provider not in PROVIDERS:
        raise InvalidInput(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    book = overrides if isinstance(overrides, PriceBook) else PriceBook(overrides)
    return book.quote(
        provider=provider,
        model=model,
        day=day,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        cache_write_tokens=cache_write_tokens,
        cache_write_1h_tokens=cache_write_1h_tokens,
        output_tokens=output_tokens,
        requests=requests,
        tier=BATCH_TIER if batch else service_tier,
    )


def store_amount(amount: Decimal) -> Decimal:
    """Round an amount for storage: 6 decimals, half up (the only rounding we do)."""
    return amount.quantize(STORE_QUANTUM, rounding=ROUND_HALF_UP)
