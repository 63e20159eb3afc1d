"""The aggregated frames every page (and later the exports) read.

Everything is grouped in SQL; no function pulls the usage table into pandas. Questions that
need no project or API key read the daily rollup `usage_daily` (same sums, far fewer rows;
see `_source`), the others the detail. Money stays
exact: amounts are summed in the database as whole micro-dollars (the `NUMERIC(18, 6)` unit)
and turned back into `Decimal` here, because SQLite keeps NUMERIC as floating point and a
plain `SUM` there would drift by fractions of a cent.

Cost basis: the one rule of `tracker.spend`: a row counts the provider's billed amount, or
our estimate where the provider bills nothing for that account and day, or $0 when its cost
is already inside that day's billed line items ('covered') or it cannot be priced
(unpriced, flagged). Every total comes with its billed / estimated split so pages can say
which is which. Days are UTC calendar days; ranges are inclusive of both ends unless said.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Select, case, cast, func, or_, select, text
from sqlalchemy.orm import Session

from tracker.models import (
    TOKEN_COLUMNS,
    Account,
    AuditLog,
    Service,
    Setting,
    SyncRun,
    UsageDaily,
    UsageLabel,
    UsageLabelMonthly,
    UsageRecord,
    all_tokens,
)
from tracker.spend import ROW_SPEND_MICROS
from tracker.spend import micros as _micros

MICRO = Decimal("0.000001")
# The organisation's monthly budget (USD) in the `settings` table; when it is not set, the
# overview uses the sum of the accounts' own budgets.
ORG_BUDGET_SETTING_KEY = "org_monthly_budget"
# models.TOKEN_COLUMNS -> the label pages show.
TOKEN_KINDS: dict[str, str] = dict(
    zip(
        TOKEN_COLUMNS,
        ("Input (uncached)", "Cached input", "Cache write", "Cache write (1 h)", "Output"),
        strict=True,
    )
)
# Group-by choices of the usage explorer: label -> output column name.
GROUP_BY_CHOICES: dict[str, str] = {
    "Day": "day",
    "Provider": "provider",
    "Account": "account",
    "Model": "model",
    "Project": "project",
    "API key": "api_key",
    "Usage type": "usage_type",
}
STATUS_OK, STATUS_WARNING, STATUS_CRITICAL = "OK", "Warning", "Critical"

_u = UsageRecord
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


# Per-row cost and its parts, by the one rule in tracker.spend (no day counted twice).
_ROW_COST = ROW_SPEND_MICROS
_ROW_BILLED = case((_u.cost_source == "billed", _micros(_u.billed_cost)), else_=0)
_ROW_ESTIMATED = case((_u.cost_source == "estimated", _micros(_u.estimated_cost)), else_=0)
_ROW_UNPRICED = case((_u.cost_source == "none", 1), else_=0)
_ROW_TOKENS = all_tokens(_u)


# --- where the sums come from: the detail, or a rollup ---------------------------------------
#
# Two rollups hold the detail's sums, kept by triggers in every writer's transaction
# (tracker.models): `usage_daily` per account, day, model, usage type and tier, and
# `usage_labels` per project or API key (label and id), day and account. A question that
# groups or filters by nothing finer than one of them gets the same answer from it as from
# the detail, reading a fraction of the rows. Questions that need a project or key together
# with a model or usage type, or a project together with a key, read the detail.
# USE_ROLLUP = False makes every query read the detail (tests compare the two).
USE_ROLLUP = True
_d = UsageDaily
_l = UsageLabel


@dataclass(frozen=True)
class _Source:
    """The columns and aggregate expressions of one source of usage sums (None: not held)."""

    entity: Any
    day: Any
    account_id: Any
    sums: dict[str, ColumnElement[Any]]
    model: Any = None
    usage_type: Any = None
    project: Any = None  # the label shown (name, else id) ...
    project_id: Any = None  # ... and the id, both matched by the project filter
    api_key: Any = None
    api_key_id: Any = None
    where: tuple[ColumnElement[bool], ...] = ()
    kind: str | None = None  # usage_labels' kind, for its monthly twin


def _total(expr: Any) -> ColumnElement[int]:
    # PostgreSQL sums BIGINT as NUMERIC, which the driver parses into Decimal, slowly; whole
    # micro-dollars and token counts fit a BIGINT (an overflow would raise, not wrap).
    return cast(func.coalesce(func.sum(expr), 0), BigInteger)


def _project_label() -> ColumnElement[str]:
    return func.coalesce(func.nullif(_u.project_name, ""), _u.project_id)


def _api_key_label() -> ColumnElement[str]:
    return func.coalesce(func.nullif(_u.api_key_name, ""), _u.api_key_id)


def _rollup_sums(entity: Any) -> dict[str, ColumnElement[Any]]:
    """The sums of a rollup table (`usage_daily` and `usage_labels` have the same columns)."""
    return {
        **{k: _total(getattr(entity, k)) for k in (*TOKEN_KINDS, "requests")},
        "cost": _total(entity.cost_micros),
        "billed_cost": _total(entity.billed_micros),
        "estimated_cost": _total(entity.estimated_micros),
        "unpriced_rows": _total(entity.none_rows),
        "tokens": _total(all_tokens(entity)),
        "_rows": _total(entity.row_count),
    }


_DETAIL = _Source(
    entity=_u,
    day=_u.day,
    account_id=_u.account_id,
    model=_u.model,
    usage_type=_u.usage_type,
    project=_project_label(),
    project_id=_u.project_id,
    api_key=_api_key_label(),
    api_key_id=_u.api_key_id,
    sums={
        **{k: _total(getattr(_u, k)) for k in (*TOKEN_KINDS, "requests")},
        "cost": _total(_ROW_COST),
        "billed_cost": _total(_ROW_BILLED),
        "estimated_cost": _total(_ROW_ESTIMATED),
        "unpriced_rows": _total(_ROW_UNPRICED),
        "tokens": _total(_ROW_TOKENS),
        "_rows": func.count(_u.id),
    },
)
_ROLLUP = _Source(
    entity=_d,
    day=_d.day,
    account_id=_d.account_id,
    model=_d.model,
    usage_type=_d.usage_type,
    sums=_rollup_sums(_d),
)


def _labels_source(kind: str) -> _Source:
    """One kind of `usage_labels` ('project' or 'api_key') as a source."""
    labels: dict[str, Any] = {kind: _l.label, f"{kind}_id": _l.ident}
    return _Source(
        entity=_l,
        day=_l.day,
        account_id=_l.account_id,
        sums=_rollup_sums(_l),
        where=(_l.kind == kind,),
        kind=kind,
        **labels,
    )


_BY_PROJECT = _labels_source("project")
_BY_API_KEY = _labels_source("api_key")


def _source(flt: Dimensions | None = None, group_by: Sequence[str] = ()) -> _Source:
    """The smallest source that holds every dimension the question groups or filters by."""
    if not USE_ROLLUP:
        return _DETAIL
    needed = set(group_by)
    if flt is not None:
        needed |= {
            name
            for name, values in (
                ("model", flt.models),
                ("project", flt.projects),
                ("api_key", flt.api_keys),
            )
            if values
        }
    for src in (_ROLLUP, _BY_PROJECT, _BY_API_KEY):
        if all(name in _DIMENSIONS_ANY or getattr(src, name) is not None for name in needed):
            if src is not _ROLLUP and "day" not in needed and isinstance(flt, UsageFilter):
                return _with_months(src, flt)
            return src
    return _DETAIL


# Dimensions every source has (through the account).
_DIMENSIONS_ANY = {"day", "provider", "account"}
_m = UsageLabelMonthly


def _with_months(src: _Source, flt: UsageFilter) -> _Source:
    """`src` (one kind of usage_labels) with the window's whole months read from the monthly
    table and only the days at its ends from the daily one; for questions without a day."""
    first = flt.start if flt.start.day == 1 else _next_month(flt.start)
    after = month_start(flt.end + dt.timedelta(days=1))  # the first day of no whole month
    if first >= after or src.kind is None:
        return src
    columns = [c.name for c in _l.__table__.columns if c.name not in ("kind", "day")]
    days = select(*[_l.__table__.c[c] for c in columns], _l.day).where(
        _l.kind == src.kind, or_(_l.day < first, _l.day >= after)
    )
    months = select(*[_m.__table__.c[c] for c in columns], _m.month.label("day")).where(
        _m.kind == src.kind, _m.month >= first, _m.month < after
    )
    both = days.union_all(months).subquery("usage_labels_periods")
    labels: dict[str, Any] = {src.kind: both.c.label, f"{src.kind}_id": both.c.ident}
    return _Source(
        entity=both,
        day=both.c.day,
        account_id=both.c.account_id,
        sums=_rollup_sums(both.c),
        **labels,
    )


def _cost_columns(src: _Source | None = None) -> list[ColumnElement[Any]]:
    src = src or _source()
    return [
        src.sums[name].label(name)
        for name in ("cost", "billed_cost", "estimated_cost", "unpriced_rows")
    ]


def to_dollars(micros: int | None) -> Decimal:
    """Whole micro-dollars back to an exact Decimal with six places."""
    return (Decimal(int(micros or 0)) * MICRO).quantize(MICRO)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    """The first day of the month after `day`'s."""
    return month_start(month_start(day) + dt.timedelta(days=32))


def same_days_last_month(day: dt.date) -> tuple[dt.date, dt.date]:
    """The comparison window for month-to-date: the 1st of last month to the same day number.

    When last month is shorter (e.g. 31 March -> February), the window ends on its last day.
    """
    last_month_end = month_start(day) - dt.timedelta(days=1)
    start = last_month_end.replace(day=1)
    return start, last_month_end.replace(day=min(day.day, last_month_end.day))


def today_utc() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# --- month to date --------------------------------------------------------------------------


@dataclass(frozen=True)
class CostTotals:
    """A cost total (USD) with its billed / estimated split and the count of unpriced rows."""

    cost: Decimal
    billed: Decimal
    estimated: Decimal
    unpriced_rows: int

    @property
    def basis(self) -> str:
        """Say which figures make up the total: billed, estimated or mixed."""
        if self.billed and self.estimated:
            return "mixed"
        if self.estimated:
            return "estimated"
        if self.billed:
            return "billed"
        return "none"


def cost_totals(*, session: Session, start: dt.date, end: dt.date) -> CostTotals:
    """Total cost of usage on UTC days start..end inclusive, all accounts."""
    src = _source()
    row = session.execute(select(*_cost_columns(src)).where(src.day >= start, src.day <= end)).one()
    return CostTotals(
        cost=to_dollars(row.cost),
        billed=to_dollars(row.billed_cost),
        estimated=to_dollars(row.estimated_cost),
        unpriced_rows=int(row.unpriced_rows or 0),
    )


@dataclass(frozen=True)
class SpendSummary:
    """Month-to-date spend, the same days last month, and the budget used."""

    today: dt.date
    month_start: dt.date
    current: CostTotals
    previous_start: dt.date
    previous_end: dt.date
    previous: CostTotals
    budget: Decimal | None
    budget_source: str  # "organisation", "accounts" or "none"

    @property
    def change_pct(self) -> Decimal | None:
        """Change vs the same days last month, in percent; None when last month was zero."""
        if not self.previous.cost:
            return None
        return (self.current.cost - self.previous.cost) / self.previous.cost * 100

    @property
    def budget_used_pct(self) -> Decimal | None:
        if not self.budget:
            return None
        return self.current.cost / self.budget * 100


def org_budget(*, session: Session) -> tuple[Decimal | None, str]:
    """The organisation's monthly budget and where it came from."""
    raw = session.scalar(select(Setting.value).where(Setting.key == ORG_BUDGET_SETTING_KEY))
    if raw:
        return Decimal(raw), "organisation"
    summed = session.scalar(
        select(func.sum(_micros(Account.monthly_budget))).where(
            Account.monthly_budget.is_not(None), Account.status != "disabled"
        )
    )
    if summed is None:
        return None, "none"
    return to_dollars(summed), "accounts"


def spend_summary(*, session: Session, today: dt.date) -> SpendSummary:
    """Month-to-date spend through `today` (UTC) compared with the same days last month."""
    start = month_start(today)
    prev_start, prev_end = same_days_last_month(today)
    budget, source = org_budget(session=session)
    return SpendSummary(
        today=today,
        month_start=start,
        current=cost_totals(session=session, start=start, end=today),
        previous_start=prev_start,
        previous_end=prev_end,
        previous=cost_totals(session=session, start=prev_start, end=prev_end),
        budget=budget,
        budget_source=source,
    )


# --- per-account cards ----------------------------------------------------------------------


def status_for(pct: Decimal | None, *, warning_pct: Decimal, critical_pct: Decimal) -> str:
    """OK / Warning / Critical for a usage percentage (of budget or quota)."""
    if pct is None:
        return STATUS_OK
    if pct >= critical_pct:
        return STATUS_CRITICAL
    if pct >= warning_pct:
        return STATUS_WARNING
    return STATUS_OK


@dataclass(frozen=True)
class AccountCard:
    """What the overview shows of one account this month (USD, UTC)."""

    account_id: int
    name: str
    provider: str
    provider_display_name: str
    cost: Decimal
    billed: Decimal
    estimated: Decimal
    tokens: int
    monthly_budget: Decimal | None
    budget_used_pct: Decimal | None
    token_quota: int | None
    quota_used_pct: Decimal | None
    tokens_remaining: int | None
    balance_remaining: Decimal | None
    balance_currency: str | None
    account_status: str
    last_sync_at: dt.datetime | None
    last_error: str | None
    status: str


def account_cards(
    *,
    session: Session,
    today: dt.date,
    warning_pct: Decimal,
    critical_pct: Decimal,
) -> list[AccountCard]:
    """One card per account: month-to-date cost, budget and quota used, status."""
    start = month_start(today)
    src = _source()
    usage = (
        select(
            src.account_id.label("account_id"),
            src.sums["cost"].label("cost"),
            src.sums["billed_cost"].label("billed"),
            src.sums["estimated_cost"].label("estimated"),
            src.sums["tokens"].label("tokens"),
        )
        .where(src.day >= start, src.day <= today)
        .group_by(src.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.name,
            Service.name.label("provider"),
            Service.display_name,
            Account.monthly_budget,
            Account.token_quota,
            Account.balance_remaining,
            Account.balance_currency,
            Account.status,
            Account.last_sync_at,
            Account.last_error,
            usage.c.cost,
            usage.c.billed,
            usage.c.estimated,
            usage.c.tokens,
        )
        .join(Service, Service.id == Account.service_id)
        .outerjoin(usage, usage.c.account_id == Account.id)
        .order_by(Account.name)
    ).all()
    cards = []
    for r in rows:
        cost = to_dollars(r.cost)
        tokens = int(r.tokens or 0)
        budget_pct = cost / r.monthly_budget * 100 if r.monthly_budget else None
        quota_pct = Decimal(tokens) / r.token_quota * 100 if r.token_quota else None
        worst = max((p for p in (budget_pct, quota_pct) if p is not None), default=None)
        cards.append(
            AccountCard(
                account_id=r.id,
                name=r.name,
                provider=r.provider,
                provider_display_name=r.display_name,
                cost=cost,
                billed=to_dollars(r.billed),
                estimated=to_dollars(r.estimated),
                tokens=tokens,
                monthly_budget=r.monthly_budget,
                budget_used_pct=budget_pct,
                token_quota=r.token_quota,
                quota_used_pct=quota_pct,
                tokens_remaining=max(r.token_quota - tokens, 0) if r.token_quota else None,
                balance_remaining=r.balance_remaining,
                balance_currency=r.balance_currency,
                account_status=r.status,
                last_sync_at=r.last_sync_at,
                last_error=r.last_error,
                status=status_for(worst, warning_pct=warning_pct, critical_pct=critical_pct),
            )
        )
    return cards


# --- charts ----------------------------------------------------------------------------------


def daily_cost_by_provider(*, session: Session, end: dt.date, days: int = 30) -> pd.DataFrame:
    """Cost per UTC day and provider for the `days` days ending on `end` (inclusive).

    Columns: day (date), provider (display name), cost, billed_cost, estimated_cost (Decimal).
    Days without usage are absent; the chart fills them.
    """
    start = end - dt.timedelta(days=days - 1)
    src = _source()
    rows = session.execute(
        select(
            src.day.label("day"),
            Service.display_name.label("provider"),
            *_cost_columns(src)[:3],
        )
        .join(Account, Account.id == src.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(src.day >= start, src.day <= end)
        .group_by(src.day, Service.display_name)
        .order_by(src.day, Service.display_name)
    ).all()
    return pd.DataFrame(
        [
            {
                "day": r.day,
                "provider": r.provider,
                "cost": to_dollars(r.cost),
                "billed_cost": to_dollars(r.billed_cost),
                "estimated_cost": to_dollars(r.estimated_cost),
            }
            for r in rows
        ],
        columns=["day", "provider", "cost", "billed_cost", "estimated_cost"],
    )


def top_models(*, session: Session, start: dt.date, end: dt.date, limit: int = 10) -> pd.DataFrame:
    """The models with the highest cost over start..end (inclusive), highest first."""
    src = _source()
    cost = src.sums["cost"]
    rows = session.execute(
        select(
            src.model.label("model"),
            Service.display_name.label("provider"),
            cost.label("cost"),
            src.sums["tokens"].label("tokens"),
            src.sums["requests"].label("requests"),
        )
        .join(Account, Account.id == src.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(src.day >= start, src.day <= end)
        .group_by(src.model, Service.display_name)
        .order_by(cost.desc(), src.model)
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            {
                "model": r.model or "(not reported)",
                "provider": r.provider,
                "cost": to_dollars(r.cost),
                "tokens": int(r.tokens),
                "requests": int(r.requests),
            }
            for r in rows
        ],
        columns=["model", "provider", "cost", "tokens", "requests"],
    )


# --- usage explorer --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Dimensions:
    """The usage explorer's filters (also the exports'); an empty tuple means "all".

    `projects` and `api_keys` match the label shown (the name, else the id) or the id.
    """

    providers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()

    def over(self, start: dt.date, end: dt.date) -> UsageFilter:
        """These filters over UTC days start..end inclusive."""
        dims = {f.name: getattr(self, f.name) for f in dataclasses.fields(Dimensions)}
        return UsageFilter(start=start, end=end, **dims)


@dataclass(frozen=True, kw_only=True)
class UsageFilter(Dimensions):
    """Dimension filters over UTC days start..end inclusive."""

    start: dt.date
    end: dt.date


def _dimension(name: str, src: _Source = _DETAIL) -> ColumnElement[Any]:
    columns: dict[str, Any] = {
        "day": src.day,
        "provider": Service.name,
        "account": Account.name,
        "model": src.model,
        "project": src.project,
        "api_key": src.api_key,
        "usage_type": src.usage_type,
    }
    return columns[name]


def filter_usage(stmt: SelectT, flt: UsageFilter) -> SelectT:
    """Join usage to account and service and apply the date range and dimension filters."""
    return _filter_source(stmt, flt, _DETAIL)


def _filter_source(
    stmt: SelectT, flt: UsageFilter, src: _Source, *, group_by: Sequence[str] | None = None
) -> SelectT:
    """`filter_usage` on a source `_source` chose (one that holds the filtered dimensions).

    With `group_by` (the statement selects nothing else from accounts and services), the
    join to them is left out when neither groups nor filters need it: it is a third of the
    time of a grouping over hundreds of thousands of rows.
    """
    stmt = stmt.select_from(src.entity).where(src.day >= flt.start, src.day <= flt.end, *src.where)
    if group_by is None or flt.providers or flt.accounts or {"provider", "account"} & set(group_by):
        stmt = stmt.join(Account, Account.id == src.account_id).join(
            Service, Service.id == Account.service_id
        )
    if flt.providers:
        stmt = stmt.where(Service.name.in_(flt.providers))
    if flt.accounts:
        stmt = stmt.where(Account.name.in_(flt.accounts))
    if flt.models:
        stmt = stmt.where(src.model.in_(flt.models))
    if flt.projects:
        stmt = stmt.where(or_(src.project.in_(flt.projects), src.project_id.in_(flt.projects)))
    if flt.api_keys:
        stmt = stmt.where(or_(src.api_key.in_(flt.api_keys), src.api_key_id.in_(flt.api_keys)))
    return stmt


@dataclass(frozen=True)
class FilterOptions:
    """The values each explorer filter can take in a date range."""

    providers: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)


# PostgreSQL has no skip scan: walk the distinct labels through usage_labels' primary key (a
# couple of index probes per label, about a thousand labels) and keep those used in the range,
# instead of reading every label-day of a year.
_LABELS_IN_RANGE = text(
    """
    WITH RECURSIVE l AS (
        (SELECT kind, label FROM usage_labels ORDER BY kind, label LIMIT 1)
        UNION ALL
        SELECT n.kind, n.label FROM l CROSS JOIN LATERAL (
            SELECT u.kind, u.label FROM usage_labels AS u
            WHERE (u.kind, u.label) > (l.kind, l.label)
            ORDER BY u.kind, u.label LIMIT 1
        ) AS n
    )
    SELECT kind, label FROM l WHERE EXISTS (
        SELECT 1 FROM usage_labels AS u
        WHERE u.kind = l.kind AND u.label = l.label AND u.day BETWEEN :start AND :end
    )
    """
)


def _labels_in_range(session: Session, start: dt.date, end: dt.date) -> list[tuple[str, str]]:
    """(kind, label) of the projects and API keys used on days start..end."""
    if session.get_bind().dialect.name == "postgresql":
        rows = session.execute(_LABELS_IN_RANGE, {"start": start, "end": end})
    else:
        rows = session.execute(
            select(UsageLabel.kind, UsageLabel.label)
            .where(UsageLabel.day >= start, UsageLabel.day <= end)
            .distinct()
        )
    return [(str(k), str(v)) for k, v in rows]


def filter_options(*, session: Session, start: dt.date, end: dt.date) -> FilterOptions:
    """Distinct providers, accounts, models, projects and API keys used in start..end.

    Each list is sorted by code point (the same on every backend and collation).
    """
    base = UsageFilter(start=start, end=end)
    src = _source()
    # Providers, accounts and models in one pass (a few hundred combinations).
    found: list[tuple[str, Any]] = []
    for provider, account, model in session.execute(
        _filter_source(select(Service.name, Account.name, src.model).distinct(), base, src)
    ):
        found += [("provider", provider), ("account", account), ("model", model)]
    if USE_ROLLUP:
        found += _labels_in_range(session, start, end)
    else:
        pairs = session.execute(
            filter_usage(select(_project_label(), _api_key_label()).distinct(), base)
        ).all()
        found += [("project", p) for p, _ in pairs] + [("api_key", k) for _, k in pairs]

    def values(kind: str) -> list[str]:
        return sorted({str(v) for k, v in found if k == kind and v not in (None, "")})

    return FilterOptions(
        providers=values("provider"),
        accounts=values("account"),
        models=values("model"),
        projects=values("project"),
        api_keys=values("api_key"),
    )


USAGE_VALUE_COLUMNS = [
    *TOKEN_KINDS,
    "requests",
    "cost",
    "billed_cost",
    "estimated_cost",
    "unpriced_rows",
]


def usage_table(*, session: Session, flt: UsageFilter, group_by: Sequence[str]) -> pd.DataFrame:
    """Usage and cost grouped by the chosen dimensions (names from GROUP_BY_CHOICES values).

    Columns: the group columns, then USAGE_VALUE_COLUMNS; money as Decimal (USD), ordered
    by the group columns (day ascending) or by cost descending when not grouped by day.
    """
    unknown = [g for g in group_by if g not in GROUP_BY_CHOICES.values()]
    if unknown:
        raise ValueError(f"unknown group-by column(s): {', '.join(unknown)}")
    src = _source(flt, group_by)
    dims = [_dimension(g, src).label(g) for g in group_by]
    cost = src.sums["cost"]
    stmt = _filter_source(
        select(
            *dims,
            *[src.sums[name].label(name) for name in (*USAGE_VALUE_COLUMNS, "_rows")],
        ),
        flt,
        src,
        group_by=group_by,
    )
    if dims:
        stmt = stmt.group_by(*[_dimension(g, src) for g in group_by])
        if "day" in group_by:
            stmt = stmt.order_by(*[_dimension(g, src) for g in group_by])
        else:
            stmt = stmt.order_by(cost.desc(), *[_dimension(g, src) for g in group_by])
    names = [*group_by, *USAGE_VALUE_COLUMNS, "_rows"]
    # Column by column: a year by day and project is tens of thousands of rows.
    columns = list(zip(*session.execute(stmt).all(), strict=True)) or [()] * len(names)
    data: dict[str, list[Any]] = dict(zip(names, map(list, columns), strict=True))
    for name in (*TOKEN_KINDS, "requests", "unpriced_rows", "_rows"):
        data[name] = [int(v) for v in data[name]]
    for name in ("cost", "billed_cost", "estimated_cost"):
        data[name] = [to_dollars(v) for v in data[name]]
    if not group_by and data["_rows"] == [0]:
        data = {name: [] for name in names}  # an ungrouped aggregate is one row even if empty
    data.pop("_rows")
    return pd.DataFrame(data, columns=[*group_by, *USAGE_VALUE_COLUMNS])


def tokens_by_kind(*, session: Session, flt: UsageFilter) -> pd.DataFrame:
    """Token totals per kind (input, cached input, cache writes, output) under the filters."""
    src = _source(flt)
    stmt = _filter_source(
        select(*[src.sums[k].label(k) for k in TOKEN_KINDS]), flt, src, group_by=()
    )
    row = session.execute(stmt).mappings().one()
    return pd.DataFrame(
        [{"kind": label, "tokens": int(row[k])} for k, label in TOKEN_KINDS.items()],
        columns=["kind", "tokens"],
    )


# --- sync health -----------------------------------------------------------------------------


def sync_freshness(*, session: Session, now: dt.datetime) -> pd.DataFrame:
    """Per account: last sync, hours since, last complete day, last run and last error."""
    latest = (
        select(SyncRun.account_id, func.max(SyncRun.id).label("run_id"))
        .group_by(SyncRun.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.name,
            Service.display_name.label("provider"),
            Account.status,
            Account.last_sync_at,
            Account.last_complete_day,
            Account.last_error,
            Account.last_error_at,
            SyncRun.status.label("last_run_status"),
            SyncRun.started_at.label("last_run_at"),
        )
        .join(Service, Service.id == Account.service_id)
        .outerjoin(latest, latest.c.account_id == Account.id)
        .outerjoin(SyncRun, SyncRun.id == latest.c.run_id)
        .order_by(Account.name)
    ).all()
    records = []
    for r in rows:
        hours = (
            Decimal(str(round((now - r.last_sync_at).total_seconds() / 3600, 1)))
            if r.last_sync_at
            else None
        )
        records.append(
            {
                "account": r.name,
                "provider": r.provider,
                "status": r.status,
                "last_sync_at": r.last_sync_at,
                "hours_since_sync": hours,
                "last_complete_day": r.last_complete_day,
                "last_run_status": r.last_run_status,
                "last_run_at": r.last_run_at,
                "last_error": r.last_error,
                "last_error_at": r.last_error_at,
            }
        )
    return pd.DataFrame(
        records,
        columns=[
            "account",
            "provider",
            "status",
            "last_sync_at",
            "hours_since_sync",
            "last_complete_day",
            "last_run_status",
            "last_run_at",
            "last_error",
            "last_error_at",
        ],
    )


def recent_sync_runs(*, session: Session, limit: int = 50) -> pd.DataFrame:
    """The latest sync runs of every account, newest first."""
    rows = session.execute(
        select(
            SyncRun.started_at,
            Account.name.label("account"),
            SyncRun.trigger,
            SyncRun.range_start,
            SyncRun.range_end,
            SyncRun.status,
            SyncRun.rows_written,
            SyncRun.duration_ms,
            SyncRun.error,
        )
        .join(Account, Account.id == SyncRun.account_id)
        .order_by(SyncRun.started_at.desc(), SyncRun.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [dict(r._mapping) for r in rows],
        columns=[
            "started_at",
            "account",
            "trigger",
            "range_start",
            "range_end",
            "status",
            "rows_written",
            "duration_ms",
            "error",
        ],
    )


def daily_gaps(*, session: Session, end: dt.date, days: int = 30) -> pd.DataFrame:
    """Per account, the UTC days in the window with no usage row at all.

    The window is the `days` days ending on `end`, cut to start at the account's first row
    and to stop at its last complete day when known. A gap can also be a day without any
    usage; the page says so.
    """
    start = end - dt.timedelta(days=days - 1)
    seen = session.execute(
        select(Account.name, _u.day)
        .select_from(_u)
        .join(Account, Account.id == _u.account_id)
        .where(_u.day >= start, _u.day <= end)
        .group_by(Account.name, _u.day)
        .order_by(Account.name, _u.day)
    ).all()
    complete = {
        name: day for name, day in session.execute(select(Account.name, Account.last_complete_day))
    }
    by_account: dict[str, set[dt.date]] = {}
    for name, day in seen:
        by_account.setdefault(name, set()).add(day)
    records = []
    for name, present in sorted(by_account.items()):
        last = min(end, complete.get(name) or end)
        day = min(present)
        missing = []
        while day <= last:
            if day not in present:
                missing.append(day)
            day += dt.timedelta(days=1)
        records.append(
            {
                "account": name,
                "first_day": min(present),
                "last_day": max(present),
                "days_with_usage": len(present),
                "missing_days": len(missing),
                "missing": ", ".join(d.isoformat() for d in missing),
            }
        )
    return pd.DataFrame(
        records,
        columns=["account", "first_day", "last_day", "days_with_usage", "missing_days", "missing"],
    )


# --- admin ----------------------------------------------------------------------------------


def recent_audit(*, session: Session, limit: int = 200) -> pd.DataFrame:
    """The latest audit-log entries, newest first (details never hold secrets)."""
    rows = session.execute(
        select(AuditLog.at, AuditLog.actor, AuditLog.action, AuditLog.target, AuditLog.details)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "details": ""
                if not r.details
                else ", ".join(f"{k}={v}" for k, v in r.details.items()),
            }
            for r in rows
        ],
        columns=["at", "actor", "action", "target", "details"],
    )


# --- accounts page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitReading:
    """One resource of a rate-limit snapshot: limit, remaining and percent remaining."""

    resource: str
    limit: int
    remaining: int

    @property
    def remaining_pct(self) -> Decimal:
        return Decimal(self.remaining) / self.limit * 100 if self.limit else Decimal(100)


def rate_limit_readings(snapshot: dict[str, Any] | None) -> list[RateLimitReading]:
    """Pair the limit and remaining headers of a snapshot per resource (requests, tokens, …).

    Providers name the pair differently (OpenAI's `x-ratelimit-remaining-tokens`,
    Anthropic's `anthropic-ratelimit-tokens-remaining`), so the words limit/remaining and the
    vendor prefixes are dropped and what is left names the resource ('tokens'); GitHub's bare
    `x-ratelimit-limit` becomes 'requests'. Values that are not whole numbers are skipped.
    The one implementation: the Accounts page and the ratelimit alert both read it.
    """
    pairs: dict[str, dict[str, int]] = {}
    for header, value in (snapshot or {}).items():
        words = str(header).lower().split("-")
        kind = "limit" if "limit" in words else "remaining" if "remaining" in words else None
        if kind is None:
            continue
        resource = "-".join(
            w
            for w in words
            if w not in ("x", "ratelimit", "anthropic", "github", "limit", "remaining")
        )
        try:
            pairs.setdefault(resource or "requests", {})[kind] = int(str(value).strip())
        except ValueError:
            continue
    return [
        RateLimitReading(resource, pair["limit"], pair["remaining"])
        for resource, pair in sorted(pairs.items())
        if "limit" in pair and "remaining" in pair and pair["limit"] > 0
    ]


def rate_limit_headroom(snapshot: dict[str, Any] | None) -> str:
    """Summarise a snapshot as "requests 499/500, tokens 29,000/30,000" (remaining/limit)."""
    return ", ".join(
        f"{r.resource} {r.remaining:,}/{r.limit:,}" for r in rate_limit_readings(snapshot)
    )


def rate_limit_table(*, session: Session) -> pd.DataFrame:
    """Remaining vs limit per account and resource from the last snapshot each sync kept.

    Columns: account, provider, resource, remaining, limit (int), remaining_pct (float, for
    a progress bar), observed_at (UTC). Accounts without a snapshot are left out.
    """
    rows = session.execute(
        select(
            Account.name,
            Service.display_name,
            Account.rate_limit_snapshot,
            Account.rate_limit_updated_at,
        )
        .join(Service, Service.id == Account.service_id)
        .where(Account.rate_limit_snapshot.is_not(None))
        .order_by(Account.name)
    ).all()
    columns = [
        "account",
        "provider",
        "resource",
        "remaining",
        "limit",
        "remaining_pct",
        "observed_at",
    ]
    return pd.DataFrame(
        [
            (
                name,
                display,
                r.resource,
                r.remaining,
                r.limit,
                float(r.remaining_pct),
                observed,
            )
            for name, display, snapshot, observed in rows
            for r in rate_limit_readings(snapshot)
        ],
        columns=columns,
    )


def accounts_table(*, session: Session) -> pd.DataFrame:
    """Accounts as the Accounts page lists them: masked key only, never the credential."""
    rows = session.execute(
        select(Account, Service.display_name)
        .join(Service, Service.id == Account.service_id)
        .order_by(Account.name)
    ).all()
    return pd.DataFrame(
        [
            {
                "name": a.name,
                "provider": display,
                "key": a.masked_key,
                "status": a.status,
                "last_sync_at": a.last_sync_at,
                "last_error": a.last_error,
                "rate_limit_headroom": rate_limit_headroom(a.rate_limit_snapshot),
                "monthly_budget": a.monthly_budget,
                "token_quota": a.token_quota,
                "organization": a.organization_id,
                "base_url": a.base_url,
            }
            for a, display in rows
        ],
        columns=[
            "name",
            "provider",
            "key",
            "status",
            "last_sync_at",
            "last_error",
            "rate_limit_headroom",
            "monthly_budget",
            "token_quota",
            "organization",
            "base_url",
        ],
    )
