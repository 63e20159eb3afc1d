"""Alert rules, their evaluation, exactly-once firing and retried delivery.

A rule (`alerts` table) says what to watch and where to send it. Kinds and what the
threshold means:

- budget: month-to-date spend reached N % of the scope's monthly budget (default 50, 75,
  90 and 100 %, one rule covering all four);
- projected: the month-end projection reaches N % of the budget (default 100);
- quota: month-to-date tokens reached N % of an account's token quota (default 50/75/90/100);
- unpriced: a model with no known price was used this month (no threshold);
- variance: billed cost differs from our estimate by more than N % on an account-day
  (default 10, and at least $1 apart so cents of rounding never alert);
- sync: an account's syncs have been failing for N hours (default 6);
- anomaly: an unacknowledged cost anomaly of at least $N over its baseline (default any);
- ratelimit: an account's remaining requests or tokens fell below N % of its limit (default 10);
- spendlimit: an account's spend limit at its provider is below N % of our monthly budget for
  it (default 100), or the provider has none while we budget the account
  (`tracker.planning.spend_limits`).

Budget and projected rules may watch a team (`team:NAME`): its spend is its chargeback,
read through `tracker.planning.budgets` like every other scope's.

Exactly once: each firing is an `alert_events` row keyed by (rule, period, dedupe key), and
the database's unique constraint on that key decides, so restarts and concurrent checkers
never fire twice. The period is the budget month ('2026-05') for monthly kinds and a UTC
day for incidents. The event is committed before anything is sent; delivery then runs per
event and per channel, and a channel that failed is retried on the next check (a channel
that succeeded is not sent again). When several thresholds of one rule are crossed in the
same check (say 50 % and 75 % at once), only the highest is sent; the others are stored as
'superseded' so the history stays complete.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.alerts.notify import parse_channel, reseal, seal
from tracker.attribution.teams import get_team
from tracker.core import audit
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import InvalidInput, NotFound
from tracker.models import (
    AlertEvent,
    AlertRule,
)
from tracker.planning.budgets import (
    parse_scope,
)
from tracker.providers.accounts import get_account


class AlertKind(StrEnum):
    """What a rule watches; the module docstring says what each threshold means."""

    BUDGET = "budget"
    PROJECTED = "projected"
    QUOTA = "quota"
    UNPRICED = "unpriced"
    VARIANCE = "variance"
    SYNC = "sync"
    ANOMALY = "anomaly"
    RATELIMIT = "ratelimit"
    SPEND_LIMIT = "spendlimit"


class DeliveryStatus(StrEnum):
    """Where an alert event's delivery stands; failed channels are retried next check."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    # A lower threshold of the same rule crossed in the same check as a higher one: kept for
    # the history, never sent.
    SUPERSEDED = "superseded"


KINDS = tuple(AlertKind)
DEFAULT_THRESHOLDS: dict[str, tuple[Decimal, ...]] = {
    "budget": (Decimal(50), Decimal(75), Decimal(90), Decimal(100)),
    "quota": (Decimal(50), Decimal(75), Decimal(90), Decimal(100)),
    "projected": (Decimal(100),),
    "variance": (Decimal(10),),
    "sync": (Decimal(6),),
    "ratelimit": (Decimal(10),),
    "anomaly": (Decimal(0),),
    "unpriced": (Decimal(0),),
    "spendlimit": (Decimal(100),),
}
THRESHOLD_UNITS = {
    "budget": "% of budget",
    "quota": "% of token quota",
    "projected": "% of budget (projected)",
    "variance": "% billed vs estimated",
    "sync": "hours failing",
    "ratelimit": "% remaining",
    "anomaly": "USD over baseline",
    "unpriced": "",
    "spendlimit": "% of budget (provider cap below)",
}
# The kinds that watch spend against a budget, the only ones a `team:NAME` scope fits.
TEAM_KINDS = ("budget", "projected")
VARIANCE_FLOOR = Decimal("1.00")  # USD; below this a percentage gap is rounding, not news
ANOMALY_LOOKBACK_DAYS = 7
RATELIMIT_MAX_AGE = dt.timedelta(hours=24)


def _parse_threshold(kind: str, raw: Any) -> Decimal | None:
    if raw is None or str(raw).strip() == "":
        return None
    if kind == "unpriced":
        raise InvalidInput("the unpriced kind takes no --threshold")
    try:
        value = Decimal(str(raw).strip().rstrip("%"))
    except InvalidOperation:
        raise InvalidInput(f"threshold {raw!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise InvalidInput("the threshold must be a number of zero or more")
    if kind in ("budget", "quota", "projected", "spendlimit") and not 0 < value <= 1000:
        raise InvalidInput(f"a {kind} threshold is a percentage between 0 and 1000")
    if kind == "ratelimit" and not 0 < value < 100:
        raise InvalidInput("a ratelimit threshold is a percentage remaining between 0 and 100")
    if kind == "sync" and value == 0:
        raise InvalidInput("a sync threshold is a number of hours above zero")
    return value


def _plain(value: Decimal) -> Decimal:
    """50.000000 -> 50, 7.50 -> 7.5 (never 5E+1): thresholds are part of dedupe keys."""
    return Decimal(format(value.normalize(), "f"))


def thresholds(rule: AlertRule) -> tuple[Decimal, ...]:
    """The thresholds a rule checks: its own, or the kind's defaults."""
    if rule.threshold is not None:
        return (_plain(Decimal(rule.threshold)),)
    return DEFAULT_THRESHOLDS[rule.kind]


def add_rule(
    *,
    session: Session,
    kind: str,
    channels: Iterable[str],
    scope: str | None = "org",
    threshold: Any = None,
    name: str | None = None,
    actor: str = "cli",
    cipher: CredentialCipher | None = None,
) -> AlertRule:
    """Create an alert rule after validating kind, scope, threshold and channels; audited.

    Slack and webhook URLs are stored encrypted with `cipher` (`notify.seal`)."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown alert kind {kind!r}; use one of {', '.join(KINDS)}")
    parsed_scope = parse_scope(scope)
    if parsed_scope.kind == "account":
        get_account(session=session, name=parsed_scope.name)  # NotFound, naming the accounts
    if parsed_scope.kind == "team":
        if kind not in TEAM_KINDS:
            raise InvalidInput(
                f"a team scope fits the {' and '.join(TEAM_KINDS)} kinds only (a team's spend "
                f"is its chargeback); for {kind} use org, service:PROVIDER or account:NAME"
            )
        get_team(session=session, name=parsed_scope.name)  # NotFound, naming the teams
    value = _parse_threshold(kind, threshold)
    parsed_channels = [parse_channel(c) for c in channels]
    if not parsed_channels:
        raise InvalidInput("give at least one channel: email:ADDRESS, slack:URL or webhook:URL")
    if len({str(c) for c in parsed_channels}) != len(parsed_channels):
        raise InvalidInput("the same channel was given twice")
    if cipher is None and any(c.type != "email" for c in parsed_channels):
        raise InvalidInput("a Slack or webhook channel is stored encrypted: pass the cipher")
    shown = f"{_plain(value)}" if value is not None else "default"
    rule = AlertRule(
        name=(name or f"{kind} {parsed_scope} {shown}").strip()[:128],
        kind=kind,
        scope=str(parsed_scope),
        threshold=value,
        channels=[seal(c, cipher) if cipher else str(c) for c in parsed_channels],
        enabled=True,
        created_by=actor,
    )
    session.add(rule)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="alert.add",
        target=f"alert:{rule.id}",
        kind=kind,
        scope=rule.scope,
        threshold=None if value is None else str(value),
        channels=[c.masked for c in parsed_channels],
    )
    return rule


def _rule(session: Session, rule_id: int) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None:
        raise NotFound(f"no alert rule {rule_id}; see `python -m tracker alerts list`")
    return rule


def remove_rule(*, session: Session, rule_id: int, actor: str = "cli") -> None:
    """Delete a rule and its event history; audited."""
    rule = _rule(session, rule_id)
    session.delete(rule)
    audit.record(session=session, actor=actor, action="alert.remove", target=f"alert:{rule_id}")
    session.flush()


def set_rule_enabled(*, session: Session, rule_id: int, enabled: bool, actor: str = "cli") -> None:
    """Pause or resume a rule; audited."""
    _rule(session, rule_id).enabled = enabled
    audit.record(
        session=session,
        actor=actor,
        action="alert.enable" if enabled else "alert.disable",
        target=f"alert:{rule_id}",
    )
    session.flush()


def rule_json(rule: AlertRule) -> dict[str, Any]:
    """A rule for display or JSON output; channel URLs masked."""
    from tracker.alerts.notify import mask_channel

    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "scope": rule.scope,
        "threshold": None if rule.threshold is None else str(_plain(Decimal(rule.threshold))),
        "thresholds": [str(t) for t in thresholds(rule)],
        "unit": THRESHOLD_UNITS[rule.kind],
        "channels": [mask_channel(c) for c in rule.channels or []],
        "enabled": rule.enabled,
        "created_by": rule.created_by,
        "created_at": rule.created_at.isoformat() if rule.created_at else None,
    }


def reseal_channels(*, session: Session, cipher: CredentialCipher) -> int:
    """Encrypt the plain Slack and webhook URLs of older rules, and re-encrypt those under a
    previous key (`keys rotate`); return how many rules changed."""
    changed = 0
    for rule in session.scalars(select(AlertRule).order_by(AlertRule.id)):
        channels = [reseal(raw, cipher) for raw in rule.channels or []]
        if channels != list(rule.channels or []):
            rule.channels = channels
            changed += 1
    session.flush()
    return changed


def list_rules(*, session: Session) -> list[AlertRule]:
    """Every rule, oldest first."""
    return list(session.scalars(select(AlertRule).order_by(AlertRule.id)))


def channel_deliveries(event: AlertEvent) -> list[str]:
    """Each channel's outcome for an event, masked: "webhook:https://host/…abcd sent"."""
    records = (event.payload or {}).get("deliveries") or {}
    return [
        f"{record.get('channel') or key.partition(':')[0]} "
        f"{'sent' if record.get('status') == 'sent' else 'failed'}"
        for key, record in sorted(records.items(), key=lambda kv: str(kv[1].get("channel", "")))
        if isinstance(record, dict)
    ]


def delivery_text(event: AlertEvent) -> str:
    """The event's delivery in a word or three: a failure that reached some channels says so
    ("partly delivered: 1 of 2"), rather than "failed" beside a delivered webhook."""
    records = [r for r in ((event.payload or {}).get("deliveries") or {}).values()]
    sent = sum(1 for r in records if isinstance(r, dict) and r.get("status") == "sent")
    if event.delivery_status == DeliveryStatus.FAILED and sent:
        return f"partly delivered: {sent} of {len(records)}"
    return str(event.delivery_status)


def event_json(event: AlertEvent, rule: AlertRule | None = None) -> dict[str, Any]:
    """An event for display or JSON output (no channel URL in it)."""
    return {
        "id": event.id,
        "alert_id": event.alert_id,
        "rule": None if rule is None else rule.name,
        "kind": None if rule is None else rule.kind,
        "period": event.period,
        "dedupe_key": event.dedupe_key,
        "fired_at": event.fired_at.isoformat(),
        "message": event.message,
        "delivery_status": event.delivery_status,
        "channels": channel_deliveries(event),
        "delivery_attempts": event.delivery_attempts,
        "last_delivery_error": event.last_delivery_error,
        "delivered_at": event.delivered_at.isoformat() if event.delivered_at else None,
    }


def list_events(*, session: Session, limit: int = 200) -> list[tuple[AlertEvent, AlertRule]]:
    """The most recent events with their rules, newest first."""
    rows = session.execute(
        select(AlertEvent, AlertRule)
        .join(AlertRule, AlertRule.id == AlertEvent.alert_id)
        .order_by(AlertEvent.fired_at.desc(), AlertEvent.id.desc())
        .limit(limit)
    ).all()
    return [(e, r) for e, r in rows]
