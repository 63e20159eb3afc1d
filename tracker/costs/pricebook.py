"""The price book: list prices, dated corrections and overrides resolved for one usage.

- Precedence: organisation override (explicit price > discount) > correction (dated, from
  `price_corrections.json`) > catalog (genai-prices). An alias correction prices a model as
  another one; a retired name has no price.
- Usage rows are daily totals: a per-request price tier (long-context prices) or a
  time-of-day price cannot be chosen, so the base tier / the price in force most of the day
  is used, and the row is flagged approximate only when its usage could have met another
  price (`Resolved.approximate_for`).
- A model the book cannot price has no estimate (NULL, status `unpriced`), never $0.
- `price_usage` prices one usage by hand (the CLI's `price` command).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.core.units import dec_str
from tracker.costs.catalog import catalog_model, catalog_prices, variant_active
from tracker.costs.corrections import Corrections, Dated, load_corrections
from tracker.costs.overrides import OverrideView, pick_override
from tracker.costs.prices import (
    BATCH_TIER,
    CURRENCY,
    EXACT,
    FALLBACKS,
    NO_ESTIMATE_USAGE_TYPES,
    PER_HOUR,
    PER_MILLION,
    SIZED_REQUEST_KINDS,
    STANDARD_TIERS,
    STORE_PLACES,
    STORE_QUANTUM,
    TOKEN_KINDS,
    TOOL_KINDS,
    UNIT_FIELDS,
    PriceQuote,
    Resolved,
    UnitPrices,
    usage_counts,
)
from tracker.models import LINE_ITEM, PriceOverride
from tracker.models.usage_kinds import DETAIL_KINDS
from tracker.providers.registry import PROVIDERS


@dataclass
class _Listed:
    """List prices for one (provider, model, day, tier), before organisation overrides."""

    standard: UnitPrices | None = None  # the standard tier's
    listed: UnitPrices | None = None  # the row's tier's, where known (then `tier_done`)
    tier_done: bool = False
    source: str = "none"
    approximate: bool = False
    varying: set[str] = field(default_factory=set)
    tiered: set[str] = field(default_factory=set)
    tier_start: int | None = None
    model_id: str | None = None
    notes: list[str] = field(default_factory=list)


class PriceBook:
    """Resolves unit prices per (provider, model, day, tier), cached; prices usages."""

    def __init__(
        self, overrides: Sequence[OverrideView] = (), corrections: Corrections | None = None
    ) -> None:
        self.overrides = list(overrides)
        self.corrections = load_corrections() if corrections is None else corrections
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

    # --- resolving ----------------------------------------------------------------------

    def _list_prices(self, provider: str, model: str, day: dt.date, tier: str) -> _Listed:
        """Step 1: the list price, from a correction or the catalog, for the standard tier
        and the row's tier."""
        info = catalog_model(provider, model)
        names = {model.lower()} | ({info.id.lower()} if info else set())
        out = _Listed(model_id=info.id if info else None)
        change = self.corrections.price_change(provider, names, day)
        if change is not None and not change.overlay:
            out.standard = change.prices
            out.source = "correction"
            out.notes.append(_cited("corrected list price", change))
        elif info is not None:
            cat = catalog_prices(info, day, None, provider)
            out.standard, out.source = cat.prices, "catalog"
            out.approximate = cat.approximate
            out.varying, out.tiered, out.tier_start = (
                set(cat.varying),
                set(cat.tiered),
                cat.tier_start,
            )
            out.notes.extend(cat.notes)
            if change is not None:
                out.standard = cat.prices.merged(change.prices)
                out.varying -= _given(change.prices)
                out.source = "correction"
                out.notes.append(_cited("corrected list price", change))
        out.listed = out.standard
        if tier in STANDARD_TIERS:
            return out
        # The row's tier: the catalog's price for it where it has one that day, then a
        # correction for it.
        if info is not None:
            at = dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)
            when = {"processing": "batch"} if tier == BATCH_TIER else {"service_tier": tier}
            if variant_active(info, when, at):
                cat = catalog_prices(info, day, when, provider)
                out.listed, out.tier_done = cat.prices, True
                out.varying, out.tiered, out.tier_start = (
                    set(cat.varying),
                    set(cat.tiered),
                    cat.tier_start,
                )
                if change is not None and out.source == "correction":
                    out.source = "catalog"  # the standard tier's correction is not the tier's
        tier_change = self.corrections.price_change(provider, names, day, tier)
        if tier_change is not None and (out.listed is not None or not tier_change.overlay):
            base = out.listed if tier_change.overlay and out.listed is not None else UnitPrices()
            out.listed = base.merged(tier_change.prices)
            out.tier_done = True
            out.source = "correction"
            out.varying -= _given(tier_change.prices)
            out.notes.append(_cited(f"corrected {tier} price", tier_change))
        return out

    def _resolve(self, provider: str, model: str, day: dt.date, tier: str) -> Resolved:
        tier = tier.lower()
        batch = tier == BATCH_TIER
        info = catalog_model(provider, model)
        names = {model.lower()} | ({info.id.lower()} if info else set())
        alias, retired = self.corrections.alias(provider, names, day)
        if alias is not None and retired:
            return Resolved(
                None,
                "none",
                model_id=info.id if info else None,
                reason=f"{model!r} was retired after {alias.effective_to} ({alias.source})",
            )
        if alias is not None:
            found = self._list_prices(provider, alias.priced_as, day, tier)
            found.source = "correction"
            found.notes.insert(0, _cited(f"priced as {alias.priced_as}", alias))
        else:
            found = self._list_prices(provider, model, day, tier)
        notes = found.notes
        approximate = found.approximate
        varying, tiered = found.varying, found.tiered
        source = found.source

        # 2. organisation overrides: explicit price > discount > list price.
        candidates = [
            o
            for o in self._by_provider.get(provider, ())
            if o.active(day) and o.matches(provider, names)
        ]
        explicit = pick_override([o for o in candidates if o.kind == "price"])
        discount = pick_override([o for o in candidates if o.kind == "discount"])
        prices: UnitPrices | None
        tier_done = found.tier_done
        if explicit is not None:
            # An explicit price is a standard-tier price: kinds it leaves empty keep the
            # standard list price, and the tier (batch) is applied below to all of them.
            own = explicit.unit_prices
            prices = (found.standard or UnitPrices()).merged(own)
            varying, tiered = varying - _given(own), tiered - _given(own)
            if all(getattr(own, k) is not None for k in TOKEN_KINDS):
                approximate = False  # nothing left from the (approximated) list price
            source, tier_done = "override", False
            notes.append(f"organisation price #{explicit.id}")
        elif (
            found.listed is not None and discount is not None and discount.discount_pct is not None
        ):
            prices = found.listed.scaled(1 - discount.discount_pct / 100)
            source = "discount"
            notes.append(f"organisation discount #{discount.id}: {dec_str(discount.discount_pct)}%")
        else:
            prices = found.listed

        if prices is None:
            reason = (
                f"{model!r} is not in the price book for {provider}"
                if model
                else "no model reported"
            )
            return Resolved(None, "none", reason=reason)

        # 3. the service tier, where neither the catalog nor a correction priced it that day.
        if batch and not tier_done:
            discount_rule = self.corrections.batch_multiplier(provider, day)
            if discount_rule is not None:
                prices = prices.scaled(discount_rule.multiplier)
                if source == "catalog":
                    source = "correction"
                notes.append(
                    f"batch: {provider} batch multiplier {discount_rule.multiplier} applied "
                    f"(source: {discount_rule.cited()})"
                )
            else:
                approximate = True
                notes.append(f"batch: no batch price known for {provider}; standard price used")
        elif not batch and tier not in STANDARD_TIERS and not tier_done:
            approximate = True
            notes.append(f"service tier {tier!r} has no known price; standard price used")

        # A price taken from another kind (FALLBACKS) varies, or is tiered, as that one does.
        for kind, other in FALLBACKS.items():
            if getattr(prices, kind) is None:
                if other in varying:
                    varying = varying | {kind}
                if other in tiered:
                    tiered = tiered | {kind}
        return Resolved(
            prices.with_fallbacks(),
            source,
            approximate=approximate,
            model_id=found.model_id,
            notes=tuple(notes),
            varying=frozenset(varying),
            tiered=frozenset(tiered),
            tier_start=found.tier_start if tiered else None,
            sized_requests=any(getattr(prices, k) is not None for k in SIZED_REQUEST_KINDS),
        )

    # --- pricing ------------------------------------------------------------------------

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
        unit_name: str | None = None,
        details: Mapping[str, int] | None = None,
    ) -> tuple[Decimal | None, str]:
        """(estimated_cost rounded for storage or None, pricing_status) for one stored row.

        The hot path of `estimate_range` (positional, no allocations beyond the result for
        rows of tokens and requests). Rows without tokens are billed-only line items
        (`cost:...`), seats, or usage metered per call, image, second, byte...: with a billed
        cost (or as seats) there is nothing to estimate; units without a price leave them
        unpriced.
        """
        if usage_type.startswith(LINE_ITEM):
            return None, "not_applicable"
        if not (i or c or w or w1 or o or details):
            if billed is not None or usage_type in NO_ESTIMATE_USAGE_TYPES:
                return None, "not_applicable"
            if not requests and not other_units:
                return None, "not_applicable"  # an empty bucket
        r = self._cache.get((provider, model, day, tier)) or self.resolve(
            provider, model, day, tier
        )
        if r.prices is None:
            return None, "unpriced"
        i, c, w, w1, o, requests = i or 0, c or 0, w or 0, w1 or 0, o or 0, requests or 0
        if not details and not other_units:
            total, _ = r.token_total(i, c, w, w1, o, requests)
            if total is None:
                return None, "unpriced"
            approximate = r.approximate or (
                bool(r.varying_at or r.tiered_at or r.sized_requests)
                and r.approximate_for_tokens((i, c, w, w1, o, requests))
            )
            return _stored(total, r.exponent), "approximate" if approximate else "priced"
        prompt = i + c + w + w1
        columns = {
            "input_tokens": i,
            "cached_input_tokens": c,
            "cache_write_tokens": w,
            "cache_write_1h_tokens": w1,
            "output_tokens": o,
            "requests": requests,
        }
        cost, status, _ = _price_counts(r, columns, details, unit_name, other_units, prompt)
        return (None if cost is None else store_amount(cost)), status

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
        details: Mapping[str, int] | None = None,
    ) -> PriceQuote:
        """Price one usage (our convention: `input_tokens` is uncached input only, and the
        token parts in `details` are parts of their column)."""
        counts = (input_tokens, cached_tokens, cache_write_tokens, cache_write_1h_tokens)
        extra = list((details or {}).values())
        if min(*counts, output_tokens, requests, *extra) < 0:
            raise InvalidInput("token, request and unit counts must be zero or more")
        unknown = sorted(set(details or {}) - set(DETAIL_KINDS))
        if unknown:
            raise InvalidInput(f"unknown usage kind(s) {', '.join(unknown)}")
        r = self.resolve(provider, model, day, tier)
        if r.prices is None:
            return PriceQuote(
                None, CURRENCY, False, False, None, r.source, r.model_id, r.notes, r.reason
            )
        columns = {
            "input_tokens": input_tokens,
            "cached_input_tokens": cached_tokens,
            "cache_write_tokens": cache_write_tokens,
            "cache_write_1h_tokens": cache_write_1h_tokens,
            "output_tokens": output_tokens,
            "requests": requests,
        }
        cost, status, reason = _price_counts(r, columns, details or {}, None, None, sum(counts))
        if cost is None:
            return PriceQuote(
                None, CURRENCY, False, False, r.prices, r.source, r.model_id, r.notes, reason
            )
        return PriceQuote(
            cost,
            CURRENCY,
            True,
            status == "approximate",
            r.prices,
            r.source,
            r.model_id,
            r.notes + ((reason,) if reason else ()),
        )


def _given(prices: UnitPrices) -> set[str]:
    return {k for k in UNIT_FIELDS if getattr(prices, k) is not None}


def _cited(what: str, rule: Dated) -> str:
    return f"{what} (source: {rule.cited()})"


def _price_counts(
    r: Resolved,
    columns: dict[str, int],
    details: Mapping[str, int] | None,
    unit_name: str | None,
    other_units: Decimal | None,
    prompt: int,
) -> tuple[Decimal | None, str, str | None]:
    """(exact cost or None, status, why) for a usage with details or units."""
    counts, unknown, problem = usage_counts(columns, details, unit_name, other_units)
    if problem is not None:
        return None, "unpriced", problem
    cost, reason = r.total(counts)
    if cost is None:
        return None, "unpriced", reason
    prices = r.prices
    assert prices is not None
    metered = [k for k in (*TOOL_KINDS, *PER_HOUR) if counts.get(k)]
    unpriced_units = [k for k in metered if getattr(prices, k) is None]
    has_tokens = any(counts.get(k) for k in PER_MILLION)
    if unknown or unpriced_units:
        what = ", ".join(
            [k.replace("_", " ") for k in unpriced_units]
            + ([unit_name or "units"] if unknown else [])
        )
        if not has_tokens and len(unpriced_units) == len(metered):
            return None, "unpriced", f"no price for {what}"
        return cost, "approximate", f"no price for {what}: left out of the estimate"
    approximate = r.approximate_for(counts, prompt, columns.get("requests", 0))
    return cost, "approximate" if approximate else "priced", None


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
    details: Mapping[str, int] | None = None,
    overrides: Sequence[OverrideView] | PriceBook = (),
) -> PriceQuote:
    """Price one usage by hand: `input_tokens` is uncached input; cache reads/writes apart;
    `details` holds token parts (of their column) and units (`tracker.models.usage_kinds`).

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
        details=details,
    )


def store_amount(amount: Decimal) -> Decimal:
    """Round an amount for storage: 6 decimals, half up (the only rounding we do)."""
    return amount.quantize(STORE_QUANTUM, rounding=ROUND_HALF_UP, context=EXACT)
