"""Price value objects shared by the catalog, the book, estimates and exports.

Prices are USD per million tokens (and per million characters), per request, per tool call,
session or image, and per hour of audio (`PRICE_UNIT`). All arithmetic is exact `Decimal`
(or integer) arithmetic but for seconds priced per hour (one division, to 40 digits);
amounts are rounded to 6 decimals only when stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from typing import Any

import genai_prices

from tracker.core.units import dec_str
from tracker.models.usage_kinds import (
    SEARCH_CONTEXT_SIZES,
    SIZED_REQUESTS,
    TOKEN_PARTS,
    UNIT_OF_NAME,
    part_problems,
)

CATALOG_VERSION = genai_prices.__version__
CURRENCY = "USD"
STORE_QUANTUM = Decimal("0.000001")  # NUMERIC(18, 6)
STORE_PLACES = 6
# Exact decimal context: scaling by powers of ten must never round.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
# Seconds priced per hour: the one division, far more precise than the 6 places stored.
HOURLY = Context(prec=40)

# Service tiers that mean "the standard price".
STANDARD_TIERS = frozenset({"", "default", "standard", "auto", "on_demand"})
BATCH_TIER = "batch"
# Rows that are a fee, not metered usage: the billed cost is the cost (Copilot seats).
NO_ESTIMATE_USAGE_TYPES = frozenset({"seats"})
# Prices per million: the token columns, their parts (`tracker.models.usage_kinds`) and
# characters of speech.
TOKEN_KINDS = ("input", "cached_input", "cache_write", "cache_write_1h", "output")
PART_KINDS = (
    "input_audio",
    "cached_audio",
    "output_audio",
    "input_image",
    "cached_image",
    "output_image",
    "reasoning",
)
PER_MILLION = (*TOKEN_KINDS, *PART_KINDS, "character")
# Prices per request, per request by search context size, per tool call, per session and
# per image.
SIZED_REQUEST_KINDS = tuple(f"request_{size}" for size in SEARCH_CONTEXT_SIZES)
REQUEST_KINDS = ("request", *SIZED_REQUEST_KINDS)
TOOL_KINDS = ("web_search", "file_search", "code_interpreter", "image")
PER_UNIT = (*REQUEST_KINDS, *TOOL_KINDS)
# Price per hour of audio, counted in seconds.
PER_HOUR = ("audio_hour",)
UNIT_FIELDS = (*PER_MILLION, *PER_UNIT, *PER_HOUR)
# What each price is per, for people (`python -m tracker price`, `prices diff`).
PRICE_UNIT = {
    **{k: "per million tokens" for k in (*TOKEN_KINDS, *PART_KINDS)},
    "character": "per million characters",
    **{k: "per request" for k in REQUEST_KINDS},
    "web_search": "per call",
    "file_search": "per call",
    "code_interpreter": "per session",
    "image": "per image",
    "audio_hour": "per hour",
}
# A price the book falls back to where a model has none of its own: image tokens are input
# or output tokens unless a model prices them apart (vision input on chat models; the
# catalog's output price of an image model is its image output price), cached audio is
# audio input, reasoning is output, a request of known search context size is a request.
# Audio has no fallback to text: an audio token without an audio price leaves no estimate.
FALLBACKS = {
    "cached_input": "input",
    "cache_write": "input",
    "cache_write_1h": "cache_write",
    "input_image": "input",
    "cached_image": "cached_input",
    "output_image": "output",
    "cached_audio": "input_audio",
    "reasoning": "output",
    **{k: "request" for k in SIZED_REQUEST_KINDS},
}


@dataclass(frozen=True)
class UnitPrices:
    """Unit prices used (`PRICE_UNIT` says per what); None = no price known."""

    input: Decimal | None = None
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    output: Decimal | None = None
    input_audio: Decimal | None = None
    cached_audio: Decimal | None = None
    output_audio: Decimal | None = None
    input_image: Decimal | None = None
    cached_image: Decimal | None = None
    output_image: Decimal | None = None
    reasoning: Decimal | None = None
    character: Decimal | None = None
    request: Decimal | None = None
    request_low: Decimal | None = None
    request_medium: Decimal | None = None
    request_high: Decimal | None = None
    web_search: Decimal | None = None
    file_search: Decimal | None = None
    code_interpreter: Decimal | None = None
    image: Decimal | None = None
    audio_hour: Decimal | None = None

    def scaled(self, factor: Decimal) -> UnitPrices:
        """These prices multiplied by `factor` (a discount or a batch multiplier)."""
        return UnitPrices(
            **{k: None if (v := getattr(self, k)) is None else v * factor for k in UNIT_FIELDS}
        )

    def merged(self, over: UnitPrices) -> UnitPrices:
        """These prices with every price `over` has in place of this one's."""
        return UnitPrices(
            **{
                k: v if (v := getattr(over, k)) is not None else getattr(self, k)
                for k in UNIT_FIELDS
            }
        )

    def with_fallbacks(self) -> UnitPrices:
        """Fill missing prices from `FALLBACKS` (cache reads and writes at input, as
        genai-prices does; image tokens at input...)."""
        filled = {k: getattr(self, k) for k in UNIT_FIELDS}
        for kind, other in FALLBACKS.items():  # in order: cache_write before cache_write_1h
            if filled[kind] is None:
                filled[kind] = filled[other]
        return UnitPrices(**filled)

    def as_json(self) -> dict[str, str | None]:
        return {
            **{f"{k}_per_mtok": dec_str(getattr(self, k)) for k in (*TOKEN_KINDS, *PART_KINDS)},
            "character_per_mchar": dec_str(self.character),
            **{k: dec_str(getattr(self, k)) for k in PER_UNIT},
            "audio_per_hour": dec_str(self.audio_hour),
        }

    def described(self) -> list[str]:
        """'input 0.15 per million tokens', ... for every price known."""
        return [
            f"{k.replace('_', ' ')} {dec_str(v)} {PRICE_UNIT[k]}"
            for k in UNIT_FIELDS
            if (v := getattr(self, k)) is not None
        ]


@dataclass(frozen=True)
class Resolved:
    """The prices for one (provider, model, day, tier): cached by the book.

    `approximate` holds whatever the usage: a tier with no known price, a per-request
    minimum. What depends on the usage is kept apart and decided per row by `approximate_for`:
    `varying` (prices that change during the UTC day: time-of-day prices) and `tiered` with
    `tier_start` (prices that change once a request's prompt passes `tier_start` tokens).
    """

    prices: UnitPrices | None
    source: str  # catalog | correction | override | discount | none
    approximate: bool = False
    model_id: str | None = None
    notes: tuple[str, ...] = ()
    reason: str | None = None  # why there is no price
    varying: frozenset[str] = frozenset()
    tiered: frozenset[str] = frozenset()
    tier_start: int | None = None
    # True when the model prices requests by search context size (requests of unknown size
    # then get the undifferentiated request price: an upper bound).
    sized_requests: bool = False
    # Exact integer arithmetic for the hot path (rows with tokens and requests only): the
    # token prices (per single token, in TOKEN_KINDS order) and the request price as integer
    # counts of 10**exponent dollars.
    int_prices: tuple[int | None, ...] = field(init=False, repr=False, compare=False)
    exponent: int = field(init=False, repr=False, compare=False)
    # Positions (in TOKEN_KINDS order, then the request) of the varying and tiered prices.
    varying_at: tuple[int, ...] = field(init=False, repr=False, compare=False)
    tiered_at: tuple[int, ...] = field(init=False, repr=False, compare=False)

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
        kinds = (*TOKEN_KINDS, "request")
        varying = tuple(n for n, k in enumerate(kinds) if k in self.varying)
        tiered = tuple(n for n, k in enumerate(kinds) if k in self.tiered)
        object.__setattr__(self, "varying_at", varying)
        object.__setattr__(self, "tiered_at", tiered if self.tier_start is not None else ())

    def token_total(
        self, i: int, c: int, w: int, w1: int, o: int, requests: int
    ) -> tuple[int | None, str | None]:
        """The hot path: the exact cost of token columns and requests in units of
        10**exponent dollars, or None and why."""
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

    def total(self, counts: dict[str, int | Decimal]) -> tuple[Decimal | None, str | None]:
        """The cost of `counts` (price field -> count), exact but for the one division of
        seconds priced per hour, or None and why. Requests without a price cost nothing
        (most models have no per-request fee); a tool call, session, image or second without
        a price is left out (`approximate_for` says so)."""
        if self.prices is None:
            return None, self.reason
        total = Decimal(0)
        seconds_cost = Decimal(0)
        for kind, count in counts.items():
            if not count:
                continue
            price = getattr(self.prices, kind)
            if price is None:
                if kind in PER_MILLION:
                    return None, f"no {kind.replace('_', ' ')} price for this model"
                continue
            if kind in PER_MILLION:
                total = EXACT.add(total, EXACT.multiply(price.scaleb(-6, EXACT), Decimal(count)))
            elif kind == "audio_hour":
                seconds_cost = EXACT.add(seconds_cost, EXACT.multiply(price, Decimal(count)))
            else:
                total = EXACT.add(total, EXACT.multiply(price, Decimal(count)))
        if seconds_cost:
            total += HOURLY.divide(seconds_cost, Decimal(3600))
        return total, None

    def approximate_for_tokens(self, counts: tuple[int, ...]) -> bool:
        """`approximate_for` on the hot path: `counts` are the five token columns and the
        requests, in that order."""
        if self.approximate:
            return True
        if any(counts[n] for n in self.varying_at):
            return True
        requests = counts[5]
        if self.tiered_at and any(counts[n] for n in self.tiered_at):
            prompt = counts[0] + counts[1] + counts[2] + counts[3]
            if prompt - max(requests - 1, 0) > (self.tier_start or 0):
                return True
        return bool(self.sized_requests and requests)

    def approximate_for(
        self, counts: Mapping[str, int | Decimal], prompt: int, requests: int
    ) -> bool:
        """Whether pricing these counts needs what a daily total cannot tell: which part of
        the day (time-of-day prices), whether a request's prompt passed a tier (tiered
        prices), which search context size (requests of unknown size), or a unit price
        the book lacks. See docs/pricing.md for the rule."""
        if self.approximate:
            return True
        used = [k for k, n in counts.items() if n]
        if self.varying and any(k in self.varying for k in used):
            return True
        if self.tier_start is not None and any(k in self.tiered for k in used):
            # The largest prompt one of `requests` requests can have, each at least one
            # token, is prompt - (requests - 1); unknown requests: the whole prompt.
            if prompt - max(requests - 1, 0) > self.tier_start:
                return True
        if self.sized_requests and counts.get("request"):
            return True
        prices = self.prices
        return prices is not None and any(
            k in (*TOOL_KINDS, *PER_HOUR) and getattr(prices, k) is None for k in used
        )


# A usage detail (`tracker.models.usage_kinds`) -> the price it is priced at.
DETAIL_PRICE = {
    "input_audio_tokens": "input_audio",
    "input_image_tokens": "input_image",
    "cached_audio_tokens": "cached_audio",
    "cached_image_tokens": "cached_image",
    "output_audio_tokens": "output_audio",
    "output_image_tokens": "output_image",
    "reasoning_tokens": "reasoning",
    "web_search_calls": "web_search",
    "file_search_calls": "file_search",
    "code_interpreter_sessions": "code_interpreter",
    "images": "image",
    "audio_seconds": "audio_hour",
    "characters": "character",
    **{f"requests_{size}_context": f"request_{size}" for size in SEARCH_CONTEXT_SIZES},
}
# A column with parts -> the price of what is left of it once its parts are taken out.
_REST_PRICE = {
    "input_tokens": "input",
    "cached_input_tokens": "cached_input",
    "output_tokens": "output",
    "requests": "request",
}


def usage_counts(
    columns: dict[str, int],
    details: Mapping[str, int] | None = None,
    unit_name: str | None = None,
    other_units: Decimal | None = None,
) -> tuple[dict[str, int | Decimal], Decimal, str | None]:
    """What one usage prices: (price field -> count, units with no kind, problem or None).

    `columns`: the token columns and `requests`; `details`: the row's usage details;
    `other_units` counted as the kind `unit_name` names (`UNIT_OF_NAME`), else as units
    the book cannot price."""
    counts: dict[str, int | Decimal] = {
        "input": columns.get("input_tokens", 0),
        "cached_input": columns.get("cached_input_tokens", 0),
        "cache_write": columns.get("cache_write_tokens", 0),
        "cache_write_1h": columns.get("cache_write_1h_tokens", 0),
        "output": columns.get("output_tokens", 0),
        "request": columns.get("requests", 0),
    }
    unknown = Decimal(0)
    if other_units:
        kind = UNIT_OF_NAME.get(unit_name or "")
        if kind is None:
            unknown = other_units
        else:
            price = DETAIL_PRICE[kind]
            counts[price] = counts.get(price, 0) + other_units
    if details:
        problems = part_problems(details, columns)
        if problems:
            return counts, unknown, "; ".join(problems)
        for kind, count in details.items():
            price = DETAIL_PRICE[kind]
            counts[price] = counts.get(price, 0) + count
            column = TOKEN_PARTS.get(kind) or ("requests" if kind in SIZED_REQUESTS else None)
            if column is not None:
                counts[_REST_PRICE[column]] -= count
    return counts, unknown, None


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
