"""Organisation price overrides: an explicit price or a discount, effective-dated.

Precedence (applied by the price book): explicit price > discount > list price.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound
from tracker.core.units import dec_str, parse_decimal
from tracker.costs.prices import PRICE_UNIT, UNIT_FIELDS, UnitPrices
from tracker.models import PriceOverride
from tracker.providers.registry import PROVIDERS

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
    # Prices of the other kinds (`tracker.costs.prices.UNIT_FIELDS`), and provenance.
    extra_prices: dict[str, Decimal] = field(default_factory=dict)
    source: str | None = None
    checked_on: dt.date | None = None

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
            extra_prices={k: Decimal(str(v)) for k, v in (o.extra_prices or {}).items()},
            source=o.source,
            checked_on=o.checked_on,
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
            **{
                **{k: v for k, v in self.extra_prices.items() if k in UNIT_FIELDS},
                "input": self.input_price,
                "cached_input": self.cached_input_price,
                "cache_write": self.cache_write_price,
                "cache_write_1h": self.cache_write_1h_price,
                "output": self.output_price,
                "request": self.request_price,
            }
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
            "extra_prices": {k: dec_str(v) for k, v in self.extra_prices.items()},
            "source": self.source,
            "checked_on": self.checked_on.isoformat() if self.checked_on else None,
            "note": self.note,
            "created_by": self.created_by,
        }


def pick_override(candidates: list[OverrideView]) -> OverrideView | None:
    # A model-specific override beats a provider-wide one; then the latest start, then the
    # newest row.
    if not candidates:
        return None
    return max(candidates, key=lambda o: (o.model is not None, o.valid_from, o.id))


# --- managing overrides -----------------------------------------------------------------

PRICE_FIELDS = (
    "input_price",
    "cached_input_price",
    "cache_write_price",
    "cache_write_1h_price",
    "output_price",
    "request_price",
)
# The kinds an override prices beside those columns (`extra_prices`): audio and image tokens,
# tool calls, sessions, characters...
OTHER_PRICE_KINDS = tuple(k for k in UNIT_FIELDS if f"{k}_price" not in PRICE_FIELDS)


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
    extra_prices: dict[str, Decimal | str] | None = None,
    note: str | None = None,
    source: str | None = None,
    checked_on: dt.date | None = None,
    actor: str,
) -> OverrideView:
    """Add an organisation price (USD per million tokens / per request) or a % discount.

    `model` None means every model of the provider (discounts only). `valid_to` is
    exclusive. `extra_prices` prices the other kinds (`PRICE_UNIT` says per what: audio and
    image tokens, tool calls, sessions...). `source` says where the price comes from (a
    contract, an invoice) and `checked_on` when it was checked. History is not re-priced
    here: run `reprice` for the affected dates.
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
    unknown = sorted(set(extra_prices or {}) - set(OTHER_PRICE_KINDS))
    if unknown:
        allowed = ", ".join(f"{k} ({PRICE_UNIT[k]})" for k in OTHER_PRICE_KINDS)
        raise InvalidInput(f"unknown price kind(s) {', '.join(unknown)}; use {allowed}")
    extra = {
        k: value
        for k, v in (extra_prices or {}).items()
        if (value := parse_decimal(v, k.replace("_", " "))) is not None
    }
    pct = parse_decimal(discount_pct, "discount")
    if checked_on is not None and checked_on > dt.datetime.now(dt.UTC).date():
        raise InvalidInput("the date the price was checked cannot be in the future")
    if kind == "price":
        if model is None:
            raise InvalidInput("an explicit price needs a model; use a discount for all models")
        if all(v is None for v in prices.values()) and not extra:
            raise InvalidInput("give at least one price (e.g. input and output per million)")
        if pct is not None:
            raise InvalidInput("a price override takes prices, not a discount")
    elif kind == "discount":
        if pct is None or not 0 < pct <= 100:
            raise InvalidInput("a discount needs a percentage above 0 and at most 100")
        if any(v is not None for v in prices.values()) or extra:
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
        extra_prices={k: dec_str(v) for k, v in extra.items()} or None,
        source=(source or "").strip() or None,
        checked_on=checked_on,
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
        raise NotFound(f"no price override #{override_id}; check the id in the list of overrides")
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
