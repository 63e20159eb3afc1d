"""Monthly budgets (USD) on the organisation, a service, an account or a team, and spend
per scope.

A scope is written `org`, `service:NAME` (a provider, e.g. `service:openai`),
`account:NAME` or `team:NAME`. The organisation's budget lives in the `settings` table under
`org_monthly_budget`; when it is not set, the organisation's budget is the sum of the
accounts' budgets (the same rule the overview uses). Service, account and team budgets live
on their rows. Budget periods are UTC calendar months.

Spend per scope is the same cost basis as everywhere else: billed cost where the provider
reports one, our estimate otherwise, summed exactly as whole micro-dollars. A team's spend
is its chargeback (`tracker.attribution.chargeback.team_daily`: its mappings, then the
shared-cost rules), so a team's month equals its row on the Chargeback page exactly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.attribution.chargeback import team_daily, team_spend
from tracker.attribution.teams import get_team
from tracker.core import audit
from tracker.core.errors import InvalidInput
from tracker.core.units import month_bounds, parse_money, to_dollars
from tracker.costs.spend import micros
from tracker.models import Account, Service, Setting, Team, UsageDaily, all_tokens, utcnow
from tracker.providers.accounts import get_account
from tracker.providers.registry import PROVIDERS, display_name, ensure_service

# The organisation's monthly budget (USD) in the `settings` table; when it is not set, the
# overview uses the sum of the accounts' own budgets.
ORG_BUDGET_SETTING_KEY = "org_monthly_budget"


def org_budget(*, session: Session) -> tuple[Decimal | None, str]:
    """The organisation's monthly budget and where it came from."""
    raw = session.scalar(select(Setting.value).where(Setting.key == ORG_BUDGET_SETTING_KEY))
    if raw:
        return Decimal(raw), "organisation"
    summed = session.scalar(
        select(func.sum(micros(Account.monthly_budget))).where(
            Account.monthly_budget.is_not(None), Account.status != "disabled"
        )
    )
    if summed is None:
        return None, "none"
    return to_dollars(summed), "accounts"


@dataclass(frozen=True)
class Scope:
    """A parsed scope: kind is 'org', 'service', 'account' or 'team'; name is '' for org."""

    kind: str
    name: str = ""

    def __str__(self) -> str:
        return "org" if self.kind == "org" else f"{self.kind}:{self.name}"

    @property
    def label(self) -> str:
        """A human label, e.g. 'Organisation' or 'account prod-openai'."""
        return "Organisation" if self.kind == "org" else f"{self.kind} {self.name}"


SCOPE_KINDS = ("service", "account", "team")  # besides 'org'


def scope_label(scope: str) -> str:
    """'org' -> 'Organisation', 'service:openai' -> 'Service OpenAI', 'account:x' ->
    'Account x', 'team:Web' -> 'Team Web'."""
    if scope == "org":
        return "Organisation"
    kind, _sep, name = scope.partition(":")
    if kind == "service":
        return f"Service {display_name(name)}"
    if kind == "team":
        return f"Team {name}"
    return f"{kind.title()} {name}"


def parse_scope(raw: str | None) -> Scope:
    """Parse 'org', 'service:NAME', 'account:NAME' or 'team:NAME' (whitespace ignored)."""
    text = (raw or "org").strip()
    if text == "org":
        return Scope("org")
    kind, sep, name = text.partition(":")
    kind, name = kind.strip(), name.strip()
    if not sep or kind not in SCOPE_KINDS or not name:
        raise InvalidInput(
            f"scope {raw!r} is not valid; use org, service:PROVIDER, account:NAME or team:NAME"
        )
    if kind == "service" and name not in PROVIDERS:
        raise InvalidInput(f"unknown service {name!r}; use one of {', '.join(PROVIDERS)}")
    return Scope(kind, name)


def _service_budget(session: Session, name: str) -> Decimal | None:
    return session.scalar(select(Service.monthly_budget).where(Service.name == name))


def set_budget(
    *, session: Session, scope: str | Scope, monthly: Decimal | str | None, actor: str = "cli"
) -> Scope:
    """Set (or with None clear) the monthly USD budget of a scope; audited."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    value = parse_money(monthly, what="budget")
    if monthly is not None and value is None:
        raise InvalidInput("budget is empty; give an amount in USD, e.g. 1500.00")
    if parsed.kind == "org":
        row = session.get(Setting, ORG_BUDGET_SETTING_KEY)
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(Setting(key=ORG_BUDGET_SETTING_KEY, value=str(value)))
        else:
            row.value = str(value)
            row.updated_at = utcnow()
    elif parsed.kind == "service":
        ensure_service(session, parsed.name).monthly_budget = value
    elif parsed.kind == "team":
        get_team(session=session, name=parsed.name).monthly_budget = value
    else:
        get_account(session=session, name=parsed.name).monthly_budget = value
    audit.record(
        session=session,
        actor=actor,
        action="budget.set",
        target=str(parsed),
        monthly=None if value is None else str(value),
    )
    session.flush()
    return parsed


def get_budget(*, session: Session, scope: str | Scope) -> Decimal | None:
    """The monthly USD budget of a scope, or None when none is set."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    if parsed.kind == "org":
        return org_budget(session=session)[0]
    if parsed.kind == "service":
        return _service_budget(session, parsed.name)
    if parsed.kind == "team":
        return get_team(session=session, name=parsed.name).monthly_budget
    return get_account(session=session, name=parsed.name).monthly_budget


# --- spend -------------------------------------------------------------------------------------


def _scope_filter(stmt: Any, scope: Scope) -> Any:
    """Narrow a statement over `usage_daily` to a scope's accounts."""
    account_id = UsageDaily.account_id
    if scope.kind == "service":
        return (
            stmt.join(Account, Account.id == account_id)
            .join(Service, Service.id == Account.service_id)
            .where(Service.name == scope.name)
        )
    if scope.kind == "account":
        return stmt.join(Account, Account.id == account_id).where(Account.name == scope.name)
    return stmt


# Spend and tokens per scope read the daily rollup: the detail's sums, far fewer rows.
_d = UsageDaily
_ROLLUP_TOKENS = all_tokens(_d)


def _team_days(session: Session, name: str, start: dt.date, end: dt.date) -> dict[dt.date, int]:
    """A team's chargeback spend (micro-dollars) per UTC day with any, start..end inclusive."""
    return team_daily(session=session, start=start, end=end).get(name, {})


def scope_spend(*, session: Session, scope: str | Scope, start: dt.date, end: dt.date) -> Decimal:
    """USD cost of a scope on UTC days start..end inclusive (a team's: its chargeback)."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    if parsed.kind == "team":
        spent = team_spend(session=session, start=start, end=end)
        return to_dollars(spent.get(parsed.name, 0))
    stmt = select(func.coalesce(func.sum(_d.cost_micros), 0)).where(_d.day >= start, _d.day <= end)
    return to_dollars(session.scalar(_scope_filter(stmt, parsed)))


def scope_tokens(*, session: Session, scope: str | Scope, start: dt.date, end: dt.date) -> int:
    """Tokens of every kind used by a scope on UTC days start..end inclusive."""
    parsed = scope if isinstance(scope, Scope) else parse_scope(scope)
    if parsed.kind == "team":
        raise InvalidInput(
            "token counts are kept per account, not per team; use org, service:PROVIDER or "
            "account:NAME"
        )
    stmt = select(func.coalesce(func.sum(_ROLLUP_TOKENS), 0)).where(_d.day >= start, _d.day <= end)
    return int(session.scalar(_scope_filter(stmt, parsed)) or 0)


def daily_cost(*, session: Session, scope: Scope, start: dt.date, end: dt.date) -> pd.DataFrame:
    """One scope's cost per UTC day with usage, start..end inclusive.

    Columns: day (date), cost (float USD: for statistics only, never for totals shown as
    money). What a single projection reads, instead of `daily_usage`'s model grain.
    """
    if scope.kind == "team":
        return team_cost_frame(_team_days(session, scope.name, start, end))
    stmt = (
        select(_d.day, func.coalesce(func.sum(_d.cost_micros), 0))
        .where(_d.day >= start, _d.day <= end)
        .group_by(_d.day)
        .order_by(_d.day)
    )
    rows = session.execute(_scope_filter(stmt, scope)).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=["day", "cost_micros"])
    frame["cost"] = frame.pop("cost_micros").astype("float64") / 1_000_000
    return frame


def team_cost_frame(days: dict[dt.date, int]) -> pd.DataFrame:
    """A team's `team_daily` days as `daily_cost`'s frame (day, cost)."""
    frame = pd.DataFrame(list(days.items()), columns=["day", "cost_micros"])
    frame["cost"] = frame.pop("cost_micros").astype("float64") / 1_000_000
    return frame


def daily_usage(*, session: Session, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Usage per UTC day, account, model and service tier, grouped in SQL.

    Columns: day (date), account_id, account (name), service (provider name), model,
    service_tier,
    tokens, requests (int), cost (float USD: for statistics only, never for totals shown
    as money).
    """
    # The daily rollup has exactly this grain (plus usage type): the same sums, far fewer rows.
    d, tokens = _d, _ROLLUP_TOKENS
    stmt = (
        select(
            d.day,
            Account.id.label("account_id"),
            Account.name.label("account"),
            Service.name.label("service"),
            d.model,
            d.service_tier,
            func.coalesce(func.sum(tokens), 0).label("tokens"),
            func.coalesce(func.sum(d.requests), 0).label("requests"),
            func.coalesce(func.sum(d.cost_micros), 0).label("cost_micros"),
        )
        .join(Account, Account.id == d.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(d.day >= start, d.day <= end)
        .group_by(d.day, Account.id, Account.name, Service.name, d.model, d.service_tier)
    )
    rows = session.execute(stmt).all()
    frame = pd.DataFrame(
        [tuple(r) for r in rows],
        columns=[
            "day",
            "account_id",
            "account",
            "service",
            "model",
            "service_tier",
            "tokens",
            "requests",
            "cost_micros",
        ],
    )
    frame["tokens"] = frame["tokens"].astype("int64")
    frame["requests"] = frame["requests"].astype("int64")
    frame["cost"] = frame.pop("cost_micros").astype("float64") / 1_000_000
    return frame


# --- listing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetView:
    """A scope's budget and its month-to-date spend (USD, UTC month)."""

    scope: str
    monthly_budget: Decimal | None
    source: str  # 'set', 'sum of accounts' or 'none'
    spent: Decimal
    used_pct: Decimal | None

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "monthly_budget": None if self.monthly_budget is None else str(self.monthly_budget),
            "source": self.source,
            "spent_month_to_date": str(self.spent),
            "used_pct": None if self.used_pct is None else str(round(self.used_pct, 2)),
        }


def list_budgets(*, session: Session, today: dt.date) -> list[BudgetView]:
    """The organisation's budget, then every service, account and team with a budget set."""
    start, _end = month_bounds(today)
    views = []
    teams_spent: dict[str, int] = {}

    def add(scope: Scope, budget: Decimal | None, source: str) -> None:
        if scope.kind == "team":
            spent = to_dollars(teams_spent.get(scope.name, 0))
        else:
            spent = scope_spend(session=session, scope=scope, start=start, end=today)
        budget = None if budget is None else budget.quantize(Decimal("0.01"))
        pct = spent / budget * 100 if budget else None
        views.append(BudgetView(str(scope), budget, source, spent, pct))

    budget, source = org_budget(session=session)
    add(
        Scope("org"),
        budget,
        {"organisation": "set", "accounts": "sum of accounts"}.get(source, "none"),
    )
    for service in session.scalars(
        select(Service).where(Service.monthly_budget.is_not(None)).order_by(Service.name)
    ):
        add(Scope("service", service.name), service.monthly_budget, "set")
    for account in session.scalars(
        select(Account).where(Account.monthly_budget.is_not(None)).order_by(Account.name)
    ):
        add(Scope("account", account.name), account.monthly_budget, "set")
    budgeted = list(
        session.scalars(select(Team).where(Team.monthly_budget.is_not(None)).order_by(Team.name))
    )
    if budgeted:  # one chargeback of the month for every team
        teams_spent = team_spend(session=session, start=start, end=today)
    for team in budgeted:
        add(Scope("team", team.name), team.monthly_budget, "set")
    return views
