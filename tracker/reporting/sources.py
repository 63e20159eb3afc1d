"""Where every read model's sums come from: the detail, or a rollup; and the filters over them.

Everything is grouped in SQL; no function pulls the usage table into pandas. Questions that
need no project or API key read the daily rollup `usage_daily` (same sums, far fewer rows;
see `pick_source`), the others the detail. Money stays exact: amounts are summed in the database
as whole micro-dollars (the `NUMERIC(18, 6)` unit) and turned back into `Decimal` by
`tracker.core.units.to_dollars`, because SQLite keeps NUMERIC as floating point and a plain
`SUM` there would drift by fractions of a cent.

Cost basis: the one rule of `tracker.costs.spend`: a row counts the provider's billed amount,
or our estimate where the provider bills nothing for that account and day, or $0 when its cost
is already inside that day's billed line items ('covered') or it cannot be priced (unpriced,
flagged). Every total comes with its billed / estimated split so pages can say which is
which. Days are UTC calendar days; ranges are inclusive of both ends unless said.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Select, case, cast, func, or_, select

from tracker.core.units import month_start, next_month
from tracker.costs.spend import ROW_BILLED_MICROS, ROW_SPEND_MICROS
from tracker.costs.spend import micros as _micros
from tracker.models import (
    TOKEN_COLUMNS,
    Account,
    CostSource,
    Service,
    UsageDaily,
    UsageLabel,
    UsageLabelMonthly,
    UsageRecord,
    all_tokens,
)

_u = UsageRecord
SelectT = TypeVar("SelectT", bound=Select[*tuple[Any, ...]])


# How a dimension the provider did not report (a blank model, key or user) reads on a page.
NOT_REPORTED = "(not reported)"


def reported_requests(requests: int, tokens: int) -> int | None:
    """A request count as pages show it: None where the provider reports none (tokens were
    used, so there were requests; Anthropic's usage report counts none)."""
    return None if not requests and tokens else int(requests)


# Per-row cost and its parts, by the one rule in tracker.costs.spend (no day counted twice).
_ROW_COST = ROW_SPEND_MICROS
_ROW_BILLED = ROW_BILLED_MICROS
_ROW_ESTIMATED = case((_u.cost_source == CostSource.ESTIMATED, _micros(_u.estimated_cost)), else_=0)
_ROW_UNPRICED = case((_u.cost_source == CostSource.NONE, 1), else_=0)
_ROW_TOKENS = all_tokens(_u)


# --- where the sums come from: the detail, or a rollup ---------------------------------------
#
# Two rollups hold the detail's sums, kept by triggers in every writer's transaction
# (tracker.models): `usage_daily` per account, day, model, usage type and tier, and
# `usage_labels` per project, API key or user (label and id), day and account. A question that
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
    user: Any = None
    user_id: Any = None
    where: tuple[ColumnElement[bool], ...] = ()
    kind: str | None = None  # usage_labels' kind, for its monthly twin


def _total(expr: Any) -> ColumnElement[int]:
    # PostgreSQL sums BIGINT as NUMERIC, which the driver parses into Decimal, slowly; whole
    # micro-dollars and token counts fit a BIGINT (an overflow would raise, not wrap).
    return cast(func.coalesce(func.sum(expr), 0), BigInteger)


def project_label() -> ColumnElement[str]:
    return func.coalesce(func.nullif(_u.project_name, ""), _u.project_id)


def api_key_label() -> ColumnElement[str]:
    return func.coalesce(func.nullif(_u.api_key_name, ""), _u.api_key_id)


def user_label() -> ColumnElement[str]:
    return func.coalesce(func.nullif(_u.user_name, ""), _u.user_id)


def _rollup_sums(entity: Any) -> dict[str, ColumnElement[Any]]:
    """The sums of a rollup table (`usage_daily` and `usage_labels` have the same columns)."""
    return {
        **{k: _total(getattr(entity, k)) for k in (*TOKEN_COLUMNS, "requests")},
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
    project=project_label(),
    project_id=_u.project_id,
    api_key=api_key_label(),
    api_key_id=_u.api_key_id,
    user=user_label(),
    user_id=_u.user_id,
    sums={
        **{k: _total(getattr(_u, k)) for k in (*TOKEN_COLUMNS, "requests")},
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
    """One kind of `usage_labels` ('project', 'api_key' or 'user') as a source."""
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
_BY_USER = _labels_source("user")


def pick_source(flt: Dimensions | None = None, group_by: Sequence[str] = ()) -> _Source:
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
                ("user", flt.users),
            )
            if values
        }
    for src in (_ROLLUP, _BY_PROJECT, _BY_API_KEY, _BY_USER):
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
    first = flt.start if flt.start.day == 1 else next_month(flt.start)
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


def cost_columns(src: _Source | None = None) -> list[ColumnElement[Any]]:
    src = src or pick_source()
    return [
        src.sums[name].label(name)
        for name in ("cost", "billed_cost", "estimated_cost", "unpriced_rows")
    ]


# --- usage explorer --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Dimensions:
    """The usage explorer's filters (also the exports'); an empty tuple means "all".

    `projects`, `api_keys` and `users` match the label shown (the name, else the id) or the
    id.
    """

    providers: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()
    api_keys: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def over(self, start: dt.date, end: dt.date) -> UsageFilter:
        """These filters over UTC days start..end inclusive."""
        dims = {f.name: getattr(self, f.name) for f in dataclasses.fields(Dimensions)}
        return UsageFilter(start=start, end=end, **dims)


@dataclass(frozen=True, kw_only=True)
class UsageFilter(Dimensions):
    """Dimension filters over UTC days start..end inclusive."""

    start: dt.date
    end: dt.date


def dimension_column(name: str, src: _Source = _DETAIL) -> ColumnElement[Any]:
    columns: dict[str, Any] = {
        "day": src.day,
        "provider": Service.name,
        "account": Account.name,
        "model": src.model,
        "project": src.project,
        "api_key": src.api_key,
        "user": src.user,
        "usage_type": src.usage_type,
    }
    column: ColumnElement[Any] = columns[name]
    return column


def filter_usage(stmt: SelectT, flt: UsageFilter) -> SelectT:
    """Join usage to account and service and apply the date range and dimension filters."""
    return filter_source(stmt, flt, _DETAIL)


def filter_source(
    stmt: SelectT, flt: UsageFilter, src: _Source, *, group_by: Sequence[str] | None = None
) -> SelectT:
    """`filter_usage` on a source `pick_source` chose (one that holds the filtered dimensions).

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
    if flt.users:
        stmt = stmt.where(or_(src.user.in_(flt.users), src.user_id.in_(flt.users)))
    return stmt
