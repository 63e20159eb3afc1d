"""The data-changing actions of the Budgets & alerts and Anomalies pages, and `acting_as`,
the transaction every page's change runs in (the Admin and Accounts pages use it directly).

Each action opens its own transaction, checks the signed-in user's role against the database
there (`require_role`: the page list hides the forms from other roles, this is the check
behind it), then calls the tracker function, which validates the input and writes the audit
entry. Errors are raised as `TrackerError` for the page to show; nothing is written on error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import requests
from sqlalchemy.orm import Session

from tracker.alerts import delivery
from tracker.alerts import rules as alert_rules
from tracker.core import audit
from tracker.core.runtime import Runtime
from tracker.planning import anomalies, budgets
from tracker.ui.auth import require_role

ADMIN = ("admin",)
EDIT_BUDGETS = ADMIN
# Acknowledging an anomaly records that someone looked at it; it changes no cost, budget or
# rule, so finance (who reads the anomalies) may do it too.
ACKNOWLEDGE = ("admin", "finance")


@contextmanager
def acting_as(runtime: Runtime, *roles: str) -> Iterator[tuple[Session, str]]:
    """The transaction of one change: the signed-in user's role is checked against the
    database in it (the server-side check behind the page list); yields (session, actor)."""
    with runtime.session_factory.begin() as session:
        yield session, require_role(session, *roles)


def set_budget(runtime: Runtime, *, scope: str, monthly: str | None) -> budgets.Scope:
    """Set a scope's monthly USD budget, or clear it with `monthly=None`."""
    with acting_as(runtime, *EDIT_BUDGETS) as (session, actor):
        return budgets.set_budget(session=session, scope=scope, monthly=monthly, actor=actor)


def add_rule(
    runtime: Runtime,
    *,
    kind: str,
    scope: str,
    threshold: str,
    channels: list[str],
    name: str | None = None,
) -> int:
    """Add an alert rule; return its id."""
    with acting_as(runtime, *EDIT_BUDGETS) as (session, actor):
        rule = alert_rules.add_rule(
            session=session,
            kind=kind,
            scope=scope,
            threshold=threshold or None,
            channels=channels,
            name=name or None,
            actor=actor,
        )
        return rule.id


def set_rule_enabled(runtime: Runtime, *, rule_id: int, enabled: bool) -> None:
    """Pause or resume a rule."""
    with acting_as(runtime, *EDIT_BUDGETS) as (session, actor):
        alert_rules.set_rule_enabled(session=session, rule_id=rule_id, enabled=enabled, actor=actor)


def remove_rule(runtime: Runtime, *, rule_id: int) -> None:
    """Delete a rule and its event history."""
    with acting_as(runtime, *EDIT_BUDGETS) as (session, actor):
        alert_rules.remove_rule(session=session, rule_id=rule_id, actor=actor)


def check_alerts(runtime: Runtime) -> delivery.CheckReport:
    """Evaluate every rule now and deliver what is due, as the worker does after a sync."""
    with acting_as(runtime, *EDIT_BUDGETS) as (session, actor):
        # run_check commits in steps of its own; the request itself is audited here.
        audit.record(session=session, actor=actor, action="alerts.check", target="app")
    return delivery.run_check(
        session_factory=runtime.session_factory,
        settings=runtime.settings,
        http=requests.Session(),
    )


def acknowledge_anomaly(runtime: Runtime, *, anomaly_id: int) -> None:
    """Mark an anomaly as seen; it stops alerting."""
    with acting_as(runtime, *ACKNOWLEDGE) as (session, actor):
        anomalies.acknowledge(session=session, anomaly_id=anomaly_id, actor=actor)
