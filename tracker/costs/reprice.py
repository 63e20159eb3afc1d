"""Re-price history: show or apply the change new overrides or corrections make (audited;
never touches billed cost).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.units import dec_str
from tracker.costs.estimate import price_stored
from tracker.costs.prices import CATALOG_VERSION


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
    def old_unpriced_rows(self) -> int:
        return sum(d.old_unpriced_rows for d in self.days)

    @property
    def new_unpriced_rows(self) -> int:
        return sum(d.new_unpriced_rows for d in self.days)

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

    summary = price_stored(
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
