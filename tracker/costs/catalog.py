"""List prices from the genai-prices catalog at a usage date.

Our `input_tokens` is uncached input only; cache reads and cache writes (5-minute and 1-hour)
are counted apart. genai-prices' `Usage.input_tokens` is the whole prompt: the conversion is
`catalog_usage()`. Time-of-day prices: the price in effect for most of the UTC day is used.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from functools import lru_cache

import genai_prices
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices, TimeOfDateConstraint

from tracker.costs.prices import UnitPrices
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


def catalog_prices(
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
