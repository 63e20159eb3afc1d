"""Month-end cost projections with an 80 % interval, budget run-out date and backtest error.

The model is weekday-seasonal: AI spend on weekdays and weekends differs a lot (people and
batch jobs work Monday to Friday), so a straight run-rate (month-to-date / days elapsed ×
days in month) is biased whenever the elapsed days hold an unusual share of weekends.
From the last eight weeks of complete days we estimate

- a weekday factor per day of the week (mean cost that weekday / mean cost overall), and
- a level: an exponentially weighted mean of the de-seasonalised daily cost (half-life
  ten days, so a lasting change in spend shows within a week or two),

and forecast each remaining day as level × its weekday factor. The 80 % interval comes from
the relative spread of the fitted days (independent day errors plus the uncertainty of the
level), on the normal approximation.

Complete days only: today's usage is still arriving, so the month's actuals stop at
yesterday and the forecast covers today to month end (UTC days).

Backtest: for each of the last six complete months, project from the same point of the
month as today (± 3 days) using only the data known then, and compare with the month's
actual total; the mean absolute percentage error (MAPE) of this model and of the straight
run-rate are stored next to every forecast so people can judge it.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.attribution.chargeback import team_daily
from tracker.core.errors import TrackerError
from tracker.core.units import month_bounds
from tracker.models import Account, CostProjection, Service, Team, utcnow
from tracker.planning.budgets import (
    Scope,
    daily_cost,
    daily_usage,
    get_budget,
    parse_scope,
    team_cost_frame,
)

log = logging.getLogger(__name__)

METHOD = "weekday-seasonal level v1"
WINDOW_DAYS = 56
HALF_LIFE_DAYS = 10.0
MIN_SEASONAL_DAYS = 14
Z_80 = 1.2815515655446004  # two-sided 80 % interval of the normal distribution
BACKTEST_MONTHS = 6
BACKTEST_SPREAD = 3
CENT = Decimal("0.01")


# --- the model (plain floats: statistics, not accounting) ---------------------------------------


@dataclass(frozen=True)
class Fit:
    """A fitted weekday-seasonal level model."""

    level: float
    factors: np.ndarray  # 7 weekday factors, Monday first, mean 1 over the week
    sigma_rel: float  # relative spread of one day around its fitted value
    n: int  # days the fit used

    def daily_mean(self, weekdays: Sequence[int]) -> np.ndarray:
        return np.array([self.level * self.factors[w] for w in weekdays], dtype=float)


def fit(values: np.ndarray, weekdays: np.ndarray) -> Fit | None:
    """Fit the model to complete daily costs (oldest first); None with no history at all."""
    values = np.asarray(values, dtype=float)[-WINDOW_DAYS:]
    weekdays = np.asarray(weekdays, dtype=int)[-WINDOW_DAYS:]
    n = len(values)
    if n == 0:
        return None
    mean = float(values.mean())
    if mean <= 0:
        return Fit(0.0, np.ones(7), 0.0, n)
    factors = np.ones(7)
    if n >= MIN_SEASONAL_DAYS:
        for w in range(7):
            on_w = values[weekdays == w]
            if len(on_w):
                factors[w] = on_w.mean() / mean
        factors = factors * 7 / factors.sum()  # keep the week's total unchanged
    usable = factors[weekdays] > 1e-9
    deseasonal = np.where(usable, values / np.where(usable, factors[weekdays], 1.0), np.nan)
    ages = np.arange(n)[::-1]  # 0 for the newest day
    weights = np.where(usable, 0.5 ** (ages / HALF_LIFE_DAYS), 0.0)
    if weights.sum() <= 0:
        return Fit(0.0, factors, 0.0, n)
    level = float(np.nansum(deseasonal * weights) / weights.sum())
    fitted = level * factors[weekdays]
    ok = fitted > 1e-9
    rel = values[ok] / fitted[ok] - 1.0
    sigma = float(np.sqrt(np.mean(rel**2))) if len(rel) > 1 else 0.5
    return Fit(level, factors, sigma, n)


def run_rate_total(month_to_date: float, days_elapsed: int, days_in_month: int) -> float:
    """The straight run-rate projection: month-to-date / days elapsed × days in month."""
    if days_elapsed <= 0:
        return month_to_date
    return month_to_date / days_elapsed * days_in_month


@dataclass(frozen=True)
class Forecast:
    """A month-end forecast from a point in the month (floats, USD)."""

    actual_to_date: float
    total: float
    lower: float
    upper: float
    daily_mean: np.ndarray  # forecast for each remaining day, oldest first
    run_rate: float


def forecast_month(series: pd.Series, month_start: dt.date, elapsed: int) -> Forecast | None:
    """Forecast the month starting `month_start` knowing its first `elapsed` complete days.

    `series` is the daily cost (float) indexed by date, zero-filled, and may extend past the
    origin: only days before `month_start + elapsed` are used. None when nothing is known.
    """
    _first, last = month_bounds(month_start)
    days_in_month = (last - month_start).days + 1
    origin = month_start + dt.timedelta(days=elapsed)
    known = series[series.index < origin]
    if known.empty:
        return None
    in_month = known[known.index >= month_start]
    actual = float(in_month.sum())
    weekdays = np.array([d.weekday() for d in known.index])
    model = fit(known.to_numpy(dtype=float), weekdays)
    if model is None:
        return None
    remaining_days = [origin + dt.timedelta(days=i) for i in range(days_in_month - elapsed)]
    mean = model.daily_mean([d.weekday() for d in remaining_days])
    rest = float(mean.sum())
    # Three sources of error: each day's own noise; the level, which moves every remaining day
    # together (about a half-life's worth of days inform it); and each weekday factor, which
    # moves all remaining days of that weekday (one observation per week in the window).
    sigma = model.sigma_rel
    n_level = max(min(model.n, HALF_LIFE_DAYS), 1.0)
    per_week = max(model.n / 7, 1.0)
    by_weekday = np.zeros(7)
    for day, cost in zip(remaining_days, mean, strict=True):
        by_weekday[day.weekday()] += cost
    var = (
        float(np.sum((sigma * mean) ** 2))
        + (sigma * rest) ** 2 / n_level
        + float(np.sum((sigma * by_weekday) ** 2)) / per_week
    )
    half = Z_80 * math.sqrt(var)
    return Forecast(
        actual_to_date=actual,
        total=actual + rest,
        lower=actual + max(rest - half, 0.0),
        upper=actual + rest + half,
        daily_mean=mean,
        run_rate=run_rate_total(actual, elapsed, days_in_month),
    )


@dataclass(frozen=True)
class Backtest:
    """Backtest errors in percent (None without any complete month to test on)."""

    model_mape: float | None
    run_rate_mape: float | None
    samples: int
    coverage_80: float | None  # share of actual totals inside the 80 % interval


def backtest(
    series: pd.Series,
    *,
    before: dt.date,
    months: int = BACKTEST_MONTHS,
    origins: Iterable[int] | None = None,
) -> Backtest:
    """Project each complete month before `before` from the given day offsets; compare.

    `origins` are numbers of complete days known (0 = from the 1st); by default the same
    point of the month as `before` ± 3 days. Only months fully covered by `series` count.
    """
    if series.empty:
        return Backtest(None, None, 0, None)
    first_day = series.index.min()
    elapsed_now = (before - before.replace(day=1)).days
    fixed = list(origins) if origins is not None else None
    month = before.replace(day=1)
    model_err: list[float] = []
    rr_err: list[float] = []
    inside = 0
    for _ in range(months):
        month = (month - dt.timedelta(days=1)).replace(day=1)
        start, end = month_bounds(month)
        if start < first_day:
            break
        actual_total = float(series[(series.index >= start) & (series.index <= end)].sum())
        if actual_total <= 0:
            continue
        days = (end - start).days + 1
        offsets = fixed or range(elapsed_now - BACKTEST_SPREAD, elapsed_now + BACKTEST_SPREAD + 1)
        for d in sorted({min(max(o, 0), days - 1) for o in offsets}):
            fc = forecast_month(series, start, d)
            if fc is None:
                continue
            model_err.append(abs(fc.total - actual_total) / actual_total)
            if d > 0:
                rr_err.append(abs(fc.run_rate - actual_total) / actual_total)
            inside += fc.lower <= actual_total <= fc.upper
    if not model_err:
        return Backtest(None, None, 0, None)
    return Backtest(
        model_mape=100 * float(np.mean(model_err)),
        run_rate_mape=100 * float(np.mean(rr_err)) if rr_err else None,
        samples=len(model_err),
        coverage_80=inside / len(model_err),
    )


# --- scopes and storage ---------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """A scope's month-end projection (USD, UTC month) as stored and shown."""

    scope: str
    month: dt.date
    as_of: dt.date  # last complete day counted as actual
    actual_to_date: Decimal
    projected_total: Decimal
    lower: Decimal
    upper: Decimal
    run_rate_total: Decimal
    budget: Decimal | None
    budget_exhausted_on: dt.date | None
    backtest_mape: Decimal | None
    run_rate_mape: Decimal | None
    backtest_samples: int
    method: str = METHOD
    daily: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def s(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "scope": self.scope,
            "month": self.month.isoformat(),
            "as_of": self.as_of.isoformat(),
            "actual_to_date": str(self.actual_to_date),
            "projected_total": str(self.projected_total),
            "lower_bound": str(self.lower),
            "upper_bound": str(self.upper),
            "run_rate_total": str(self.run_rate_total),
            "budget": s(self.budget),
            "budget_exhausted_on": (
                self.budget_exhausted_on.isoformat() if self.budget_exhausted_on else None
            ),
            "backtest_mape_pct": s(self.backtest_mape),
            "run_rate_mape_pct": s(self.run_rate_mape),
            "backtest_samples": self.backtest_samples,
            "method": self.method,
        }


def _money(value: float) -> Decimal:
    return Decimal(repr(round(value, 2))).quantize(CENT)


def _pct(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(round(value, 4)))


def daily_series(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.Series:
    """Total cost per day start..end inclusive from a `daily_usage` frame, zero-filled."""
    days = pd.Index([start + dt.timedelta(days=i) for i in range((end - start).days + 1)])
    if frame.empty:
        return pd.Series(0.0, index=days)
    summed = frame.groupby("day")["cost"].sum()
    return summed.reindex(days, fill_value=0.0).astype(float)


def project_series(
    series: pd.Series, *, scope: str, today: dt.date, budget: Decimal | None
) -> Projection:
    """Project one scope's month from its daily cost series (complete days before `today`)."""
    month, last = month_bounds(today)
    elapsed = (today - month).days
    known = series[series.index < today]
    fc = forecast_month(known, month, elapsed) if not known.empty else None
    actual = float(known[known.index >= month].sum())
    if fc is None:
        fc = Forecast(actual, actual, actual, actual, np.zeros(0), actual)
    test = backtest(known, before=today)
    remaining = [today + dt.timedelta(days=i) for i in range(len(fc.daily_mean))]
    exhausted: dt.date | None = None
    month_actuals: list[tuple[dt.date, float]] = [
        (d, float(c))
        for d, c in zip(known.index, known.to_numpy(dtype=float), strict=True)
        if d >= month
    ]
    if budget is not None and budget > 0:
        cumulative = 0.0
        for day, cost in month_actuals:
            cumulative += float(cost)
            if cumulative >= float(budget):
                exhausted = day
                break
        if exhausted is None:
            for day, cost in zip(remaining, fc.daily_mean, strict=True):
                cumulative += float(cost)
                if cumulative >= float(budget):
                    exhausted = day
                    break
    return Projection(
        scope=scope,
        month=month,
        as_of=today - dt.timedelta(days=1),
        actual_to_date=_money(fc.actual_to_date),
        projected_total=_money(fc.total),
        lower=_money(fc.lower),
        upper=_money(fc.upper),
        run_rate_total=_money(fc.run_rate),
        budget=budget,
        budget_exhausted_on=exhausted,
        backtest_mape=_pct(test.model_mape),
        run_rate_mape=_pct(test.run_rate_mape),
        backtest_samples=test.samples,
        daily=[
            {"day": d.isoformat(), "forecast": round(float(c), 4)}
            for d, c in zip(remaining, fc.daily_mean, strict=True)
        ]
        + [{"day": d.isoformat(), "actual": round(c, 4)} for d, c in month_actuals],
    )


def _history_start(today: dt.date) -> dt.date:
    start = today.replace(day=1)
    for _ in range(BACKTEST_MONTHS + 2):  # backtest months plus the fit window before them
        start = (start - dt.timedelta(days=1)).replace(day=1)
    return start


def _select(frame: pd.DataFrame, scope: Scope) -> pd.DataFrame:
    if scope.kind == "service":
        return frame[frame["service"] == scope.name]
    if scope.kind == "account":
        return frame[frame["account"] == scope.name]
    return frame


def _scope_series(session: Session, scope: Scope, today: dt.date) -> pd.Series:
    """A scope's daily cost history, from its first usage to yesterday (what the model fits)."""
    start = _history_start(today)
    end = today - dt.timedelta(days=1)
    frame = daily_cost(session=session, scope=scope, start=start, end=end)
    return _trimmed(daily_series(frame, start, end), frame)


def project_scope(*, session: Session, scope: str | Scope, today: dt.date) -> Projection:
    """Project one scope's month containing `today` (UTC), reading its usage history."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    series = _scope_series(session, parsed, today)
    return project_series(
        series, scope=str(parsed), today=today, budget=get_budget(session=session, scope=parsed)
    )


def forecast_daily(
    *, session: Session, scope: str | Scope, today: dt.date, days: int
) -> list[tuple[dt.date, float]]:
    """The expected spend (USD, float: statistics) of each of the `days` days after today:
    the daily forecast of `project_scope`, continued past the month's end (the model is a
    level times a weekday factor, so it needs no month). Empty without any history."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    series = _scope_series(session, parsed, today)
    weekdays = np.array([d.weekday() for d in series.index], dtype=int)
    model = fit(series.to_numpy(dtype=float), weekdays)
    if model is None:
        return []
    ahead = [today + dt.timedelta(days=i) for i in range(1, days + 1)]
    mean = model.daily_mean([d.weekday() for d in ahead])
    return [(day, float(cost)) for day, cost in zip(ahead, mean, strict=True)]


def _trimmed(series: pd.Series, frame: pd.DataFrame) -> pd.Series:
    # Days before the scope's first usage are "not connected yet", not "spent nothing".
    if frame.empty:
        return series.iloc[0:0]
    trimmed: pd.Series = series[series.index >= frame["day"].min()]
    return trimmed


def scopes_to_project(*, session: Session) -> list[Scope]:
    """The organisation, every service with an account, every account not disabled, and
    every team with a budget."""
    scopes = [Scope("org")]
    services = session.scalars(
        select(Service.name).join(Account, Account.service_id == Service.id).distinct()
    )
    scopes += [Scope("service", name) for name in sorted(services)]
    accounts = session.scalars(
        select(Account.name).where(Account.status != "disabled").order_by(Account.name)
    )
    scopes += [Scope("account", name) for name in accounts]
    teams = session.scalars(
        select(Team.name).where(Team.monthly_budget.is_not(None)).order_by(Team.name)
    )
    scopes += [Scope("team", name) for name in teams]
    return scopes


def project_all(*, session: Session, today: dt.date) -> list[Projection]:
    """Projections for every scope, reading the usage history once (and the teams' chargeback
    history once, when a team has a budget)."""
    start = _history_start(today)
    end = today - dt.timedelta(days=1)
    frame = daily_usage(session=session, start=start, end=end)
    scopes = scopes_to_project(session=session)
    by_team: dict[str, dict[dt.date, int]] = {}
    if any(scope.kind == "team" for scope in scopes):
        by_team = team_daily(session=session, start=start, end=end)
    results = []
    for scope in scopes:
        try:
            budget = get_budget(session=session, scope=scope)
        except TrackerError:
            budget = None
        if scope.kind == "team":
            part = team_cost_frame(by_team.get(scope.name, {}))
        else:
            part = _select(frame, scope)
        series = _trimmed(daily_series(part, start, end), part)
        results.append(project_series(series, scope=str(scope), today=today, budget=budget))
    return results


def write_projections(*, session: Session, today: dt.date | None = None) -> list[Projection]:
    """Compute every scope's projection and upsert it into `cost_projections`."""
    today = today or utcnow().date()
    projections = project_all(session=session, today=today)
    existing = {
        row.scope: row
        for row in session.scalars(
            select(CostProjection).where(CostProjection.month == today.replace(day=1))
        )
    }
    for p in projections:
        row = existing.get(p.scope) or CostProjection(scope=p.scope, month=p.month)
        row.computed_at = utcnow()
        row.actual_to_date = p.actual_to_date
        row.projected_total = p.projected_total
        row.lower_bound = p.lower
        row.upper_bound = p.upper
        row.budget = p.budget
        row.budget_exhausted_on = p.budget_exhausted_on
        row.backtest_mape = p.backtest_mape
        row.method = p.method
        row.details = {
            "as_of": p.as_of.isoformat(),
            "run_rate_total": str(p.run_rate_total),
            "run_rate_mape_pct": None if p.run_rate_mape is None else str(p.run_rate_mape),
            "backtest_samples": p.backtest_samples,
            "daily": p.daily,
        }
        session.add(row)
    session.flush()
    log.info("wrote %d projection(s) for %s", len(projections), today.strftime("%Y-%m"))
    return projections
