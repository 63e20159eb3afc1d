"""Price value objects shared by the catalog, the book, estimates and exports.

Prices are USD per million tokens; `request` prices are USD per request. All arithmetic is
`Decimal`; amounts are rounded to 6 decimals only when stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

import genai_prices

from tracker.core.units import dec_str

CATALOG_VERSION = genai_prices.__version__
CURRENCY = "USD"
STORE_QUANTUM = Decimal("0.000001")  # NUMERIC(18, 6)
STORE_PLACES = 6
# Exact decimal context: scaling by powers of ten must never round.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

# Service tiers that mean "the standard price".
STANDARD_TIERS = frozenset({"", "default", "standard", "auto", "on_demand"})
BATCH_TIER = "batch"
# Rows that are a fee, not metered usage: the billed cost is the cost (Copilot seats).
NO_ESTIMATE_USAGE_TYPES = frozenset({"seats"})
TOKEN_KINDS = ("input", "cached_input", "cache_write", "cache_write_1h", "output")


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
            *(None if getattr(self, k) is None else getattr(self, k) * factor for k in UNIT_FIELDS)
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


UNIT_FIELDS = (*TOKEN_KINDS, "request")


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
