"""Dated price corrections the catalog lacks, kept as data in `price_corrections.json`."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from tracker.costs.prices import UnitPrices

CORRECTIONS_PATH = Path(__file__).with_name("price_corrections.json")


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
