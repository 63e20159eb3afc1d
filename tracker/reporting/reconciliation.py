"""The Reconciliation page's read model: billed vs estimated cost by provider, by model and by
day (`tracker.costs.reconcile`), each variance with what explains it where the rows can tell.

USD, UTC days. Billed is compared with the estimate only on the days the provider billed
(`ReconcileReport.billed_days`), so the models' variances add up to their provider's. The
causes, read from the rows behind a figure:

- estimate only: the provider has not billed those days (yet), or reported no billed cost at
  all; nothing is compared there;
- billed, not estimated: a billed line item the price book does not price (a fee, a tool
  charge, seats): all of it is variance;
- estimated, not billed under its own name: usage on a billed day that no line item names
  (its cost is inside another line item that day);
- unpriced: tokens of a model without a list price: the estimate misses their cost;
- a price rule in force: an organisation price or discount, or a dated list-price correction;
- unexplained: what is left on the rows that have both sides when none of the above applies
  to them (under a cent: rounding).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
from sqlalchemy.orm import Session

from tracker.core.units import CENT
from tracker.costs.pricebook import PriceBook
from tracker.costs.reconcile import ReconcileReport, ReconcileRow, ReconcileTotals, reconcile
from tracker.costs.reprice import RepriceReport
from tracker.models import LINE_ITEM
from tracker.providers.registry import display_name
from tracker.reporting.overview import unpriced_frame
from tracker.reporting.sources import NOT_REPORTED

ZERO = Decimal(0)
RuleKey = tuple[dt.date, str, str]  # day, provider, model
MATCHES = "Matches"
# The price book's own note for each rule that replaces or changes a list price.
RULE_SOURCES = frozenset({"override", "discount", "correction"})
RULE_NOTES = ("organisation price", "organisation discount", "corrected", "priced as")
NAMED_AT_MOST = 3  # items a cause names before "and N more"

PROVIDER_COLUMNS = [
    "provider",
    "billed",
    "estimated",
    "variance",
    "variance_pct",
    "estimate_only",
    "unpriced_tokens",
    "cause",
]
MODEL_COLUMNS = ["provider", "model", *PROVIDER_COLUMNS[1:]]
DAY_COLUMNS = [
    "day",
    "provider",
    "billed",
    "estimated",
    "variance",
    "variance_pct",
    "unpriced_tokens",
    "cause",
]
MONEY_COLUMNS = ("billed", "estimated", "variance", "estimate_only")
REPRICE_COLUMNS = [
    "day",
    "old_estimated",
    "new_estimated",
    "change",
    "rows_changed",
    "old_unpriced_rows",
    "new_unpriced_rows",
]
REPRICE_MONEY_COLUMNS = ("old_estimated", "new_estimated", "change")


@dataclass(frozen=True)
class Reconciliation:
    """Billed vs estimated over [start, end]: totals, and one frame per grain (money as exact
    Decimal, None where a side is missing; `variance_pct` is the variance as % of billed)."""

    start: dt.date
    end: dt.date
    totals: ReconcileTotals
    providers: pd.DataFrame
    models: pd.DataFrame
    days: pd.DataFrame
    unpriced: pd.DataFrame

    @property
    def estimate_only(self) -> Decimal:
        """Estimates on days their provider has not billed: not compared with anything."""
        return self.totals.estimated - self.totals.estimated_on_billed_days


def reconciliation(*, session: Session, start: dt.date, end: dt.date) -> Reconciliation:
    """The Reconciliation page's figures for UTC days start..end inclusive."""
    report = reconcile(session=session, start=start, end=end)
    why = _Explainer(report, _rules_in_force(report, PriceBook.from_db(session)))
    by_item: dict[tuple[str, str], list[ReconcileRow]] = {}
    by_day: dict[tuple[dt.date, str], list[ReconcileRow]] = {}
    by_provider: dict[str, list[ReconcileRow]] = {}
    for r in report.rows:
        by_item.setdefault((r.provider, r.item), []).append(r)
        by_day.setdefault((r.day, r.provider), []).append(r)
        by_provider.setdefault(r.provider, []).append(r)

    providers = [
        (
            display_name(p.provider),
            p.billed,
            p.estimated_on_billed_days if p.billed is not None else None,
            p.variance,
            _pct(p.variance_share),
            p.estimated - p.estimated_on_billed_days,
            p.unpriced_tokens,
            why.explain(by_provider[p.provider], one_item=False, one_day=False),
        )
        for p in report.totals.providers
    ]
    models = [
        (
            display_name(m.provider),
            m.item or NOT_REPORTED,
            m.billed,
            m.estimated_on_billed_days if m.billed is not None else None,
            m.variance,
            _pct(m.variance_share),
            (m.estimated or ZERO) - m.estimated_on_billed_days,
            m.unpriced_tokens,
            why.explain(by_item[(m.provider, m.item)], one_item=True, one_day=False),
        )
        for m in report.models
    ]
    models.sort(key=lambda m: (m[0], -abs(m[4] or ZERO), m[1]))  # largest variance first
    days = [
        (
            d.day,
            display_name(d.provider),
            d.billed,
            d.estimated,
            d.variance,
            _pct(d.variance_share),
            d.unpriced_tokens,
            why.explain(by_day[(d.day, d.provider)], one_item=False, one_day=True),
        )
        for d in report.days
    ]
    return Reconciliation(
        start=start,
        end=end,
        totals=report.totals,
        providers=pd.DataFrame(providers, columns=PROVIDER_COLUMNS),
        models=pd.DataFrame(models, columns=MODEL_COLUMNS),
        days=pd.DataFrame(days, columns=DAY_COLUMNS),
        unpriced=unpriced_frame(session=session, start=start, end=end),
    )


def _pct(share: Decimal | None) -> Decimal | None:
    return None if share is None else share * 100


def usd(amount: Decimal) -> str:
    """An amount in a cause's text, to the cent (half up, as the tables round)."""
    cents = amount.quantize(CENT, ROUND_HALF_UP)
    return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"


def _rules_in_force(report: ReconcileReport, book: PriceBook) -> dict[RuleKey, str]:
    """(day, provider, model) -> the price rule the book applies there, for estimated rows."""
    ruled = {o.provider for o in book.overrides} | {
        c.provider for c in (*book.corrections.price_changes, *book.corrections.aliases)
    }
    found: dict[RuleKey, str] = {}
    for r in report.rows:
        if r.estimated is None or r.provider not in ruled or r.item.startswith(LINE_ITEM):
            continue
        resolved = book.resolve(r.provider, r.item, r.day)
        if resolved.source in RULE_SOURCES:
            found[(r.day, r.provider, r.item)] = next(
                (n for n in resolved.notes if n.startswith(RULE_NOTES)), resolved.source
            )
    return found


def _first_few(parts: list[str]) -> str:
    more = len(parts) - NAMED_AT_MOST
    return ", ".join(parts[:NAMED_AT_MOST]) + (f" and {more} more" if more > 0 else "")


def _named(rows: Iterable[ReconcileRow], amount: Callable[[ReconcileRow], Decimal]) -> str:
    """`item $x, item $y, ...`: each item once, with its amount over the rows."""
    per_item: dict[str, Decimal] = {}
    for r in rows:
        name = r.item or NOT_REPORTED
        per_item[name] = per_item.get(name, ZERO) + amount(r)
    return _first_few([f"{item} {usd(total)}" for item, total in per_item.items()])


class _Explainer:
    """Says what explains the variance of a group of one provider's reconciliation rows."""

    def __init__(self, report: ReconcileReport, rules: dict[RuleKey, str]):
        self.billed_days = report.billed_days
        self.last_billed: dict[str, dt.date] = {}
        for day, provider in sorted(self.billed_days):
            self.last_billed[provider] = day
        self.rules = rules

    def explain(self, rows: list[ReconcileRow], *, one_item: bool, one_day: bool) -> str:
        """The causes, '; '-separated; "Matches" when billed and estimated agree."""
        provider = rows[0].provider
        on_billed_days = [r for r in rows if (r.day, provider) in self.billed_days]
        causes = [
            *self._estimate_only(rows, provider, one_day=one_day),
            *self._one_sided(on_billed_days, one_item=one_item),
            *self._unpriced(rows, one_item=one_item),
            *self._price_rules(rows, one_item=one_item),
        ]
        both = [r for r in on_billed_days if r.billed is not None and r.estimated is not None]
        residual = sum(((r.billed or ZERO) - (r.estimated or ZERO) for r in both), ZERO)
        # Unpriced tokens or a price rule on those very rows may be what the rest is.
        accounted = any(r.unpriced_tokens or self._rule(r) for r in both)
        if residual and not accounted:
            causes.append(
                "Rounding: under a cent"
                if abs(residual) < CENT
                else f"Unexplained: {usd(residual)} on what is both billed and estimated"
            )
        if causes:
            return "; ".join(causes)
        return MATCHES if on_billed_days else "Nothing billed or estimated"

    def _rule(self, r: ReconcileRow) -> str | None:
        return self.rules.get((r.day, r.provider, r.item))

    def _estimate_only(
        self, rows: list[ReconcileRow], provider: str, *, one_day: bool
    ) -> list[str]:
        unbilled = [
            r for r in rows if r.estimated is not None and (r.day, provider) not in self.billed_days
        ]
        if not unbilled:
            return []
        last = self.last_billed.get(provider)
        name = display_name(provider)
        if last is None:
            return [f"Estimate only: {name} reported no billed cost for these dates"]
        if one_day:
            if unbilled[0].day < last:
                return [f"Estimate only: {name} billed later days but not this one"]
            return [f"Estimate only: {name} has not billed this day yet"]
        amount = sum((r.estimated or ZERO for r in unbilled), ZERO)
        n = len({r.day for r in unbilled})
        return [f"Estimate only: {n} day(s) {name} has not billed ({usd(amount)})"]

    def _one_sided(self, billed: list[ReconcileRow], *, one_item: bool) -> list[str]:
        causes = []
        fees = [r for r in billed if r.estimated is None and r.billed is not None]
        fees = [r for r in fees if not r.unpriced_tokens]  # unpriced: said below
        if fees:
            amount = sum((r.billed or ZERO for r in fees), ZERO)
            causes.append(
                f"Billed, not estimated: a charge the price book does not price ({usd(amount)})"
                if one_item
                else "Billed, not estimated: " + _named(fees, lambda r: r.billed or ZERO)
            )
        unnamed = [r for r in billed if r.billed is None and r.estimated is not None]
        if unnamed:
            amount = sum((r.estimated or ZERO for r in unnamed), ZERO)
            causes.append(
                f"Estimated, not billed under its own name on a billed day ({usd(amount)})"
                if one_item
                else "Estimated, not billed under its own name: "
                + _named(unnamed, lambda r: r.estimated or ZERO)
            )
        return causes

    def _unpriced(self, rows: list[ReconcileRow], *, one_item: bool) -> list[str]:
        unpriced = [r for r in rows if r.unpriced_tokens]
        if not unpriced:
            return []
        if one_item:
            tokens = sum(r.unpriced_tokens for r in unpriced)
            return [f"Unpriced: {tokens:,} tokens without a list price"]
        per_model: dict[str, int] = {}
        for r in unpriced:
            name = r.item or NOT_REPORTED
            per_model[name] = per_model.get(name, 0) + r.unpriced_tokens
        parts = [f"{name} ({tokens:,} tokens)" for name, tokens in per_model.items()]
        return [f"Unpriced (no list price): {_first_few(parts)}"]

    def _price_rules(self, rows: list[ReconcileRow], *, one_item: bool) -> list[str]:
        in_force: dict[str, set[str]] = {}
        for r in rows:
            if (rule := self._rule(r)) is not None:
                in_force.setdefault(r.item, set()).add(rule)
        if not in_force:
            return []
        if one_item:
            (rules,) = in_force.values()
            return [f"Price rule in force: {', '.join(sorted(rules))}"]
        parts = [f"{item} ({', '.join(sorted(rules))})" for item, rules in in_force.items()]
        return [f"Price rule in force: {_first_few(parts)}"]


def reprice_frame(report: RepriceReport) -> pd.DataFrame:
    """The days a re-price changes (or changed): old and new estimated total (USD), the
    change, rows changed, and unpriced rows before and after."""
    return pd.DataFrame(
        [
            (
                d.day,
                d.old_estimated,
                d.new_estimated,
                d.change,
                d.rows_changed,
                d.old_unpriced_rows,
                d.new_unpriced_rows,
            )
            for d in report.changed_days
        ],
        columns=REPRICE_COLUMNS,
    )
