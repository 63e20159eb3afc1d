"""The price book: exact Decimal prices across providers, corrections, overrides, storage.

Expected amounts are worked out by hand from the catalog's list prices (USD per million
tokens, genai-prices as pinned in requirements.txt) and from tracker/price_corrections.json.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput, NotFound
from tracker.costs.catalog import catalog_usage
from tracker.costs.estimate import estimate_range
from tracker.costs.overrides import OverrideView, add_override, list_overrides, remove_override
from tracker.costs.pricebook import PriceBook, price_usage, store_amount
from tracker.models import Account, AuditLog, PriceOverride, Service, UsageRecord

D = dt.date
M = 1_000_000
AUG = D(2026, 8, 1)  # before the catalog's batch prices (2026-10-14)
NOV = D(2026, 11, 1)  # after them


def _override(id_: int, **kw: Any) -> OverrideView:
    base: dict[str, Any] = {
        "id": id_,
        "provider": "openai",
        "model": None,
        "kind": "price",
        "input_price": None,
        "cached_input_price": None,
        "cache_write_price": None,
        "cache_write_1h_price": None,
        "output_price": None,
        "request_price": None,
        "discount_pct": None,
        "valid_from": D(2026, 1, 1),
        "valid_to": None,
        "note": None,
        "created_by": "test",
    }
    base.update(kw)
    return OverrideView(**base)


# (id, pricing call, expected cost, source, approximate)
CASES: list[tuple[str, dict[str, Any], str, str, bool]] = [
    (
        "openai cached reads at the cached price",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "0.825",
        "catalog",
        False,  # 0.15 + 0.075 + 0.60
    ),
    (
        "openai dated snapshot name",
        dict(
            provider="openai",
            model="gpt-4o-2024-08-06",
            day=AUG,
            input_tokens=2000,
            cached_tokens=3000,
            output_tokens=500,
        ),
        "0.01375",
        "catalog",
        False,  # (2000*2.5 + 3000*1.25 + 500*10) / 1M
    ),
    (
        "anthropic cache reads, 5-minute and 1-hour writes",
        dict(
            provider="anthropic",
            model="claude-3-5-haiku-20241022",
            day=AUG,
            input_tokens=1000,
            cached_tokens=2000,
            cache_write_tokens=3000,
            cache_write_1h_tokens=4000,
            output_tokens=5000,
        ),
        "0.03036",
        "catalog",
        False,  # 1000*0.8 + 2000*0.08 + 3000*1 + 4000*1.6 + 5000*4
    ),
    (
        "anthropic 5-minute write",
        dict(provider="anthropic", model="claude-opus-4-1", day=AUG, cache_write_tokens=M),
        "18.75",
        "catalog",
        False,
    ),
    (
        "anthropic 1-hour write",
        dict(provider="anthropic", model="claude-opus-4-1", day=AUG, cache_write_1h_tokens=M),
        "30",
        "catalog",
        False,
    ),
    (
        "long-context tiers: base tier, approximate",
        dict(
            provider="anthropic",
            model="claude-sonnet-4-5-20250929",
            day=AUG,
            input_tokens=M,
            output_tokens=M,
        ),
        "18",
        "catalog",
        True,  # 3 + 15; never the 200k+ tier for daily totals
    ),
    (
        "openai batch before the catalog has batch prices: 50% correction",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "0.375",
        "correction",
        False,  # (0.15 + 0.60) / 2
    ),
    (
        "openai batch once the catalog has batch prices",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=NOV,
            input_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "0.375",
        "catalog",
        False,  # 0.075 + 0.30
    ),
    (
        "anthropic batch before catalog batch prices: cache included in the 50%",
        dict(
            provider="anthropic",
            model="claude-haiku-4-5",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            cache_write_tokens=M,
            cache_write_1h_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "4.675",
        "correction",
        False,  # (1 + 0.1 + 1.25 + 2 + 5) / 2
    ),
    (
        "anthropic batch from the catalog",
        dict(
            provider="anthropic",
            model="claude-haiku-4-5",
            day=NOV,
            input_tokens=M,
            cached_tokens=M,
            cache_write_tokens=M,
            cache_write_1h_tokens=M,
            output_tokens=M,
            batch=True,
        ),
        "4.675",
        "catalog",
        False,  # 0.5 + 0.05 + 0.625 + 1 + 2.5
    ),
    (
        "groq: no cache price, cached reads at the input price",
        dict(
            provider="groq",
            model="llama-3.3-70b-versatile",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "1.97",
        "catalog",
        False,  # 0.59 + 0.59 + 0.79
    ),
    (
        "perplexity requests of unknown search context size: the high fee, approximate",
        dict(
            provider="perplexity",
            model="sonar",
            day=AUG,
            input_tokens=M,
            output_tokens=M,
            requests=1000,
        ),
        "14",
        "correction",
        True,  # 1 + 1 + 1000 * 12/1000
    ),
    (
        "openrouter before the catalog's cache price (2026-10-19)",
        dict(provider="openrouter", model="openai/gpt-4o", day=D(2026, 10, 18), cached_tokens=M),
        "2.5",
        "catalog",
        False,
    ),
    (
        "openrouter after the catalog's cache price",
        dict(provider="openrouter", model="openai/gpt-4o", day=D(2026, 10, 19), cached_tokens=M),
        "1.25",
        "catalog",
        False,
    ),
    (
        "deepseek before its 2025-09-05 price change: peak price, time-of-day approximate",
        dict(
            provider="deepseek",
            model="deepseek-chat",
            day=D(2025, 9, 1),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "1.44",
        "catalog",
        True,  # 0.27 + 0.07 + 1.10
    ),
    (
        "deepseek V3.1 price (correction the catalog misses)",
        dict(
            provider="deepseek",
            model="deepseek-chat",
            day=D(2025, 9, 10),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "2.31",
        "correction",
        False,  # 0.56 + 0.07 + 1.68
    ),
    (
        "deepseek V3.2 price cut (correction)",
        dict(
            provider="deepseek",
            model="deepseek-reasoner",
            day=D(2025, 10, 1),
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
        ),
        "0.728",
        "correction",
        False,  # 0.28 + 0.028 + 0.42
    ),
    (
        "openai moderation is free (correction: the catalog has no price)",
        dict(provider="openai", model="omni-moderation-2024-09-26", day=AUG, input_tokens=M),
        "0",
        "correction",
        False,
    ),
    (
        "priority tier before the catalog prices it: the corrected priority price",
        dict(
            provider="openai",
            model="gpt-5",
            day=D(2026, 10, 11),
            input_tokens=M,
            service_tier="priority",
        ),
        "2.5",
        "correction",
        False,
    ),
    (
        "priority tier priced by the catalog",
        dict(
            provider="openai",
            model="gpt-5",
            day=D(2026, 10, 12),
            input_tokens=M,
            service_tier="priority",
        ),
        "2.5",
        "catalog",
        False,
    ),
    (
        "discount override: 10% off the list price",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            overrides=[
                _override(1, model="gpt-4o-mini", kind="discount", discount_pct=Decimal("10"))
            ],
        ),
        "0.7425",
        "discount",
        False,  # 0.825 * 0.9
    ),
    (
        "discount outside its dates does not apply",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            overrides=[
                _override(
                    1,
                    model="gpt-4o-mini",
                    kind="discount",
                    discount_pct=Decimal("10"),
                    valid_from=D(2026, 8, 2),
                )
            ],
        ),
        "0.825",
        "catalog",
        False,
    ),
    (
        "provider-wide discount on a batch row: discount then batch",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            output_tokens=M,
            batch=True,
            overrides=[_override(1, kind="discount", discount_pct=Decimal("20"))],
        ),
        "0.3",
        "discount",
        False,  # 0.75 * 0.8 * 0.5
    ),
    (
        "custom model price (fine-tune the catalog lacks); cached at input",
        dict(
            provider="openai",
            model="ft:gpt-4o-mini:acme::x1",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            overrides=[
                _override(
                    1,
                    model="ft:gpt-4o-mini:acme::x1",
                    input_price=Decimal("0.3"),
                    output_price=Decimal("1.2"),
                )
            ],
        ),
        "1.8",
        "override",
        False,  # 0.3 + 0.3 + 1.2
    ),
    (
        "explicit price beats a discount; unset kinds keep list prices",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            cached_tokens=M,
            output_tokens=M,
            overrides=[
                _override(1, model="gpt-4o-mini", input_price=Decimal("0.1")),
                _override(2, kind="discount", discount_pct=Decimal("50")),
            ],
        ),
        "0.775",
        "override",
        False,  # 0.1 + 0.075 + 0.60
    ),
    (
        "explicit price on a batch day with catalog batch prices: batch applied once",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=NOV,
            input_tokens=M,
            output_tokens=M,
            batch=True,
            overrides=[_override(1, model="gpt-4o-mini", input_price=Decimal("0.1"))],
        ),
        "0.35",  # (0.1 + 0.60) * 0.5
        "override",
        False,
    ),
    (
        "model-specific discount beats a provider-wide one",
        dict(
            provider="openai",
            model="gpt-4o-mini",
            day=AUG,
            input_tokens=M,
            overrides=[
                _override(1, kind="discount", discount_pct=Decimal("50")),
                _override(2, model="gpt-4o-mini", kind="discount", discount_pct=Decimal("20")),
            ],
        ),
        "0.12",
        "discount",
        False,
    ),
    (
        "override on the catalog name applies to a dated snapshot",
        dict(
            provider="openai",
            model="gpt-4o-mini-2024-07-18",
            day=AUG,
            output_tokens=M,
            overrides=[_override(1, model="gpt-4o-mini", output_price=Decimal("0.5"))],
        ),
        "0.5",
        "override",
        False,
    ),
]


@pytest.mark.parametrize(
    ("call", "expected", "source", "approximate"),
    [pytest.param(c[1], c[2], c[3], c[4], id=c[0]) for c in CASES],
)
def test_prices_exactly(
    call: dict[str, Any], expected: str, source: str, approximate: bool
) -> None:
    quote = price_usage(**call)
    assert quote.priced
    assert quote.estimated_cost == Decimal(expected)
    assert isinstance(quote.estimated_cost, Decimal)
    assert (quote.source, quote.approximate, quote.currency) == (source, approximate, "USD")
    assert quote.unit_prices is not None


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-unknown-9"),
        ("anthropic", "claude-imaginary-1"),
        ("groq", ""),
        ("openai", "ft:gpt-4o-mini:acme::x1"),
    ],
)
def test_unknown_model_is_unpriced_never_zero(provider: str, model: str) -> None:
    quote = price_usage(provider=provider, model=model, day=AUG, input_tokens=10)
    assert quote.estimated_cost is None
    assert not quote.priced and quote.status == "unpriced"
    assert quote.reason


def test_missing_price_for_a_used_token_kind_is_unpriced() -> None:
    # Embedding models have no output price: output tokens must not be priced at $0.
    quote = price_usage(
        provider="openai",
        model="text-embedding-3-small",
        day=AUG,
        input_tokens=M,
        output_tokens=1,
    )
    assert quote.estimated_cost is None and quote.reason == "no output price for this model"
    ok = price_usage(provider="openai", model="text-embedding-3-small", day=AUG, input_tokens=M)
    assert ok.estimated_cost == Decimal("0.02")


def test_unknown_provider_and_negative_counts_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        price_usage(provider="nope", model="x", day=AUG)
    with pytest.raises(InvalidInput):
        price_usage(provider="openai", model="gpt-4o", day=AUG, input_tokens=-1)


@pytest.mark.parametrize(
    ("provider", "model", "day"),
    [
        ("openai", "gpt-4o-mini", AUG),
        ("anthropic", "claude-3-5-haiku", AUG),
        ("anthropic", "claude-opus-4-1", AUG),
        ("deepseek", "deepseek-v3.2", AUG),
        ("groq", "llama-3.3-70b-versatile", AUG),
        ("openrouter", "openai/gpt-4o", NOV),
    ],
)
def test_agrees_with_genai_prices_on_untiered_models(provider: str, model: str, day: D) -> None:
    counts = dict(
        input_tokens=1234,
        cached_tokens=567,
        cache_write_tokens=89,
        cache_write_1h_tokens=10,
        output_tokens=4321,
    )
    ours = price_usage(provider=provider, model=model, day=day, **counts)
    theirs = genai_prices.calc_price(
        catalog_usage(**counts),
        model,
        provider_id=provider,
        genai_request_timestamp=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
    )
    assert ours.estimated_cost == theirs.total_price


def test_store_amount_rounds_half_up_to_six_places() -> None:
    assert store_amount(Decimal("0.0000005")) == Decimal("0.000001")
    assert store_amount(Decimal("0.00000049")) == Decimal("0.000000")
    assert store_amount(Decimal("1.2345675")) == Decimal("1.234568")


def test_book_caches_per_provider_model_day_tier() -> None:
    book = PriceBook()
    first = book.resolve("openai", "gpt-4o-mini", AUG, "")
    assert book.resolve("openai", "gpt-4o-mini", AUG, "") is first
    assert book.resolve("openai", "gpt-4o-mini", AUG, "batch") is not first


# --- stored usage -----------------------------------------------------------------------


def _account(session: Session, provider: str, name: str) -> Account:
    service = session.scalar(select(Service).where(Service.name == provider))
    assert service is not None
    account = Account(
        service_id=service.id, name=name, credential_encrypted="v1.x.y", credential_last4="abcd"
    )
    session.add(account)
    session.flush()
    return account


def test_estimate_range_prices_flags_and_keeps_billed(session: Session) -> None:
    openai = _account(session, "openai", "oa")
    other = _account(session, "anthropic", "an")
    copilot = _account(session, "github_copilot", "gh")
    known = UsageRecord(
        account_id=openai.id,
        day=AUG,
        model="gpt-4o-mini-2024-07-18",
        input_tokens=M,
        cached_input_tokens=M,
        output_tokens=M,
    )
    batch = UsageRecord(
        account_id=openai.id,
        day=AUG,
        model="gpt-4o-mini",
        service_tier="batch",
        input_tokens=M,
        output_tokens=M,
    )
    tiny = UsageRecord(
        account_id=openai.id, day=AUG, model="gpt-4o-mini", project_id="p2", input_tokens=3
    )  # 3 * 0.15 / 1M = 0.00000045 -> 0.000000 stored, priced
    unknown = UsageRecord(
        account_id=openai.id, day=AUG, model="mystery-model", input_tokens=5, output_tokens=7
    )
    billed = UsageRecord(
        account_id=openai.id, day=AUG, usage_type="cost:completions", billed_cost=Decimal("1.5")
    )
    outside = UsageRecord(
        account_id=openai.id, day=AUG + dt.timedelta(days=1), model="gpt-4o-mini", input_tokens=10
    )
    not_mine = UsageRecord(account_id=other.id, day=AUG, model="claude-3-haiku", input_tokens=10)
    seat = UsageRecord(
        account_id=copilot.id, day=AUG, usage_type="seats", billed_cost=Decimal("19")
    )
    session.add_all([known, batch, tiny, unknown, billed, outside, not_mine, seat])
    session.flush()

    summary = estimate_range(session=session, start=AUG, end=AUG, account_ids=[openai.id])

    assert summary.rows == 5
    assert summary.unpriced_tokens == {("openai", "mystery-model"): 12}
    assert known.estimated_cost == Decimal("0.825000")
    # The day has a billed line item ("cost:completions"): the estimates stay for
    # reconciliation, but the bill is what counts (tracker.spend), so they are 'covered'.
    assert (known.pricing_status, known.cost_source) == ("priced", "covered")
    assert batch.estimated_cost == Decimal("0.375000")
    assert (tiny.estimated_cost, tiny.pricing_status) == (Decimal("0"), "priced")
    assert unknown.estimated_cost is None
    assert (unknown.pricing_status, unknown.cost_source) == ("unpriced", "covered")
    assert billed.billed_cost == Decimal("1.5") and billed.estimated_cost is None
    # The line item names no model or project: it is allocated over the day's usage (by
    # tokens, as one row has no estimate), so it counts 0 itself.
    assert (billed.pricing_status, billed.cost_source) == ("not_applicable", "covered")
    assert (billed.allocated_cost, billed.allocation_method) == (0, "proportional_tokens")
    shares = [r.allocated_cost for r in (known, batch, tiny, unknown)]
    assert sum(shares) == Decimal("1.5") and all(s > 0 for s in shares)
    assert outside.pricing_status == "pending" and outside.estimated_cost is None
    assert not_mine.pricing_status == "pending"

    again = estimate_range(session=session, start=AUG, end=AUG)
    assert again.rows == 7
    assert again.updated == 2  # only the anthropic and Copilot rows were new to pricing
    assert (seat.pricing_status, seat.cost_source, seat.billed_cost) == (
        "not_applicable",
        "billed",
        Decimal("19"),
    )
    assert not_mine.estimated_cost == Decimal("0.000003")  # 10 * 0.25 / 1M, approx. stored


def test_estimate_range_rejects_a_reversed_range(session: Session) -> None:
    with pytest.raises(InvalidInput):
        estimate_range(session=session, start=AUG, end=AUG - dt.timedelta(days=1))


# --- managing overrides -----------------------------------------------------------------


def test_overrides_are_validated_listed_removed_and_audited(session: Session) -> None:
    view = add_override(
        session=session,
        provider="openai",
        model="gpt-4o-mini",
        kind="discount",
        valid_from=AUG,
        valid_to=D(2026, 9, 1),
        discount_pct="12.5",
        actor="alice",
    )
    assert view.discount_pct == Decimal("12.5")
    price = add_override(
        session=session,
        provider="anthropic",
        model="claude-custom",
        kind="price",
        valid_from=AUG,
        input_price="2",
        output_price="8",
        actor="alice",
    )
    assert [v.id for v in list_overrides(session=session)] == [price.id, view.id]
    assert [v.id for v in list_overrides(session=session, provider="openai")] == [view.id]

    bad: list[dict[str, Any]] = [
        dict(provider="nope", model="m", kind="discount", discount_pct="5"),
        dict(provider="openai", model="m", kind="discount", discount_pct="0"),
        dict(provider="openai", model="m", kind="discount", discount_pct="101"),
        dict(provider="openai", model="m", kind="discount", discount_pct="x"),
        dict(provider="openai", model="m", kind="discount", discount_pct="5", input_price="1"),
        dict(provider="openai", model=None, kind="price", input_price="1"),
        dict(provider="openai", model="m", kind="price"),
        dict(provider="openai", model="m", kind="price", input_price="-1"),
        dict(provider="openai", model="m", kind="bogus", input_price="1"),
        # overlaps the first discount
        dict(
            provider="openai",
            model="gpt-4o-mini",
            kind="discount",
            discount_pct="5",
            valid_from=D(2026, 8, 31),
        ),
        dict(provider="openai", model="m", kind="discount", discount_pct="5", valid_to=AUG),
    ]
    for kw in bad:
        kw.setdefault("valid_from", AUG)
        with pytest.raises(InvalidInput):
            add_override(session=session, actor="alice", **kw)
    # adjacent dates do not overlap (valid_to is exclusive)
    add_override(
        session=session,
        provider="openai",
        model="gpt-4o-mini",
        kind="discount",
        valid_from=D(2026, 9, 1),
        discount_pct="5",
        actor="alice",
    )

    removed = remove_override(session=session, override_id=view.id, actor="bob")
    assert removed.id == view.id
    assert session.get(PriceOverride, view.id) is None
    with pytest.raises(NotFound):
        remove_override(session=session, override_id=view.id, actor="bob")
    actions = [(a.actor, a.action) for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [
        ("alice", "price_override.add"),
        ("alice", "price_override.add"),
        ("alice", "price_override.add"),
        ("bob", "price_override.remove"),
    ]


def test_stored_overrides_apply_through_the_book(session: Session) -> None:
    add_override(
        session=session,
        provider="openai",
        model="gpt-4o-mini",
        kind="discount",
        valid_from=AUG,
        discount_pct="10",
        actor="t",
    )
    quote = price_usage(
        provider="openai",
        model="gpt-4o-mini",
        day=AUG,
        input_tokens=M,
        overrides=PriceBook.from_db(session),
    )
    assert quote.estimated_cost == Decimal("0.135")
