"""The price book: list prices from genai-prices, dated corrections and organisation overrides.

What it owns:
- `price_usage` prices one usage by hand (the CLI's `price` command).
- `estimate_range` fills `usage_records.estimated_cost` and `pricing_status`, then lets
  `tracker.spend` decide `cost_source`
  for a date range, right after a sync or on request (`reprice`).
- `reprice` shows or applies the change that new overrides or corrections make to history.
- `add_override`, `list_overrides`, `remove_override` manage `price_overrides`.

Units and assumptions:
- Prices are USD per million tokens; `request` prices are USD per request.
- Our `input_tokens` is uncached input only; cache reads and cache writes (5-minute and
  1-hour) are counted apart. genai-prices' `Usage.input_tokens` is the whole prompt: the
  conversion is `catalog_usage()`.
- Usage rows are daily totals, so a per-request price tier (long-context prices) cannot be
  chosen: the base tier is used and the estimate is marked approximate. The same holds for
  time-of-day prices (the price in effect for most of the UTC day is used).
- Precedence: explicit organisation price > organisation discount > list price (catalog, or a
  correction from `price_corrections.json` where the catalog misses a documented change).
- A model the book cannot price has no estimate (NULL, status `unpriced`), never $0.
- All arithmetic is `Decimal`; amounts are rounded to 6 decimals only when stored.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices, TimeOfDateConstraint
from sqlalchemy import BigInteger, Column, MetaData, Numeric, String, Table, select, text
from sqlalchemy import insert as sa_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tracker import audit
from tracker.errors import InvalidInput, NotFound
from tracker.models import PROVIDERS, Account, PriceOverride, Service, UsageRecord
from tracker.spend import billed_days, cost_source_of

log = logging.getLogger(__name__)

CATALOG_VERSION = genai_prices.__version__
CURRENCY = "USD"
STORE_QUANTUM = Decimal("0.000001")  # NUMERIC(18, 6)
STORE_PLACES = 6
# Exact decimal context: scaling by powers of ten must never round.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
CORRECTIONS_PATH = Path(__file__).with_name("price_corrections.json")

# Our provider names -> genai-prices provider ids (the same unless listed).
CATALOG_PROVIDER_IDS = {"github_copilot": "github-copilot"}
# Service tiers that mean "the standard price".
STANDARD_TIERS = frozenset({"", "default", "standard", "auto", "on_demand"})
BATCH_TIER = "batch"
# Rows that are a fee, not metered usage: the billed cost is the cost (Copilot seats).
NO_ESTIMATE_USAGE_TYPES = frozenset({"seats"})
TOKEN_KINDS = ("input", "cached_input", "cache_write", "cache_write_1h", "output")


# --- value objects ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnitPrices:
    """Unit prices used: USD per million tokens, and USD per request; None = no price known."""

    input: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    output: Decimal | None = None
    request: Decimal | None = None

    def scaled(self, factor: Decimal) -> UnitPrices:
        """These prices multiplied by `factor` (a discount or a batch multiplier)."""
        return UnitPrices(
            *(None if getattr(self, k) is None else getattr(self, k) * factor for k in _FIELDS)
        )

    def with_fallbacks(self) -> UnitPrices:
        """Fill missing cache prices the way genai-prices does: reads and writes at input."""
        cached = self.cached_input if self.cached_input is not None else self.input
        write = self.cache_write if self.cache_write is not None else self.input
        write_1h = self.cache_write_1h if self.cache_write_1h is not None else write
        return replace(self, cached_input=cached, cache_write=write, cache_write_1h=write_1h)

    def as_json(self) -> dict[str, str | None]:
        return {
            **{f"{k}_per_mtok": dec_str(getattr(self, k)) for k in TOKEN_KINDS},
            "request": dec_str(self.request),
        }


_FIELDS = (*TOKEN_KINDS, "request")


@dataclass(frozen=True)
class Resolved:
    """The prices for one (provider, model, day, tier): cached by the book."""

    prices: UnitPrices | None
    source: str  # catalog | correction | override | discount | none
    approximate: bool = False
    model_id: str | None = None
    notes: tuple[str, ...] = ()
    reason: str | None = None  # why there is no price
    # Exact integer arithmetic for the hot path: every unit price (per single token, in
    # TOKEN_KINDS order, then per request) as an integer count of 10**exponent dollars.
    int_prices: tuple[int | None, ...] = field(init=False, repr=False, compare=False)
    exponent: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        units: list[Decimal | None] = [None] * (len(TOKEN_KINDS) + 1)
        if self.prices is not None:
            units = [
                None if (p := getattr(self.prices, k)) is None else p.scaleb(-6, EXACT)
                for k in TOKEN_KINDS
            ] + [self.prices.request]
        exponent = min((int(u.as_tuple().exponent) for u in units if u is not None), default=0)
        ints = tuple(None if u is None else int(u.scaleb(-exponent, EXACT)) for u in units)
        object.__setattr__(self, "int_prices", ints)
        object.__setattr__(self, "exponent", exponent)

    def total(
        self, i: int, c: int, w: int, w1: int, o: int, requests: int
    ) -> tuple[int | None, str | None]:
        """The exact cost in units of 10**exponent dollars, or None and why."""
        if self.prices is None:
            return None, self.reason
        p = self.int_prices
        total = 0
        for k, count in enumerate((i, c, w, w1, o)):
            if count:
                price = p[k]
                if price is None:
                    return None, f"no {TOKEN_KINDS[k].replace('_', ' ')} price for this model"
                total += price * count
        if requests and p[5] is not None:
            total += p[5] * requests
        return total, None


@dataclass(frozen=True)
class PriceQuote:
    """One priced usage: `estimated_cost` is None when it cannot be priced (never $0)."""

    estimated_cost: Decimal | None
    currency: str
    priced: bool
    approximate: bool
    unit_prices: UnitPrices | None
    source: str
    model_id: str | None = None
    notes: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def status(self) -> str:
        """The `usage_records.pricing_status` this quote stands for."""
        if not self.priced:
            return "unpriced"
        return "approximate" if self.approximate else "priced"

    def as_json(self) -> dict[str, Any]:
        return {
            "estimated_cost": dec_str(self.estimated_cost),
            "currency": self.currency,
            "priced": self.priced,
            "approximate": self.approximate,
            "status": self.status,
            "source": self.source,
            "catalog_model": self.model_id,
            "unit_prices": None if self.unit_prices is None else self.unit_prices.as_json(),
            "notes": list(self.notes),
            "reason": self.reason,
            "catalog_version": CATALOG_VERSION,
        }


@dataclass
class EstimateSummary:
    """What `estimate_range` did."""

    rows: int = 0
    updated: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    # (provider, model) -> unpriced token count
    unpriced_tokens: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: float = 0.0


# --- corrections (data, loaded lazily) --------------------------------------------------


@dataclass(frozen=True)
class PriceChange:
    provider: str
    models: frozenset[str]
    valid_from: dt.date
    valid_to: dt.date | None
    prices: UnitPrices
    source: str

    def applies(self, provider: str, names: Iterable[str], day: dt.date) -> bool:
        return (
            provider == self.provider
            and any(n in self.models for n in names)
            and self.valid_from <= day
            and (self.valid_to is None or day < self.valid_to)
        )


@dataclass(frozen=True)
class Corrections:
    batch_multipliers: dict[str, Decimal]
    price_changes: tuple[PriceChange, ...]


@cache
def load_corrections(path: Path = CORRECTIONS_PATH) -> Corrections:
    """Read `price_corrections.json` once (it is data in the repository, not code)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    batch = {e["provider"]: Decimal(e["multiplier"]) for e in raw.get("batch_discounts", [])}
    changes = tuple(
        PriceChange(
            provider=e["provider"],
            models=frozenset(m.lower() for m in e["models"]),
            valid_from=dt.date.fromisoformat(e["valid_from"]),
            valid_to=dt.date.fromisoformat(e["valid_to"]) if e.get("valid_to") else None,
            prices=UnitPrices(**{k: Decimal(v) for k, v in e["prices"].items()}),
            source=e["source"],
        )
        for e in raw.get("price_changes", [])
    )
    return Corrections(batch, changes)


# --- the catalog ------------------------------------------------------------------------


def catalog_usage(
    *,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
    output_tokens: int = 0,
) -> genai_prices.Usage:
    """Convert our counts (uncached input apart) to genai-prices' (input = whole prompt)."""
    writes = cache_write_tokens + cache_write_1h_tokens
    return genai_prices.Usage(
        input_tokens=input_tokens + cached_tokens + writes,
        cache_read_tokens=cached_tokens,
        cache_write_tokens=writes,
        cache_write_1h_tokens=cache_write_1h_tokens,
        output_tokens=output_tokens,
    )


@lru_cache(maxsize=4096)
def _catalog_model(provider: str, model: str) -> ModelInfo | None:
    """The catalog's model for our provider name and the provider's model name, if any."""
    if not model:
        return None
    try:
        _, info = get_snapshot().find_provider_model(
            model, None, CATALOG_PROVIDER_IDS.get(provider, provider), None
        )
    except LookupError:
        return None
    return info


def _day_timestamps(info: ModelInfo, day: dt.date) -> list[dt.datetime]:
    # genai-prices needs a timezone-aware datetime (a date crashes it). A day is priced at
    # noon UTC unless the model has time-of-day prices: then every half hour is sampled.
    has_time_of_day = isinstance(info.prices, list) and any(
        isinstance(p.constraint, TimeOfDateConstraint) for p in info.prices
    )
    midnight = dt.datetime.combine(day, dt.time(0, 15), tzinfo=dt.UTC)
    if not has_time_of_day:
        return [dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)]
    return [midnight + dt.timedelta(minutes=30 * i) for i in range(48)]


def _variant_active(info: ModelInfo, when: dict[str, str], at: dt.datetime) -> bool:
    return any(
        v.when == when
        and any(value is not None for value in v.prices.__dict__.values())
        and (v.constraint is None or v.constraint.active(at))
        for v in info.price_variants or ()
    )


def _unit_prices(mp: ModelPrice) -> tuple[UnitPrices, bool]:
    """Our unit prices from a catalog price set; True if a tier had to be ignored."""
    tiered = False

    def base(*keys: str) -> Decimal | None:
        nonlocal tiered
        for key in keys:
            value = getattr(mp, key, None)
            if isinstance(value, TieredPrices):
                tiered = True
                return value.base
            if value is not None:
                return Decimal(value)
        return None

    requests_k = base("requests_kcount")
    prices = UnitPrices(
        input=base("input_mtok"),
        cached_input=base("cache_read_mtok"),
        cache_write=base("cache_write_mtok", "cache_write_5m_mtok"),
        cache_write_1h=base("cache_write_1h_mtok"),
        output=base("output_mtok"),
        request=None if requests_k is None else requests_k / 1000,
    )
    return prices, tiered


def _catalog_prices(
    info: ModelInfo, day: dt.date, context: dict[str, str] | None
) -> tuple[UnitPrices, bool, list[str]]:
    """List prices for a day: (prices, approximate, notes)."""
    notes: list[str] = []
    stamps = _day_timestamps(info, day)
    approximate = len(stamps) > 1
    if approximate:
        sampled = [info.get_prices(ts, context) for ts in stamps]
        counts = Counter(repr(mp) for mp in sampled)
        chosen = next(mp for mp in sampled if repr(mp) == counts.most_common(1)[0][0])
        notes.append("time-of-day prices: priced at the price in effect most of the UTC day")
    else:
        chosen = info.get_prices(stamps[0], context)
    prices, tiered = _unit_prices(chosen)
    if tiered:
        approximate = True
        notes.append("price tiers (e.g. long context) need per-request counts: base tier used")
    return prices, approximate, notes


# --- overrides --------------------------------------------------------------------------


@dataclass(frozen=True)
class OverrideView:
    """A price override as shown and passed around (detached from the session)."""

    id: int
    provider: str
    model: str | None
    kind: str
    input_price: Decimal | None
    cached_input_price: Decimal | None
    cache_write_price: Decimal | None
    cache_write_1h_price: Decimal | None
    output_price: Decimal | None
    request_price: Decimal | None
    discount_pct: Decimal | None
    valid_from: dt.date
    valid_to: dt.date | None
    note: str | None
    created_by: str | None

    @classmethod
    def of(cls, o: PriceOverride) -> OverrideView:
        return cls(
            id=o.id,
            provider=o.provider,
            model=o.model,
            kind=o.kind,
            input_price=o.input_price,
            cached_input_price=o.cached_input_price,
            cache_write_price=o.cache_write_price,
            cache_write_1h_price=o.cache_write_1h_price,
            output_price=o.output_price,
            request_price=o.request_price,
            discount_pct=o.discount_pct,
            valid_from=o.valid_from,
            valid_to=o.valid_to,
            note=o.note,
            created_by=o.created_by,
        )

    def active(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def matches(self, provider: str, names: Iterable[str]) -> bool:
        if self.provider != provider:
            return False
        return self.model is None or self.model.lower() in set(names)

    @property
    def unit_prices(self) -> UnitPrices:
        return UnitPrices(
            input=self.input_price,
            cached_input=self.cached_input_price,
            cache_write=self.cache_write_price,
            cache_write_1h=self.cache_write_1h_price,
            output=self.output_price,
            request=self.request_price,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "model": self.model,
            "kind": self.kind,
            "input_price": dec_str(self.input_price),
            "cached_input_price": dec_str(self.cached_input_price),
            "cache_write_price": dec_str(self.cache_write_price),
            "cache_write_1h_price": dec_str(self.cache_write_1h_price),
            "output_price": dec_str(self.output_price),
            "request_price": dec_str(self.request_price),
            "discount_pct": dec_str(self.discount_pct),
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "note": self.note,
            "created_by": self.created_by,
        }


def _pick(candidates: list[OverrideView]) -> OverrideView | None:
    # A model-specific override beats a provider-wide one; then the latest start, then the
    # newest row.
    if not candidates:
        return None
    return max(candidates, key=lambda o: (o.model is not None, o.valid_from, o.id))


# --- the book ---------------------------------------------------------------------------


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
        info = _catalog_model(provider, model)
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
            if batch and _variant_active(info, {"processing": "batch"}, at):
                context = {"processing": "batch"}
            elif tier not in STANDARD_TIERS and not batch:
                if _variant_active(info, {"service_tier": tier}, at):
                    context = {"service_tier": tier}
            standard, approximate, more = _catalog_prices(info, day, None)
            listed = standard
            if context is not None:
                listed, approximate, more = _catalog_prices(info, day, context)
                tier_done = True
            notes.extend(more)
            source = "catalog"

        # 2. organisation overrides: explicit price > discount > list price.
        candidates = [
            o
            for o in self._by_provider.get(provider, ())
            if o.active(day) and o.matches(provider, names)
        ]
        explicit = _pick([o for o in candidates if o.kind == "price"])
        discount = _pick([o for o in candidates if o.kind == "discount"])
        prices: UnitPrices | None
        if explicit is not None:
            # An explicit price is a standard-tier price: kinds it leaves empty keep the
            # standard list price, and the tier (batch) is applied below to all of them.
            own = explicit.unit_prices
            base = standard or UnitPrices()
            prices = UnitPrices(
                *(
                    getattr(own, k) if getattr(own, k) is not None else getattr(base, k)
                    for k in _FIELDS
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
        if usage_type.startswith("cost:"):
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


# --- pricing stored usage ---------------------------------------------------------------

_tmp_meta = MetaData()
_TMP = Table(
    "tmp_pricing_updates",
    _tmp_meta,
    Column("id", BigInteger, primary_key=True),
    Column("estimated_cost", Numeric(18, 6)),
    Column("pricing_status", String(16)),
    Column("cost_source", String(16)),
    prefixes=["TEMPORARY"],
)
# Rows read and priced per round trip: at 50,000 the worker's peak RSS in a 1M-row back-fill
# was 296 MB (target < 300), at 20,000 it is 220 MB, at the same speed.
CHUNK_SIZE = 20_000
COPY_NULL = "\\N"  # NULL in PostgreSQL COPY text format


def row_outcome(
    book: PriceBook,
    *,
    provider: str,
    model: str,
    day: dt.date,
    usage_type: str,
    service_tier: str,
    tokens: tuple[int, int, int, int, int],
    requests: int,
    other_units: Decimal,
    billed: bool = False,
) -> tuple[Decimal | None, str]:
    """(estimated_cost rounded for storage or None, pricing_status) for one stored row."""
    return book.outcome(
        provider,
        model,
        day,
        usage_type,
        service_tier,
        *tokens,
        requests,
        other_units,
        Decimal(0) if billed else None,
    )


def estimate_range(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    account_ids: list[int] | None = None,
    book: PriceBook | None = None,
) -> EstimateSummary:
    """Price every usage row with `start <= day <= end` (all accounts if `account_ids` is None).

    Sets `estimated_cost` (NULL when unpriceable, never $0 for an unknown model),
    `pricing_status`, then `cost_source` by the rule of `tracker.spend`; writes only rows
    that change, in the caller's transaction. `billed_cost` is never touched.
    """
    return _price_stored(
        session=session, start=start, end=end, account_ids=account_ids, book=book, write=True
    )


OnRow = Callable[[dt.date, Decimal | None, Decimal | None, str, str], None]


def _price_stored(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    account_ids: list[int] | None,
    book: PriceBook | None,
    write: bool,
    on_row: OnRow | None = None,
) -> EstimateSummary:
    """Price stored rows in one streamed read; write changes if `write`; tell `on_row`.

    `on_row(day, old_cost, new_cost, old_status, new_status)` sees every row. Changed rows
    are staged in a temporary table while reading (never the table being read) and applied
    with one UPDATE ... FROM at the end.
    """
    if end < start:
        raise InvalidInput("the end date is before the start date")
    started = time.perf_counter()
    session.flush()
    book = book or PriceBook.from_db(session)
    summary = EstimateSummary()
    if account_ids is not None and not account_ids:
        return summary
    u = UsageRecord
    stmt = (
        select(
            u.id,
            Service.name,
            u.model,
            u.day,
            u.usage_type,
            u.service_tier,
            u.input_tokens,
            u.cached_input_tokens,
            u.cache_write_tokens,
            u.cache_write_1h_tokens,
            u.output_tokens,
            u.requests,
            u.other_units,
            u.billed_cost,
            u.estimated_cost,
            u.pricing_status,
            u.cost_source,
            u.account_id,
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= start, u.day <= end)
    )
    if account_ids is not None:
        stmt = stmt.where(u.account_id.in_(account_ids))

    unpriced: dict[tuple[str, str], int] = defaultdict(int)
    by_status: Counter[str] = summary.by_status
    connection = session.connection()  # Core rows: no ORM overhead per row
    staged = False
    outcome = book.outcome
    # Which amount counts depends on the whole account-day (tracker.spend): know the billed
    # days first, so the source is written with the estimate in one pass.
    days_billed = billed_days(connection, start=start, end=end, account_ids=account_ids)
    # Streamed (a server-side cursor on PostgreSQL): bounded memory for a million rows.
    result = connection.execute(stmt.execution_options(stream_results=True, yield_per=CHUNK_SIZE))
    for partition in result.partitions():
        pending: list[tuple[Any, ...]] = []
        rows: list[Any] = list(partition)
        for row in rows:
            rid, provider, model, day, usage_type, tier, i, c, w, w1, o, n, other, billed = row[:14]
            old_cost, old_status, old_source, account_id = row[14:]
            cost, status = outcome(
                provider, model, day, usage_type, tier, i, c, w, w1, o, n, other, billed
            )
            by_status[status] += 1
            if status == "unpriced":
                unpriced[(provider, model)] += (i or 0) + (c or 0) + (w or 0) + (w1 or 0) + (o or 0)
            if on_row is not None:
                on_row(day, old_cost, cost, old_status, status)
            source = cost_source_of(billed, cost, (account_id, day) in days_billed)
            if cost != old_cost or status != old_status or source != old_source:
                pending.append((rid, cost, status, source))
        summary.rows += len(rows)
        summary.updated += len(pending)
        if write and pending:
            _stage(connection, pending, create=not staged)
            staged = True
    if staged:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"ANALYZE {_TMP.name}"))  # temp tables have no stats
        connection.execute(
            text(
                "UPDATE usage_records SET estimated_cost = t.estimated_cost, "
                "pricing_status = t.pricing_status, cost_source = t.cost_source "
                f"FROM {_TMP.name} AS t WHERE usage_records.id = t.id"
            )
        )
        connection.execute(text(f"DROP TABLE {_TMP.name}"))
        _expire_usage(session)
    summary.unpriced_tokens = dict(unpriced)
    summary.seconds = time.perf_counter() - started
    log.info(
        "priced %d usage rows (%d %s) in %.2fs: %s",
        summary.rows,
        summary.updated,
        "changed" if write else "would change",
        summary.seconds,
        dict(summary.by_status),
    )
    return summary


def _stage(connection: Connection, pending: list[tuple[Any, ...]], *, create: bool) -> None:
    """Add changed rows (id, estimated_cost, pricing_status, cost_source) to the temp table.

    The driver's own bulk insert is used where there is one: row-by-row statements are too
    slow for a million rows.
    """
    if create:
        _TMP.create(connection, checkfirst=False)
    dialect = connection.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        # COPY is several times faster than multi-row INSERTs for a million rows. Values
        # are ids, decimals and fixed status words: nothing needs escaping.
        buffer = io.StringIO(
            "".join(
                f"{r}\t{COPY_NULL if c is None else c}\t{st}\t{src}\n" for r, c, st, src in pending
            )
        )
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor: Any = raw.cursor()
        try:
            cursor.copy_expert(f"COPY {_TMP.name} FROM STDIN", buffer)
        finally:
            cursor.close()
    elif dialect.name == "sqlite":
        # sqlite3 cannot bind Decimal; the NUMERIC column converts the text exactly as
        # SQLAlchemy's own binding would.
        connection.exec_driver_sql(
            f"INSERT INTO {_TMP.name} VALUES (?, ?, ?, ?)",
            [(r, None if c is None else str(c), st, src) for r, c, st, src in pending],
        )
    else:
        keys = ("id", "estimated_cost", "pricing_status", "cost_source")
        connection.execute(sa_insert(_TMP), [dict(zip(keys, p, strict=True)) for p in pending])


def _expire_usage(session: Session) -> None:
    # The UPDATE went around the ORM: make loaded rows re-read their priced columns.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, UsageRecord):
            session.expire(obj, ["estimated_cost", "pricing_status", "cost_source"])


# --- helpers ----------------------------------------------------------------------------


def dec_str(value: Decimal | None) -> str | None:
    """A Decimal as a plain string without exponent or trailing zeros (exact)."""
    return None if value is None else format(value.normalize(), "f")


def parse_decimal(raw: str | Decimal | int | None, what: str) -> Decimal | None:
    """A non-negative Decimal from user input (None stays None)."""
    if raw is None or raw == "":
        return None
    try:
        value = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise InvalidInput(f"{what} must be a number, not {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"{what} must be zero or more")
    return value


# --- re-pricing history -----------------------------------------------------------------


@dataclass(frozen=True)
class RepriceDay:
    """One day's estimated total (USD) before and after re-pricing."""

    day: dt.date
    old_estimated: Decimal
    new_estimated: Decimal
    rows_changed: int
    old_unpriced_rows: int
    new_unpriced_rows: int

    @property
    def change(self) -> Decimal:
        return self.new_estimated - self.old_estimated

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "old_estimated": dec_str(self.old_estimated),
            "new_estimated": dec_str(self.new_estimated),
            "change": dec_str(self.change),
            "rows_changed": self.rows_changed,
            "old_unpriced_rows": self.old_unpriced_rows,
            "new_unpriced_rows": self.new_unpriced_rows,
        }


@dataclass(frozen=True)
class RepriceReport:
    """What re-pricing changes (dry run) or changed: per day, and in total."""

    start: dt.date
    end: dt.date
    dry_run: bool
    days: list[RepriceDay]
    rows: int
    rows_changed: int

    @property
    def old_total(self) -> Decimal:
        return sum((d.old_estimated for d in self.days), Decimal(0))

    @property
    def new_total(self) -> Decimal:
        return sum((d.new_estimated for d in self.days), Decimal(0))

    @property
    def changed_days(self) -> list[RepriceDay]:
        return [d for d in self.days if d.rows_changed]

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "dry_run": self.dry_run,
            "rows": self.rows,
            "rows_changed": self.rows_changed,
            "old_total": dec_str(self.old_total),
            "new_total": dec_str(self.new_total),
            "change": dec_str(self.new_total - self.old_total),
            "days": [d.as_json() for d in self.days],
        }


def reprice(
    *,
    session: Session,
    start: dt.date,
    end: dt.date,
    dry_run: bool,
    actor: str,
    account_ids: list[int] | None = None,
) -> RepriceReport:
    """Re-price stored usage in [start, end] with today's book; per-day old vs new totals.

    With `dry_run` nothing is written. Otherwise the change is applied in the caller's
    transaction and audited. `billed_cost` is never changed.
    """
    old: dict[dt.date, Decimal] = defaultdict(Decimal)
    new: dict[dt.date, Decimal] = defaultdict(Decimal)
    changed: Counter[dt.date] = Counter()
    old_unpriced: Counter[dt.date] = Counter()
    new_unpriced: Counter[dt.date] = Counter()

    def on_row(
        day: dt.date, old_cost: Decimal | None, cost: Decimal | None, was: str, now: str
    ) -> None:
        old[day] += old_cost or 0
        new[day] += cost or 0
        if old_cost != cost or was != now:
            changed[day] += 1
        old_unpriced[day] += was == "unpriced"
        new_unpriced[day] += now == "unpriced"

    summary = _price_stored(
        session=session,
        start=start,
        end=end,
        account_ids=account_ids,
        book=None,
        write=not dry_run,
        on_row=on_row,
    )
    days = [
        RepriceDay(d, old[d], new[d], changed[d], old_unpriced[d], new_unpriced[d])
        for d in sorted(old)
    ]
    report = RepriceReport(start, end, dry_run, days, summary.rows, summary.updated)
    if not dry_run:
        audit.record(
            session=session,
            actor=actor,
            action="pricing.reprice",
            target=f"{start.isoformat()}..{end.isoformat()}",
            rows=report.rows,
            rows_changed=report.rows_changed,
            old_total=dec_str(report.old_total),
            new_total=dec_str(report.new_total),
            changed_days=[d.day.isoformat() for d in report.changed_days],
            catalog_version=CATALOG_VERSION,
        )
    return report


# --- managing overrides -----------------------------------------------------------------

PRICE_FIELDS = (
    "input_price",
    "cached_input_price",
    "cache_write_price",
    "cache_write_1h_price",
    "output_price",
    "request_price",
)


def add_override(
    *,
    session: Session,
    provider: str,
    model: str | None,
    kind: str,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    input_price: Decimal | str | None = None,
    cached_input_price: Decimal | str | None = None,
    cache_write_price: Decimal | str | None = None,
    cache_write_1h_price: Decimal | str | None = None,
    output_price: Decimal | str | None = None,
    request_price: Decimal | str | None = None,
    discount_pct: Decimal | str | None = None,
    note: str | None = None,
    actor: str,
) -> OverrideView:
    """Add an organisation price (USD per million tokens / per request) or a % discount.

    `model` None means every model of the provider (discounts only). `valid_to` is
    exclusive. History is not re-priced here: run `reprice` for the affected dates.
    """
    if provider not in PROVIDERS:
        raise InvalidInput(f"unknown provider {provider!r}; use one of {', '.join(PROVIDERS)}")
    model = (model or "").strip() or None
    if valid_to is not None and valid_to <= valid_from:
        raise InvalidInput("the end date (exclusive) must be after the start date")
    raw = {
        "input_price": input_price,
        "cached_input_price": cached_input_price,
        "cache_write_price": cache_write_price,
        "cache_write_1h_price": cache_write_1h_price,
        "output_price": output_price,
        "request_price": request_price,
    }
    prices = {k: parse_decimal(v, k.replace("_", " ")) for k, v in raw.items()}
    pct = parse_decimal(discount_pct, "discount")
    if kind == "price":
        if model is None:
            raise InvalidInput("an explicit price needs a model; use a discount for all models")
        if all(v is None for v in prices.values()):
            raise InvalidInput("give at least one price (e.g. input and output per million)")
        if pct is not None:
            raise InvalidInput("a price override takes prices, not a discount")
    elif kind == "discount":
        if pct is None or not 0 < pct <= 100:
            raise InvalidInput("a discount needs a percentage above 0 and at most 100")
        if any(v is not None for v in prices.values()):
            raise InvalidInput("a discount override takes a percentage, not prices")
    else:
        raise InvalidInput("kind must be 'price' or 'discount'")

    same = session.scalars(
        select(PriceOverride).where(
            PriceOverride.provider == provider,
            PriceOverride.kind == kind,
            PriceOverride.model.is_(None) if model is None else PriceOverride.model == model,
        )
    )
    for other in same:
        if (other.valid_to is None or valid_from < other.valid_to) and (
            valid_to is None or other.valid_from < valid_to
        ):
            raise InvalidInput(
                f"overlaps {kind} override #{other.id} ({other.valid_from} to "
                f"{other.valid_to or 'open'}); remove it or choose other dates"
            )
    row = PriceOverride(
        provider=provider,
        model=model,
        kind=kind,
        discount_pct=pct,
        valid_from=valid_from,
        valid_to=valid_to,
        note=(note or "").strip() or None,
        created_by=actor,
        **prices,
    )
    session.add(row)
    session.flush()
    view = OverrideView.of(row)
    audit.record(
        session=session,
        actor=actor,
        action="price_override.add",
        target=f"{provider}/{model or '*'}",
        **view.as_json(),
    )
    return view


def list_overrides(*, session: Session, provider: str | None = None) -> list[OverrideView]:
    """Every price override (optionally of one provider), by provider, model and start."""
    stmt = select(PriceOverride).order_by(
        PriceOverride.provider, PriceOverride.model, PriceOverride.valid_from, PriceOverride.id
    )
    if provider is not None:
        stmt = stmt.where(PriceOverride.provider == provider)
    return [OverrideView.of(o) for o in session.scalars(stmt)]


def remove_override(*, session: Session, override_id: int, actor: str) -> OverrideView:
    """Delete one override (audited). History keeps its prices until re-priced."""
    row = session.get(PriceOverride, override_id)
    if row is None:
        raise NotFound(f"no price override #{override_id}; see `prices override list`")
    view = OverrideView.of(row)
    session.delete(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="price_override.remove",
        target=f"{view.provider}/{view.model or '*'}",
        **view.as_json(),
    )
    return view
