"""The Budgets & alerts page's read model: budgets against spend and projection, the
providers' own spend limits beside them, alert rules and events.

Reads only; changes go through `tracker.planning.budgets` and `tracker.alerts.rules`, which
validate and audit them. Alert channels are shown masked: a webhook URL is a secret (anyone
holding it can post), and an email address is personal data a finance page has no need to
show in full.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.alerts import rules as alert_rules
from tracker.alerts.notify import mask_channel, parse_channel
from tracker.core.errors import InvalidInput
from tracker.models import Account, Service, Team
from tracker.planning import budgets, projections
from tracker.planning.budgets import scope_label
from tracker.planning.spend_limits import (
    AlertCheck,
    Drift,
    compare_caps,
    member_limits,
    partial_caps,
)
from tracker.providers.registry import display_name
from tracker.reporting.forecast import ProjectionSet, floor_to_spend

# --- budgets -----------------------------------------------------------------------------------


def budget_frame(*, session: Session, today: dt.date, projected: ProjectionSet) -> pd.DataFrame:
    """Every budget with its month-to-date spend, % used and projected month-end."""
    columns = [
        "scope",
        "scope_label",
        "monthly_budget",
        "source",
        "spent",
        "used_pct",
        "projected_total",
        "projected_pct",
        "budget_exhausted_on",
    ]
    rows = []
    for view in budgets.list_budgets(session=session, today=today):
        p = projected.get(view.scope)
        if p is None and view.monthly_budget is not None:
            # A scope the worker does not project (a disabled account): project it now.
            p = projections.project_scope(session=session, scope=view.scope, today=today)
        if p is not None:
            p = floor_to_spend(p, spent_to_date=view.spent, today=today)
        rows.append(
            (
                view.scope,
                scope_label(view.scope),
                view.monthly_budget,
                view.source,
                view.spent,
                None if view.used_pct is None else float(view.used_pct),
                None if p is None else p.projected_total,
                None
                if p is None or not view.monthly_budget
                else float(p.projected_total / view.monthly_budget * 100),
                None if p is None else p.budget_exhausted_on,
            )
        )
    return pd.DataFrame(rows, columns=columns)


def budget_scopes(*, session: Session) -> list[str]:
    """Every scope a budget or rule can be set on: org, each service, account and team."""
    services = sorted(session.scalars(select(Service.name)))
    accounts = sorted(session.scalars(select(Account.name)))
    teams = sorted(session.scalars(select(Team.name)))
    return (
        ["org"]
        + [f"service:{s}" for s in services]
        + [f"account:{a}" for a in accounts]
        + [f"team:{t}" for t in teams]
    )


# --- the providers' own caps ---------------------------------------------------------------------

# Each comparison as the page says it, and its level in the app's one status palette.
CAP_LABELS = {
    Drift.WITHIN: "Cap at or above budget",
    Drift.BELOW: "Cap below budget",
    Drift.NO_CAP: "No cap at the provider",
    Drift.NO_BUDGET: "No budget of ours",
    Drift.NOT_COMPARABLE: "Not comparable",
    Drift.NOT_READ: "Could not be read",
}
CAP_LEVELS = {
    "Cap at or above budget": "OK",
    "Cap below budget": "Warning",
    "No cap at the provider": "Warning",
}
# A provider's spend alert (it notifies, it stops nothing) against our budget.
ALERT_LABELS = {
    AlertCheck.WITHIN: "Alert only, at or below budget",
    AlertCheck.ABOVE: "Alert only, above budget",
    AlertCheck.NONE: "No alert at the provider",
    AlertCheck.NO_BUDGET: "Alert only, no budget of ours",
    AlertCheck.NOT_COMPARABLE: "Alert only, not comparable",
    AlertCheck.NOT_READ: "Alerts could not be read",
}


def provider_cap_frame(*, session: Session) -> pd.DataFrame:
    """Per account: the provider's cap on the whole account beside our monthly budget."""
    # The verdict first, then the two figures it compares: a wide table scrolls sideways.
    columns = [
        "account",
        "provider",
        "status",
        "provider_cap",
        "budget",
        "budget_from",
        "provider_alert",
        "alert_status",
        "currency",
        "period",
        "enforcement",
        "note",
        "read_at",
    ]
    rows = [
        (
            c.account,
            display_name(c.provider),
            CAP_LABELS[c.status],
            c.cap,
            c.budget,
            c.budget_from,
            c.alert,
            None if c.alert_status is None else ALERT_LABELS[c.alert_status],
            c.currency,
            c.period,
            c.enforcement,
            c.note,
            c.read_at,
        )
        for c in compare_caps(session=session)
    ]
    return pd.DataFrame(rows, columns=columns)


def partial_cap_frame(*, session: Session) -> pd.DataFrame:
    """The provider caps on parts of accounts: projects, workspaces, members, one SKU."""
    columns = ["account", "provider", "scope", "amount", "currency", "period", "enforcement"]
    rows = [
        (
            p.account,
            display_name(p.provider),
            p.scope,
            p.amount,
            p.currency,
            p.period,
            p.enforcement or p.note,
        )
        for p in partial_caps(session=session)
    ]
    return pd.DataFrame(rows, columns=columns)


def member_limit_frame(*, session: Session, today: dt.date) -> pd.DataFrame:
    """Each member's effective limit at the provider per period, with the member's spend so
    far in it, the user of ours with the member's email and the member's team."""
    columns = [
        "account",
        "provider",
        "member",
        "email",
        "user",
        "team",
        "limit",
        "spent",
        "used_pct",
        "currency",
        "period",
        "source",
        "read_at",
    ]
    rows = [
        (
            m.account,
            display_name(m.provider),
            m.member if m.readable else "(every member)",
            m.email,
            m.user,
            m.team,
            m.amount,
            m.spent,
            None if not m.amount or m.spent is None else float(m.spent / m.amount * 100),
            m.currency,
            m.period,
            m.source,
            m.read_at,
        )
        for m in member_limits(session=session, today=today)
    ]
    return pd.DataFrame(rows, columns=columns)


# --- alert rules and events --------------------------------------------------------------------


def display_channel(raw: str) -> str:
    """A channel as a page shows it: URLs as notify masks them, email as a…@domain."""
    try:
        channel = parse_channel(raw)
    except InvalidInput:
        return mask_channel(raw)
    if channel.type == "email":
        local, _sep, domain = channel.target.partition("@")
        return f"email:{local[:1]}…@{domain}"
    return channel.masked


def rules_frame(*, session: Session) -> pd.DataFrame:
    """Every alert rule with masked channels."""
    columns = [
        "id",
        "name",
        "kind",
        "scope",
        "thresholds",
        "channels",
        "enabled",
        "created_by",
        "created_at",
    ]
    rows = []
    for rule in alert_rules.list_rules(session=session):
        unit = alert_rules.THRESHOLD_UNITS[rule.kind]
        shown = ", ".join(str(t) for t in alert_rules.thresholds(rule))
        rows.append(
            (
                rule.id,
                rule.name,
                rule.kind,
                rule.scope,
                "—" if rule.kind == "unpriced" else f"{shown} {unit}".strip(),
                ", ".join(display_channel(c) for c in rule.channels or []),
                rule.enabled,
                rule.created_by,
                rule.created_at,
            )
        )
    return pd.DataFrame(rows, columns=columns)


def events_frame(*, session: Session, limit: int = 200) -> pd.DataFrame:
    """The latest alert events, newest first, with delivery status and last error."""
    columns = [
        "fired_at",
        "rule",
        "kind",
        "period",
        "message",
        "delivery_status",
        "delivery",
        "channels",
        "delivery_attempts",
        "last_delivery_error",
        "delivered_at",
    ]
    return pd.DataFrame(
        [
            (
                e.fired_at,
                r.name,
                r.kind,
                e.period,
                e.message,
                e.delivery_status,
                alert_rules.delivery_text(e),
                "; ".join(alert_rules.channel_deliveries(e)),
                e.delivery_attempts,
                e.last_delivery_error,
                e.delivered_at,
            )
            for e, r in alert_rules.list_events(session=session, limit=limit)
        ],
        columns=columns,
    )
