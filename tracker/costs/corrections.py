"""Dated price corrections the catalog lacks, kept as data in `price_corrections.json`.

Every correction says when it is in force (`effective_from`, and `effective_to`, the last day
in force, both inclusive; no `effective_to`: until further notice), where its figures come
from (`source`: a URL or a document) and when they were checked against it (`checked_on`).
The loader refuses a file whose corrections lack any of these, naming the entry.

Three kinds:
- `price_changes`: list prices for some models of a provider, for one service tier
  (`tier`, default the standard one). With `"overlay": true` only the prices given replace
  the catalog's (the others stay); otherwise the prices given are the whole price list.
- `aliases`: models priced as another model of the same provider (`priced_as`), e.g. a name
  the provider routes to a newer model; with `"retired_after": true` the names have no price
  after `effective_to` (usage then is unpriced, never $0).
- `batch_discounts`: the multiplier for batch usage on days the catalog has no batch price.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from tracker.core.errors import InvalidInput
from tracker.costs.prices import UNIT_FIELDS, UnitPrices

CORRECTIONS_PATH = Path(__file__).with_name("price_corrections.json")
REQUIRED = ("effective_from", "source", "checked_on")


@dataclass(frozen=True)
class Dated:
    """When a correction is in force and where its figures come from."""

    provider: str
    effective_from: dt.date
    effective_to: dt.date | None  # the last day in force; None: open
    source: str
    checked_on: dt.date
    note: str

    def in_force(self, day: dt.date) -> bool:
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def cited(self) -> str:
        """The source and its date, for notes."""
        return f"{self.source}, checked {self.checked_on}"


@dataclass(frozen=True)
class PriceChange(Dated):
    models: frozenset[str]
    tier: str  # '' = the standard tier
    overlay: bool
    prices: UnitPrices

    def applies(self, provider: str, names: Iterable[str], day: dt.date, tier: str = "") -> bool:
        return (
            provider == self.provider
            and self.tier == tier
            and any(n in self.models for n in names)
            and self.in_force(day)
        )


@dataclass(frozen=True)
class Alias(Dated):
    models: frozenset[str]
    priced_as: str
    retired_after: bool

    def matches(self, provider: str, names: Iterable[str]) -> bool:
        return provider == self.provider and any(n in self.models for n in names)


@dataclass(frozen=True)
class BatchDiscount(Dated):
    multiplier: Decimal


@dataclass(frozen=True)
class Corrections:
    batch_discounts: tuple[BatchDiscount, ...] = ()
    price_changes: tuple[PriceChange, ...] = ()
    aliases: tuple[Alias, ...] = ()

    def batch_multiplier(self, provider: str, day: dt.date) -> BatchDiscount | None:
        return next(
            (b for b in self.batch_discounts if b.provider == provider and b.in_force(day)), None
        )

    def price_change(
        self, provider: str, names: Iterable[str], day: dt.date, tier: str = ""
    ) -> PriceChange | None:
        names = tuple(names)
        return next((c for c in self.price_changes if c.applies(provider, names, day, tier)), None)

    def alias(self, provider: str, names: Iterable[str], day: dt.date) -> tuple[Alias | None, bool]:
        """(the alias in force on `day`, whether the names are retired by then)."""
        names = tuple(names)
        for a in self.aliases:
            if not a.matches(provider, names):
                continue
            if a.in_force(day):
                return a, False
            if a.retired_after and a.effective_to is not None and day > a.effective_to:
                return a, True
        return None, False

    def all(self) -> tuple[Dated, ...]:
        return (*self.batch_discounts, *self.price_changes, *self.aliases)


NO_CORRECTIONS = Corrections()


@cache
def load_corrections(path: Path = CORRECTIONS_PATH) -> Corrections:
    """Read `price_corrections.json` once (it is data in the repository, not code)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path.name} cannot be read: {exc}") from None
    return parse_corrections(raw, path.name)


def parse_corrections(raw: dict[str, Any], name: str = "price_corrections.json") -> Corrections:
    """The corrections of a parsed file; `InvalidInput` naming the entry that is incomplete."""
    batch = tuple(
        BatchDiscount(**_dated(e, name, "batch_discounts", n), multiplier=_dec(e, "multiplier"))
        for n, e in enumerate(raw.get("batch_discounts", []), 1)
    )
    changes = []
    for n, e in enumerate(raw.get("price_changes", []), 1):
        dated = _dated(e, name, "price_changes", n)
        prices = e.get("prices") or {}
        unknown = sorted(set(prices) - set(UNIT_FIELDS))
        if not prices or unknown:
            raise InvalidInput(
                f"{name}: price_changes entry {n} ({_label(e)}): "
                + (f"unknown price kind(s) {', '.join(unknown)}" if unknown else "no prices")
                + f"; use {', '.join(UNIT_FIELDS)}"
            )
        changes.append(
            PriceChange(
                **dated,
                models=_models(e, name, "price_changes", n),
                tier=str(e.get("tier") or "").lower(),
                overlay=bool(e.get("overlay", False)),
                prices=UnitPrices(**{k: _dec(prices, k) for k in prices}),
            )
        )
    aliases = []
    for n, e in enumerate(raw.get("aliases", []), 1):
        dated = _dated(e, name, "aliases", n)
        if not e.get("priced_as"):
            raise InvalidInput(f"{name}: aliases entry {n} ({_label(e)}): no priced_as model")
        aliases.append(
            Alias(
                **dated,
                models=_models(e, name, "aliases", n),
                priced_as=str(e["priced_as"]),
                retired_after=bool(e.get("retired_after", False)),
            )
        )
    return Corrections(batch, tuple(changes), tuple(aliases))


def _label(entry: dict[str, Any]) -> str:
    models = entry.get("models")
    return " ".join(
        [str(entry.get("provider", "?")), *(str(m) for m in models)]
        if models
        else [str(entry.get("provider", "?"))]
    )


def _dated(entry: dict[str, Any], name: str, section: str, n: int) -> dict[str, Any]:
    where = f"{name}: {section} entry {n} ({_label(entry)})"
    missing = [k for k in ("provider", *REQUIRED) if not entry.get(k)]
    if missing:
        raise InvalidInput(
            f"{where} has no {', '.join(missing)}; every correction needs effective_from "
            "(YYYY-MM-DD), a source (URL or document) and checked_on (the date its figures "
            "were checked against the source); see docs/pricing.md"
        )
    try:
        start = dt.date.fromisoformat(entry["effective_from"])
        end = dt.date.fromisoformat(entry["effective_to"]) if entry.get("effective_to") else None
        checked = dt.date.fromisoformat(entry["checked_on"])
    except (TypeError, ValueError):
        raise InvalidInput(f"{where}: dates must be YYYY-MM-DD") from None
    if end is not None and end < start:
        raise InvalidInput(f"{where}: effective_to {end} is before effective_from {start}")
    return {
        "provider": str(entry["provider"]),
        "effective_from": start,
        "effective_to": end,
        "source": str(entry["source"]),
        "checked_on": checked,
        "note": str(entry.get("note") or ""),
    }


def _models(entry: dict[str, Any], name: str, section: str, n: int) -> frozenset[str]:
    models = entry.get("models")
    if not models or not isinstance(models, list):
        raise InvalidInput(f"{name}: {section} entry {n} ({_label(entry)}): no models listed")
    return frozenset(str(m).lower() for m in models)


def _dec(values: dict[str, Any], key: str) -> Decimal:
    try:
        value = Decimal(str(values[key]))
    except (InvalidOperation, KeyError):
        raise InvalidInput(
            f"price_corrections.json: {key} {values.get(key)!r} is not a number"
        ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(f"price_corrections.json: {key} {value} must be zero or more")
    return value
