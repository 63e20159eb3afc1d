"""The Forecast page's read model (and the Overview's projection): this month's projections.

The worker writes this month's into `cost_projections` after each sync. When it has not yet
(a new install, or the first sync of a month), `current_projections` computes them on the
spot with the same model, and says so, so the pages never show an empty forecast for a
database that has usage. Money stays `Decimal` (USD, UTC months); pages round for display.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.attribution.chargeback import team_spend
from tracker.core.units import month_start, to_dollars
from tracker.models import CostProjection
from tracker.planning import projections
from tracker.planning.budgets import parse_scope, scope_label, scope_spend
from tracker.planning.projections import Projection
from tracker.reporting.anomalies import ALL_MODELS_LABEL


def _scope_order(scope: str) -> tuple[int, str]:
    # Organisation first, then services, accounts and teams: the order people read a budget in.
    kind, _sep, name = scope.partition(":")
    return ({"org": 0, "service": 1, "team": 3}.get(kind, 2), name.lower())


def _from_row(row: CostProjection) -> Projection:
    details: dict[str, Any] = row.details or {}

    def dec(key: str) -> Decimal | None:
        value = details.get(key)
        return None if value in (None, "") else Decimal(str(value))

    as_of = details.get("as_of")
    return Projection(
        scope=row.scope,
        month=row.month,
        as_of=dt.date.fromisoformat(as_of) if as_of else row.computed_at.date(),
        actual_to_date=row.actual_to_date,
        projected_total=row.projected_total,
        lower=row.lower_bound,
        upper=row.upper_bound,
        run_rate_total=dec("run_rate_total") or row.projected_total,
        budget=row.budget,
        budget_exhausted_on=row.budget_exhausted_on,
        backtest_mape=row.backtest_mape,
        run_rate_mape=dec("run_rate_mape_pct"),
        backtest_samples=int(details.get("backtest_samples") or 0),
        method=row.method,
        daily=list(details.get("daily") or []),
    )


@dataclass(frozen=True)
class ProjectionSet:
    """This month's projections and where they came from."""

    items: tuple[Projection, ...]
    stored: bool  # True: written by the worker; False: computed now, not stored
    computed_at: dt.datetime | None  # the worker's time for stored ones

    def get(self, scope: str) -> Projection | None:
        return next((p for p in self.items if p.scope == scope), None)


def stored_projections(*, session: Session, today: dt.date) -> ProjectionSet:
    """The worker's projections for the month of `today` (empty when none were written)."""
    rows = list(
        session.scalars(
            select(CostProjection)
            .where(CostProjection.month == today.replace(day=1))
            .order_by(CostProjection.scope)
        )
    )
    return ProjectionSet(
        tuple(sorted((_from_row(r) for r in rows), key=lambda p: _scope_order(p.scope))),
        stored=True,
        computed_at=max((r.computed_at for r in rows), default=None),
    )


def current_projections(*, session: Session, today: dt.date) -> ProjectionSet:
    """Stored projections for this month, or (when none) every scope's computed now."""
    found = stored_projections(session=session, today=today)
    if found.items:
        return found
    return ProjectionSet(
        tuple(
            sorted(
                projections.project_all(session=session, today=today),
                key=lambda p: _scope_order(p.scope),
            )
        ),
        stored=False,
        computed_at=None,
    )


def org_projection(*, session: Session, today: dt.date) -> tuple[Projection, bool]:
    """The organisation's projection for this month and whether the worker stored it."""
    row = session.scalar(
        select(CostProjection).where(
            CostProjection.scope == "org", CostProjection.month == today.replace(day=1)
        )
    )
    if row is not None:
        return _from_row(row), True
    return projections.project_scope(session=session, scope="org", today=today), False


def month_end_floor(p: Projection, spent_to_date: Decimal) -> Decimal:
    """The projected month-end total, never below what the scope has already spent.

    The model counts complete days only (today's usage is still arriving), so a busy
    morning can already exceed what it expects for the rest of the month; the month cannot
    end below the spend so far.
    """
    return max(p.projected_total, spent_to_date)


def interval_floor(p: Projection, spent_to_date: Decimal) -> tuple[Decimal, Decimal]:
    """The 80 % interval of the month-end total, neither end below the spend so far (after a
    duplicate account is removed, or on a busy morning, the model's interval can sit under
    money already spent)."""
    return max(p.lower, spent_to_date), max(p.upper, spent_to_date)


def runs_out_on(
    p: Projection, *, spent_to_date: Decimal, budget: Decimal | None, today: dt.date
) -> dt.date | None:
    """The day the budget runs out at the projected pace; today when today's usage did it.

    The projection's date comes from complete days; if the spend including today already
    reached the budget and the projection still puts the date later, the budget ran out today.
    """
    exhausted = p.budget_exhausted_on
    if budget and spent_to_date >= budget and (exhausted is None or exhausted > today):
        return today
    return exhausted


def floor_to_spend(p: Projection, *, spent_to_date: Decimal, today: dt.date) -> Projection:
    """The projection as every page shows it: month-end total and interval never below the
    spend so far (today's partial day included), the run-out day today if that spend did it.
    The Overview, the Forecast and the Budgets page then agree on every figure."""
    low, high = interval_floor(p, spent_to_date)
    return replace(
        p,
        projected_total=month_end_floor(p, spent_to_date),
        lower=low,
        upper=high,
        budget_exhausted_on=runs_out_on(
            p, spent_to_date=spent_to_date, budget=p.budget, today=today
        ),
    )


def shown_projections(*, session: Session, today: dt.date) -> ProjectionSet:
    """This month's projections (`current_projections`), each floored by its scope's spend
    this month through today."""
    found = current_projections(session=session, today=today)
    start = month_start(today)
    teams: dict[str, int] | None = None
    shown = []
    for p in found.items:
        scope = parse_scope(p.scope)
        if scope.kind == "team":
            if teams is None:  # one chargeback of the month for every team
                teams = team_spend(session=session, start=start, end=today)
            spent = to_dollars(teams.get(scope.name, 0))
        else:
            spent = scope_spend(session=session, scope=scope, start=start, end=today)
        shown.append(floor_to_spend(p, spent_to_date=spent, today=today))
    return replace(found, items=tuple(shown))


def open_excess(frame: pd.DataFrame) -> Decimal:
    """Cost above baseline of the open anomalies in an `anomaly_frame`, counted once.

    An account-level anomaly ('all models') and its models' anomalies on the same day
    describe the same dollars: per account and day, take the account-level row when there is
    one, else the sum of the model rows.
    """
    total = Decimal(0)
    open_rows = frame[frame["acknowledged_at"].isna()]
    for _key, group in open_rows.groupby(["account", "day"]):
        whole = group[group["model"] == ALL_MODELS_LABEL]
        rows = whole if not whole.empty else group
        total += sum(rows["excess"], start=Decimal(0))
    return total


def projection_frame(items: tuple[Projection, ...]) -> pd.DataFrame:
    """One line per scope: actual, projected with its interval, budget, run-out, backtest."""
    columns = [
        "scope",
        "actual_to_date",
        "projected_total",
        "lower",
        "upper",
        "budget",
        "projected_pct_of_budget",
        "budget_exhausted_on",
        "backtest_mape",
        "run_rate_mape",
        "backtest_samples",
    ]
    return pd.DataFrame(
        [
            (
                scope_label(p.scope),
                p.actual_to_date,
                p.projected_total,
                p.lower,
                p.upper,
                p.budget,
                None if not p.budget else float(p.projected_total / p.budget * 100),
                p.budget_exhausted_on,
                None if p.backtest_mape is None else float(p.backtest_mape),
                None if p.run_rate_mape is None else float(p.run_rate_mape),
                p.backtest_samples,
            )
            for p in items
        ],
        columns=columns,
    )


def projection_path(p: Projection) -> pd.DataFrame:
    """Cumulative spend per day of the month: actual, then forecast with an 80 % band.

    Columns: day (date), actual, forecast, lower, upper (float USD, None where not
    applicable). The interval is only known for the month-end total, so the band widens
    towards it in proportion to the forecast spend still to come (zero width at the last
    actual day); its end points are exactly the stored lower and upper bounds.
    """
    actual = sorted(
        (dt.date.fromisoformat(d["day"]), d["actual"]) for d in p.daily if "actual" in d
    )
    ahead = sorted(
        (dt.date.fromisoformat(d["day"]), d["forecast"]) for d in p.daily if "forecast" in d
    )
    rows: list[tuple[dt.date, float | None, float | None, float | None, float | None]] = []
    cumulative = 0.0
    for day, cost in actual:
        cumulative += float(cost)
        rows.append((day, cumulative, None, None, None))
    # Anchor on the stored exact figure so the line meets the table's numbers.
    base = float(p.actual_to_date)
    if rows:
        last_day = rows[-1][0]
        rows[-1] = (last_day, base, base, base, base)
    else:
        rows.append((p.month - dt.timedelta(days=1), None, base, base, base))
    to_come = float(p.projected_total) - base
    low_span = float(p.lower) - base
    high_span = float(p.upper) - base
    # A total floored by today's spend (`floor_to_spend`) is above the model's days: the
    # path keeps their shape and meets the total.
    model_to_come = sum(float(cost) for _day, cost in ahead)
    scale = to_come / model_to_come if model_to_come > 0 and to_come > 0 else 1.0
    running = 0.0
    for day, cost in ahead:
        running += float(cost) * scale
        share = running / to_come if to_come > 0 else 1.0
        rows.append((day, None, base + running, base + low_span * share, base + high_span * share))
    if ahead and to_come > 0:
        day = rows[-1][0]
        rows[-1] = (day, None, float(p.projected_total), float(p.lower), float(p.upper))
    return pd.DataFrame(rows, columns=["day", "actual", "forecast", "lower", "upper"])
