"""The Usage explorer's read model: filter options, the grouped usage table, tokens by kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tracker.core.units import to_dollars
from tracker.models import (
    TOKEN_COLUMNS,
    Account,
    Service,
    UsageLabel,
)
from tracker.providers.registry import display_name
from tracker.reporting.sources import (
    NOT_REPORTED,
    USE_ROLLUP,
    UsageFilter,
    api_key_label,
    dimension_column,
    filter_source,
    filter_usage,
    pick_source,
    project_label,
    reported_requests,
    user_label,
)

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
    "User": "user",
    "Usage type": "usage_type",
}


@dataclass(frozen=True)
class FilterOptions:
    """The values each explorer filter can take in a date range."""

    providers: list[str] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)


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
    """(kind, label) of the projects, API keys and users active on days start..end."""
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
    """Distinct providers, accounts, models, projects, API keys and users used in start..end.

    Each list is sorted by code point (the same on every backend and collation).
    """
    base = UsageFilter(start=start, end=end)
    src = pick_source()
    # Providers, accounts and models in one pass (a few hundred combinations).
    found: list[tuple[str, Any]] = []
    for provider, account, model in session.execute(
        filter_source(select(Service.name, Account.name, src.model).distinct(), base, src)
    ):
        found += [("provider", provider), ("account", account), ("model", model)]
    if USE_ROLLUP:
        found += _labels_in_range(session, start, end)
    else:
        for p, k, u in session.execute(
            filter_usage(select(project_label(), api_key_label(), user_label()).distinct(), base)
        ):
            found += [("project", p), ("api_key", k), ("user", u)]

    def values(kind: str) -> list[str]:
        return sorted({str(v) for k, v in found if k == kind and v not in (None, "")})

    return FilterOptions(
        providers=values("provider"),
        accounts=values("account"),
        models=values("model"),
        projects=values("project"),
        api_keys=values("api_key"),
        users=values("user"),
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
    src = pick_source(flt, group_by)
    dims = [dimension_column(g, src).label(g) for g in group_by]
    cost = src.sums["cost"]
    stmt = filter_source(
        select(
            *dims,
            *[src.sums[name].label(name) for name in (*USAGE_VALUE_COLUMNS, "_rows")],
        ),
        flt,
        src,
        group_by=group_by,
    )
    if dims:
        stmt = stmt.group_by(*[dimension_column(g, src) for g in group_by])
        if "day" in group_by:
            stmt = stmt.order_by(*[dimension_column(g, src) for g in group_by])
        else:
            stmt = stmt.order_by(cost.desc(), *[dimension_column(g, src) for g in group_by])
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


def label_blanks(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the explorer shows it: blank text dimensions (model, project, key, user,
    usage type the provider did not report) read "(not reported)" as elsewhere in the app,
    providers by their names, and no request count where the provider reports none."""
    out = frame.copy()
    for name in set(GROUP_BY_CHOICES.values()) - {"day"}:
        if name in out.columns:
            out[name] = out[name].map(lambda v: NOT_REPORTED if v in ("", None) else v)
    if "provider" in out.columns:
        out["provider"] = out["provider"].map(display_name)
    if "requests" in out.columns and not out.empty:
        used = out[[k for k in TOKEN_KINDS if k in out.columns]].sum(axis=1)
        out["requests"] = [
            reported_requests(int(r), int(t)) for r, t in zip(out["requests"], used, strict=True)
        ]
    return out


def tokens_by_kind(*, session: Session, flt: UsageFilter) -> pd.DataFrame:
    """Token totals per kind (input, cached input, cache writes, output) under the filters."""
    src = pick_source(flt)
    stmt = filter_source(
        select(*[src.sums[k].label(k) for k in TOKEN_KINDS]), flt, src, group_by=()
    )
    row = session.execute(stmt).mappings().one()
    return pd.DataFrame(
        [{"kind": label, "tokens": int(row[k])} for k, label in TOKEN_KINDS.items()],
        columns=["kind", "tokens"],
    )
