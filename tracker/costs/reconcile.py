"""Billed vs estimated cost: where our price book and the providers' invoices disagree.

Money is USD `Decimal`; days are UTC. Two grains, compared only where both sides exist:

- `rows`: per day, provider and model or billed line item. Anthropic and Copilot report
  billed cost on the same rows we estimate, so the variance is meaningful per model there.
  OpenAI reports billed cost per project and line item on separate `cost:<line item>` rows
  with no tokens, and we estimate per model: such rows carry only one side, and the report
  says so (`comparable` false) instead of inventing a variance.
- `days`: per day and provider, the grain both sides always share when the provider reports
  billed cost at all. `totals` add up the provider-days that have both sides.
- `models`: per provider and model or billed line item over the range, compared on the days
  its provider billed (the same days as `totals`), so the models' variances add up to their
  provider's: a model estimated on a billed day but billed under no line item of its own
  counts $0 billed there, and a line item billed with no estimate counts its whole bill.

Unpriced usage (models the price book cannot price) is listed with its token counts; its
cost is missing from the estimate, so a provider-day with unpriced tokens is `complete`
false.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Numeric, case, func, select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput
from tracker.models import Account, Service, UsageDaily, UsageRecord, all_tokens

SHARE_QUANTUM = Decimal("0.0001")
ZERO = Decimal(0)


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _variance(
    billed: Decimal | None, estimated: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """(billed - estimated, that as a share of billed) when both exist."""
    if billed is None or estimated is None:
        return None, None
    variance = billed - estimated
    share = (variance / billed).quantize(SHARE_QUANTUM, ROUND_HALF_UP) if billed else None
    return variance, share


class _Variance:
    """Billed minus the estimate it is compared with, and that as a share of billed."""

    billed: Decimal | None
    estimated: Decimal | None

    @property
    def compared_estimate(self) -> Decimal | None:
        """The estimate comparable with `billed` (all of it, unless a subclass says less)."""
        return self.estimated

    @property
    def variance(self) -> Decimal | None:
        return _variance(self.billed, self.compared_estimate)[0]

    @property
    def variance_share(self) -> Decimal | None:
        return _variance(self.billed, self.compared_estimate)[1]


@dataclass(frozen=True)
class ReconcileRow(_Variance):
    """One day, provider and model (estimated side) or billed line item."""

    day: dt.date
    provider: str
    item: str  # the model, or the billed line item ('cost:...'), or '' when neither
    billed: Decimal | None  # None: the provider reported no billed cost on these rows
    estimated: Decimal | None  # None: nothing priced on these rows
    unpriced_tokens: int
    rows: int

    @property
    def comparable(self) -> bool:
        return self.billed is not None and self.estimated is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "provider": self.provider,
            "item": self.item,
            "billed": _s(self.billed),
            "estimated": _s(self.estimated),
            "variance": _s(self.variance),
            "variance_share": _s(self.variance_share),
            "comparable": self.comparable,
            "unpriced_tokens": self.unpriced_tokens,
            "rows": self.rows,
        }


@dataclass(frozen=True)
class ReconcileDay(_Variance):
    """One day and provider: the grain billed and estimated cost always share."""

    day: dt.date
    provider: str
    billed: Decimal | None
    estimated: Decimal
    unpriced_tokens: int

    @property
    def comparable(self) -> bool:
        return self.billed is not None

    @property
    def complete(self) -> bool:
        """True when every token of the day was priced (the estimate misses nothing)."""
        return self.unpriced_tokens == 0

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "provider": self.provider,
            "billed": _s(self.billed),
            "estimated": _s(self.estimated),
            "variance": _s(self.variance),
            "variance_share": _s(self.variance_share),
            "comparable": self.comparable,
            "complete": self.complete,
            "unpriced_tokens": self.unpriced_tokens,
        }


@dataclass(frozen=True)
class ProviderTotal(_Variance):
    """A provider over the range; billed vs estimated on the days that have both."""

    provider: str
    billed: Decimal | None  # None: this provider reported no billed cost in the range
    estimated: Decimal  # every estimate in the range
    estimated_on_billed_days: Decimal  # the part comparable with `billed`
    days_compared: int
    unpriced_tokens: int

    @property
    def compared_estimate(self) -> Decimal | None:
        return self.estimated_on_billed_days

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "billed": _s(self.billed),
            "estimated": _s(self.estimated),
            "estimated_on_billed_days": _s(self.estimated_on_billed_days),
            "variance": _s(self.variance),
            "variance_share": _s(self.variance_share),
            "days_compared": self.days_compared,
            "unpriced_tokens": self.unpriced_tokens,
        }


@dataclass(frozen=True)
class ModelTotal(_Variance):
    """A provider's model (or billed line item) over the range, compared on the days its
    provider billed: what the model adds to its provider's variance."""

    provider: str
    item: str  # as in `ReconcileRow.item`
    billed: Decimal | None  # None: the provider billed none of this item's days
    estimated: Decimal | None  # every estimate of the item in the range; None: none at all
    estimated_on_billed_days: Decimal  # the part comparable with `billed`
    days_compared: int
    unpriced_tokens: int

    @property
    def compared_estimate(self) -> Decimal | None:
        return self.estimated_on_billed_days

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "item": self.item,
            "billed": _s(self.billed),
            "estimated": _s(self.estimated),
            "estimated_on_billed_days": _s(self.estimated_on_billed_days),
            "variance": _s(self.variance),
            "variance_share": _s(self.variance_share),
            "days_compared": self.days_compared,
            "unpriced_tokens": self.unpriced_tokens,
        }


@dataclass(frozen=True)
class ReconcileTotals(_Variance):
    """All providers: billed vs estimated on comparable provider-days, and all estimates."""

    providers: list[ProviderTotal]
    billed: Decimal
    estimated: Decimal
    estimated_on_billed_days: Decimal
    unpriced_tokens: int

    @property
    def compared_estimate(self) -> Decimal | None:
        return self.estimated_on_billed_days

    def as_json(self) -> dict[str, Any]:
        return {
            "billed": _s(self.billed),
            "estimated": _s(self.estimated),
            "estimated_on_billed_days": _s(self.estimated_on_billed_days),
            "variance": _s(self.variance),
            "variance_share": _s(self.variance_share),
            "unpriced_tokens": self.unpriced_tokens,
            "providers": [p.as_json() for p in self.providers],
        }


@dataclass(frozen=True)
class UnpricedModel:
    """A model the price book could not price, and how much usage that leaves out."""

    provider: str
    model: str
    rows: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    first_day: dt.date
    last_day: dt.date

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens + self.cached_input_tokens + self.cache_write_tokens
        ) + self.output_tokens

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "rows": self.rows,
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
        }


@dataclass(frozen=True)
class ReconcileReport:
    """Billed vs estimated over [start, end]: rows, provider-days, totals, unpriced models."""

    start: dt.date
    end: dt.date
    rows: list[ReconcileRow]
    days: list[ReconcileDay]
    totals: ReconcileTotals
    unpriced: list[UnpricedModel] = field(default_factory=list)
    models: list[ModelTotal] = field(default_factory=list)

    @property
    def billed_days(self) -> set[tuple[dt.date, str]]:
        """The (day, provider) pairs the provider billed: where billed meets estimated."""
        return {(d.day, d.provider) for d in self.days if d.comparable}

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "currency": "USD",
            "totals": self.totals.as_json(),
            "models": [m.as_json() for m in self.models],
            "days": [d.as_json() for d in self.days],
            "rows": [r.as_json() for r in self.rows],
            "unpriced": [u.as_json() for u in self.unpriced],
        }


def _check_range(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise InvalidInput("the end date is before the start date")


def _unpriced_tokens_expr() -> Any:
    u = UsageRecord
    tokens = all_tokens(u)
    return func.coalesce(func.sum(case((u.pricing_status == "unpriced", tokens), else_=0)), 0)


def reconcile(*, session: Session, start: dt.date, end: dt.date) -> ReconcileReport:
    """Compare billed with estimated cost per day, provider and model/line item, and in total."""
    _check_range(start, end)
    u = UsageRecord
    money = Numeric(18, 6)
    item = func.coalesce(func.nullif(u.model, ""), u.usage_type)
    stmt = (
        select(
            u.day,
            Service.name,
            item.label("item"),
            func.sum(u.billed_cost, type_=money),
            func.count(u.billed_cost),
            func.sum(u.estimated_cost, type_=money),
            func.count(u.estimated_cost),
            _unpriced_tokens_expr(),
            func.count(),
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= start, u.day <= end)
        .group_by(u.day, Service.name, item)
        .order_by(u.day, Service.name, item)
    )
    rows: list[ReconcileRow] = []
    for day, provider, name, billed, n_billed, est, n_est, unpriced, count in session.execute(stmt):
        rows.append(
            ReconcileRow(
                day=day,
                provider=provider,
                item=name or "",
                billed=Decimal(billed) if n_billed else None,
                estimated=Decimal(est) if n_est else None,
                unpriced_tokens=int(unpriced or 0),
                rows=int(count),
            )
        )

    by_day: dict[tuple[dt.date, str], list[ReconcileRow]] = defaultdict(list)
    for r in rows:
        by_day[(r.day, r.provider)].append(r)
    days: list[ReconcileDay] = []
    for (day, provider), group in sorted(by_day.items()):
        billed_parts = [r.billed for r in group if r.billed is not None]
        days.append(
            ReconcileDay(
                day=day,
                provider=provider,
                billed=sum(billed_parts, ZERO) if billed_parts else None,
                estimated=sum((r.estimated or ZERO for r in group), ZERO),
                unpriced_tokens=sum(r.unpriced_tokens for r in group),
            )
        )

    per_provider: dict[str, list[ReconcileDay]] = defaultdict(list)
    for d in days:
        per_provider[d.provider].append(d)
    providers = []
    for provider, provider_days in sorted(per_provider.items()):
        compared = [d for d in provider_days if d.comparable]
        providers.append(
            ProviderTotal(
                provider=provider,
                billed=sum((d.billed or ZERO for d in compared), ZERO) if compared else None,
                estimated=sum((d.estimated for d in provider_days), ZERO),
                estimated_on_billed_days=sum((d.estimated for d in compared), ZERO),
                days_compared=len(compared),
                unpriced_tokens=sum(d.unpriced_tokens for d in provider_days),
            )
        )
    totals = ReconcileTotals(
        providers=providers,
        billed=sum((p.billed or ZERO for p in providers), ZERO),
        estimated=sum((p.estimated for p in providers), ZERO),
        estimated_on_billed_days=sum((p.estimated_on_billed_days for p in providers), ZERO),
        unpriced_tokens=sum(p.unpriced_tokens for p in providers),
    )
    billed_days = {(d.day, d.provider) for d in days if d.comparable}
    per_item: dict[tuple[str, str], list[ReconcileRow]] = defaultdict(list)
    for r in rows:
        per_item[(r.provider, r.item)].append(r)
    return ReconcileReport(
        start=start,
        end=end,
        rows=rows,
        days=days,
        totals=totals,
        unpriced=unpriced_models(session=session, start=start, end=end),
        models=[
            _model_total(provider, item, group, billed_days)
            for (provider, item), group in sorted(per_item.items())
        ],
    )


def _model_total(
    provider: str, item: str, rows: list[ReconcileRow], billed_days: set[tuple[dt.date, str]]
) -> ModelTotal:
    on_billed_days = [r for r in rows if (r.day, provider) in billed_days]
    estimates = [r.estimated for r in rows if r.estimated is not None]
    return ModelTotal(
        provider=provider,
        item=item,
        billed=sum((r.billed or ZERO for r in on_billed_days), ZERO) if on_billed_days else None,
        estimated=sum(estimates, ZERO) if estimates else None,
        estimated_on_billed_days=sum((r.estimated or ZERO for r in on_billed_days), ZERO),
        days_compared=len({r.day for r in on_billed_days}),
        unpriced_tokens=sum(r.unpriced_tokens for r in rows),
    )


def unpriced_models(*, session: Session, start: dt.date, end: dt.date) -> list[UnpricedModel]:
    """Models with unpriced usage in [start, end], most tokens first (for dashboard, alerts)."""
    _check_range(start, end)
    # The daily rollup keeps unpriced rows apart (`unpriced`), with the same sums and days.
    u = UsageDaily
    stmt = (
        select(
            Service.name,
            u.model,
            func.coalesce(func.sum(u.row_count), 0),
            func.coalesce(func.sum(u.input_tokens), 0),
            func.coalesce(func.sum(u.cached_input_tokens), 0),
            func.coalesce(func.sum(u.cache_write_tokens + u.cache_write_1h_tokens), 0),
            func.coalesce(func.sum(u.output_tokens), 0),
            func.min(u.day),
            func.max(u.day),
        )
        .join(Account, Account.id == u.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(u.day >= start, u.day <= end, u.unpriced.is_(True))
        .group_by(Service.name, u.model)
    )
    found = [
        UnpricedModel(
            provider=provider,
            model=model,
            rows=int(rows),
            input_tokens=int(i),
            cached_input_tokens=int(c),
            cache_write_tokens=int(w),
            output_tokens=int(o),
            first_day=first,
            last_day=last,
        )
        for provider, model, rows, i, c, w, o, first, last in session.execute(stmt)
    ]
    return sorted(found, key=lambda m: (-m.tokens, m.provider, m.model))
