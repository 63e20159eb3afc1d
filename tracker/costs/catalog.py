"""List prices from the genai-prices catalog at a usage date.

Our `input_tokens` is uncached input only; cache reads and cache writes (5-minute and 1-hour)
are counted apart. genai-prices' `Usage.input_tokens` is the whole prompt: the conversion is
`catalog_usage()`. Time-of-day prices: the price in effect for most of the UTC day is used;
tiered prices: the base tier (the book decides per row whether that is exact).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices, TimeOfDateConstraint

from tracker.costs.prices import UNIT_FIELDS, UnitPrices
from tracker.providers.registry import PROVIDERS


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


def _catalog_id(provider: str) -> str:
    """The genai-prices provider id for our provider id."""
    info = PROVIDERS.get(provider)
    return (info.catalog_id if info else None) or provider


@lru_cache(maxsize=4096)
def catalog_model(provider: str, model: str) -> ModelInfo | None:
    """The catalog's model for our provider name and the provider's model name, if any."""
    if not model:
        return None
    try:
        _, info = get_snapshot().find_provider_model(model, None, _catalog_id(provider), None)
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


def variant_active(info: ModelInfo, when: dict[str, str], at: dt.datetime) -> bool:
    return any(
        v.when == when
        and any(value is not None for value in v.prices.__dict__.values())
        and (v.constraint is None or v.constraint.active(at))
        for v in info.price_variants or ()
    )


# The catalog's price keys (genai-prices' units) -> our prices, and what to divide by to get
# ours (per million stays per million; per thousand calls becomes per call).
_CATALOG_KEYS: dict[str, tuple[tuple[str, int], ...]] = {
    "input": (("input_mtok", 1),),
    "cached_input": (("cache_read_mtok", 1),),
    "cache_write": (("cache_write_mtok", 1), ("cache_write_5m_mtok", 1)),
    "cache_write_1h": (("cache_write_1h_mtok", 1),),
    "output": (("output_mtok", 1),),
    "input_audio": (("input_audio_mtok", 1),),
    "cached_audio": (("cache_audio_read_mtok", 1),),
    "output_audio": (("output_audio_mtok", 1),),
    "input_image": (("input_image_mtok", 1),),
    "cached_image": (("cache_image_read_mtok", 1),),
    "output_image": (("output_image_mtok", 1),),
    "reasoning": (("output_reasoning_mtok", 1),),
    "character": (("input_mchars", 1),),
    "request": (("requests_kcount", 1000),),
    "web_search": (("web_searches_kcount", 1000),),
    "file_search": (("storage_searches_kcount", 1000),),
    "audio_hour": (("audio_hours", 1), ("input_audio_hours", 1)),
}
# Models the catalog bills with a per-request minimum a daily total cannot apply (genai-prices'
# own special case: Groq bills Whisper at least 10 seconds a request).
_PER_REQUEST_MINIMUM = {("groq", "whisper-large-v3"), ("groq", "whisper-large-v3-turbo")}


@dataclass(frozen=True)
class CatalogPrices:
    """A model's list prices on a day, and what about them a daily total cannot settle."""

    prices: UnitPrices
    approximate: bool  # whatever the usage
    varying: frozenset[str]  # prices that change during the UTC day
    tiered: frozenset[str]  # prices with a tier by prompt length
    tier_start: int | None  # the lowest prompt length (tokens) where a tier starts
    notes: tuple[str, ...]


def _unit_prices(mp: ModelPrice) -> tuple[UnitPrices, frozenset[str], int | None]:
    """Our unit prices from a catalog price set (the base tier of tiered prices), which of
    them are tiered and where the first tier starts."""
    values: dict[str, Decimal | None] = {}
    tiered: set[str] = set()
    starts: list[int] = []
    for ours, keys in _CATALOG_KEYS.items():
        values[ours] = None
        for key, per in keys:
            value = getattr(mp, key, None)
            if isinstance(value, TieredPrices):
                tiered.add(ours)
                starts.extend(t.start for t in value.tiers)
                value = value.base
            if value is not None:
                values[ours] = Decimal(value) / per
                break
    return UnitPrices(**values), frozenset(tiered), min(starts, default=None)


def catalog_prices(
    info: ModelInfo, day: dt.date, context: dict[str, str] | None, provider: str = ""
) -> CatalogPrices:
    """List prices for a day, with what a daily total cannot settle about them."""
    notes: list[str] = []
    stamps = _day_timestamps(info, day)
    sampled = [_unit_prices(info.get_prices(ts, context)) for ts in stamps]
    counts = Counter(repr(s[0]) for s in sampled)
    prices, tiered, tier_start = next(
        s for s in sampled if repr(s[0]) == counts.most_common(1)[0][0]
    )
    varying = frozenset(k for k in UNIT_FIELDS if len({getattr(s[0], k) for s in sampled}) > 1)
    if varying:
        notes.append("time-of-day prices: priced at the price in effect most of the UTC day")
    if tiered:
        notes.append(
            f"price tiers from {tier_start:,} prompt tokens a request: the base tier is used, "
            "exact unless a request could have passed it"
        )
    approximate = (provider, info.id) in _PER_REQUEST_MINIMUM
    if approximate:
        notes.append("billed with a minimum per request, which daily totals cannot apply")
    return CatalogPrices(prices, approximate, varying, tiered, tier_start, tuple(notes))


def peak_prices(info: ModelInfo, day: dt.date) -> UnitPrices | None:
    """The highest price of each kind in force during the UTC day (standard tier), for a model
    with time-of-day prices; None for a model without them."""
    stamps = _day_timestamps(info, day)
    if len(stamps) == 1:
        return None
    sampled = [_unit_prices(info.get_prices(ts, None))[0] for ts in stamps]
    highest: dict[str, Decimal | None] = {}
    for kind in UNIT_FIELDS:
        values = [v for s in sampled if (v := getattr(s, kind)) is not None]
        highest[kind] = max(values) if values else None
    return UnitPrices(**highest)
