"""Properties of the price book: cost is non-negative, additive across splits, monotonic."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.costs.overrides import OverrideView
from tracker.costs.pricebook import PriceBook

KINDS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "requests",
)
# A spread of priced models: cache prices, 1-hour writes, tiers (approximate), per-request
# prices, batch corrections, time-of-day prices, price changes (deepseek-v4-flash: a dated
# correction, then the catalog's time-of-day prices), a discount. (deepseek-chat is retired
# after 2026-07-24: unpriced, so not a model for these properties.)
MODELS = [
    ("openai", "gpt-4o-mini", ""),
    ("openai", "gpt-4o-mini", "batch"),
    ("openai", "gpt-5", "priority"),
    ("anthropic", "claude-sonnet-4-5", ""),
    ("anthropic", "claude-haiku-4-5", "batch"),
    ("anthropic", "claude-opus-4-1", ""),
    ("perplexity", "sonar", ""),
    ("groq", "llama-3.3-70b-versatile", ""),
    ("deepseek", "deepseek-v4-flash", ""),
    ("openrouter", "openai/gpt-4o", ""),
]
DISCOUNT = OverrideView(
    id=1,
    provider="openai",
    model=None,
    kind="discount",
    input_price=None,
    cached_input_price=None,
    cache_write_price=None,
    cache_write_1h_price=None,
    output_price=None,
    request_price=None,
    discount_pct=Decimal("17.5"),
    valid_from=dt.date(2026, 1, 1),
    valid_to=None,
    note=None,
    created_by="t",
)
BOOK = PriceBook([DISCOUNT])

counts = st.integers(min_value=0, max_value=10**12)
usage = st.fixed_dictionaries({k: counts for k in KINDS})
models = st.sampled_from(MODELS)
days = st.dates(min_value=dt.date(2025, 1, 1), max_value=dt.date(2027, 6, 30))


def cost(provider: str, model: str, tier: str, day: dt.date, u: dict[str, int]) -> Decimal:
    quote = BOOK.quote(provider=provider, model=model, day=day, tier=tier, **u)
    assert quote.priced and quote.estimated_cost is not None
    return quote.estimated_cost


@settings(max_examples=300, deadline=None)
@given(models, days, usage)
def test_cost_is_non_negative(m: tuple[str, str, str], day: dt.date, u: dict[str, int]) -> None:
    assert cost(*m, day, u) >= 0


@settings(max_examples=300, deadline=None)
@given(models, days, usage, st.data())
def test_cost_is_additive_across_splits(
    m: tuple[str, str, str], day: dt.date, u: dict[str, int], data: st.DataObject
) -> None:
    part = {k: data.draw(st.integers(min_value=0, max_value=v), label=k) for k, v in u.items()}
    rest = {k: u[k] - part[k] for k in KINDS}
    assert cost(*m, day, part) + cost(*m, day, rest) == cost(*m, day, u)


@settings(max_examples=300, deadline=None)
@given(models, days, usage, st.sampled_from(KINDS), st.integers(min_value=1, max_value=10**9))
def test_cost_is_monotonic_in_each_count(
    m: tuple[str, str, str], day: dt.date, u: dict[str, int], kind: str, more: int
) -> None:
    bigger = {**u, kind: u[kind] + more}
    assert cost(*m, day, bigger) >= cost(*m, day, u)


@settings(max_examples=100, deadline=None)
@given(models, days, usage)
def test_zero_usage_costs_nothing_and_scaling_is_linear(
    m: tuple[str, str, str], day: dt.date, u: dict[str, int]
) -> None:
    assert cost(*m, day, dict.fromkeys(KINDS, 0)) == 0
    assert cost(*m, day, {k: 3 * v for k, v in u.items()}) == 3 * cost(*m, day, u)
