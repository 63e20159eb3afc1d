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
- ratelimit: an account's remaining requests or tokens fell below N % of its limit (default 10).

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
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tracker.alerts.notify import Channel, DeliveryError, Notification, deliver, parse_channel
from tracker.core import audit
from tracker.core.config import Settings
from tracker.core.errors import InvalidInput, NotFound, TrackerError
from tracker.core.runtime import Runtime
from tracker.core.units import month_bounds
from tracker.models import (
    Account,
    AlertEvent,
    AlertRule,
    Anomaly,
    Service,
    SyncRun,
    UsageRecord,
    utcnow,
)
from tracker.planning.budgets import (
    Scope,
    get_budget,
    parse_scope,
    scope_spend,
    scope_tokens,
)
from tracker.reporting.accounts import rate_limit_readings

log = logging.getLogger(__name__)

KINDS = ("budget", "projected", "quota", "unpriced", "variance", "sync", "anomaly", "ratelimit")
DEFAULT_THRESHOLDS: dict[str, tuple[Decimal, ...]] = {
    "budget": (Decimal(50), Decimal(75), Decimal(90), Decimal(100)),
    "quota": (Decimal(50), Decimal(75), Decimal(90), Decimal(100)),
    "projected": (Decimal(100),),
    "variance": (Decimal(10),),
    "sync": (Decimal(6),),
    "ratelimit": (Decimal(10),),
    "anomaly": (Decimal(0),),
    "unpriced": (Decimal(0),),
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
}
VARIANCE_FLOOR = Decimal("1.00")  # USD; below this a percentage gap is rounding, not news
ANOMALY_LOOKBACK_DAYS = 7
RATELIMIT_MAX_AGE = dt.timedelta(hours=24)
DELIVERED, FAILED, PENDING, SUPERSEDED = "delivered", "failed", "pending", "superseded"


# --- rules -------------------------------------------------------------------------------------


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
    if kind in ("budget", "quota", "projected") and not 0 < value <= 1000:
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
) -> AlertRule:
    """Create an alert rule after validating kind, scope, threshold and channels; audited."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown alert kind {kind!r}; use one of {', '.join(KINDS)}")
    parsed_scope = parse_scope(scope)
    if (
        parsed_scope.kind == "account"
        and session.scalar(select(Account.id).where(Account.name == parsed_scope.name)) is None
    ):
        raise NotFound(f"no account named {parsed_scope.name!r}; see `accounts list`")
    value = _parse_threshold(kind, threshold)
    parsed_channels = [parse_channel(c) for c in channels]
    if not parsed_channels:
        raise InvalidInput("give at least one --channel email:ADDRESS, slack:URL or webhook:URL")
    if len({str(c) for c in parsed_channels}) != len(parsed_channels):
        raise InvalidInput("the same channel was given twice")
    shown = f"{_plain(value)}" if value is not None else "default"
    rule = AlertRule(
        name=(name or f"{kind} {parsed_scope} {shown}").strip()[:128],
        kind=kind,
        scope=str(parsed_scope),
        threshold=value,
        channels=[str(c) for c in parsed_channels],
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


def list_rules(*, session: Session) -> list[AlertRule]:
    """Every rule, oldest first."""
    return list(session.scalars(select(AlertRule).order_by(AlertRule.id)))


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


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """A condition that holds now; it becomes an event unless it already fired."""

    rule_id: int
    period: str
    dedupe_key: str
    subject: str
    body: str
    fields: dict[str, Any] = field(default_factory=dict)
    # Firings of one rule sharing a group: only the highest new one in a check is sent.
    group: str | None = None
    rank: Decimal = Decimal(0)


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def _pct(value: Decimal) -> str:
    return f"{value:.0f} %" if value == value.to_integral_value() else f"{value:.1f} %"


def _accounts_in(session: Session, scope: Scope) -> list[Account]:
    stmt = select(Account).where(Account.status != "disabled").order_by(Account.name)
    if scope.kind == "service":
        stmt = stmt.join(Service, Service.id == Account.service_id).where(
            Service.name == scope.name
        )
    elif scope.kind == "account":
        stmt = stmt.where(Account.name == scope.name)
    return list(session.scalars(stmt))


def _eval_budget(session: Session, rule: AlertRule, scope: Scope, now: dt.datetime) -> list[Firing]:
    today = now.date()
    start, _end = month_bounds(today)
    budget = get_budget(session=session, scope=scope)
    if not budget:
        log.info("alert %s: %s has no budget; nothing to check", rule.id, scope)
        return []
    spent = scope_spend(session=session, scope=scope, start=start, end=today)
    used = spent / budget * 100
    period = start.strftime("%Y-%m")
    firings = []
    for t in thresholds(rule):
        if used >= t:
            firings.append(
                Firing(
                    rule.id,
                    period,
                    f"pct:{t}",
                    f"{scope.label}: {_pct(t)} of the {start:%B %Y} budget reached",
                    f"{scope.label} has spent {_usd(spent)} of its {_usd(budget)} monthly "
                    f"budget ({_pct(used)}) as of {today.isoformat()} (UTC).",
                    {
                        "kind": "budget",
                        "scope": str(scope),
                        "threshold_pct": str(t),
                        "spent": str(spent),
                        "budget": str(budget),
                        "used_pct": str(round(used, 2)),
                        "period": period,
                    },
                    group="pct",
                    rank=t,
                )
            )
    return firings


def _eval_projected(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    from tracker.planning import projections

    today = now.date()
    budget = get_budget(session=session, scope=scope)
    if not budget:
        return []
    projection = projections.project_scope(session=session, scope=scope, today=today)
    period = projection.month.strftime("%Y-%m")
    firings = []
    for t in thresholds(rule):
        if projection.projected_total >= budget * t / 100:
            runs_out = (
                f"; at this pace the budget runs out on {projection.budget_exhausted_on}"
                if projection.budget_exhausted_on
                else ""
            )
            firings.append(
                Firing(
                    rule.id,
                    period,
                    f"projected:{t}",
                    f"{scope.label}: projected to reach {_pct(t)} of the "
                    f"{projection.month:%B %Y} budget",
                    f"{scope.label} is projected to spend {_usd(projection.projected_total)} "
                    f"(80 % interval {_usd(projection.lower)} to {_usd(projection.upper)}) "
                    f"against a budget of {_usd(budget)}; spent so far "
                    f"{_usd(projection.actual_to_date)}{runs_out}.",
                    {
                        "kind": "projected",
                        "scope": str(scope),
                        "threshold_pct": str(t),
                        "projected_total": str(projection.projected_total),
                        "lower_bound": str(projection.lower),
                        "upper_bound": str(projection.upper),
                        "budget": str(budget),
                        "budget_exhausted_on": (
                            projection.budget_exhausted_on.isoformat()
                            if projection.budget_exhausted_on
                            else None
                        ),
                        "period": period,
                    },
                    group="projected",
                    rank=t,
                )
            )
    return firings


def _eval_quota(session: Session, rule: AlertRule, scope: Scope, now: dt.datetime) -> list[Firing]:
    today = now.date()
    start, _end = month_bounds(today)
    period = start.strftime("%Y-%m")
    firings = []
    for account in _accounts_in(session, scope):
        if not account.token_quota:
            continue
        used_tokens = scope_tokens(
            session=session, scope=Scope("account", account.name), start=start, end=today
        )
        used = Decimal(used_tokens) / account.token_quota * 100
        for t in thresholds(rule):
            if used >= t:
                firings.append(
                    Firing(
                        rule.id,
                        period,
                        f"{account.name}:pct:{t}",
                        f"account {account.name}: {_pct(t)} of the token quota used",
                        f"account {account.name} has used {used_tokens:,} of its "
                        f"{account.token_quota:,} monthly tokens ({_pct(used)}) as of "
                        f"{today.isoformat()} (UTC).",
                        {
                            "kind": "quota",
                            "account": account.name,
                            "threshold_pct": str(t),
                            "tokens": used_tokens,
                            "token_quota": account.token_quota,
                            "period": period,
                        },
                        group=f"quota:{account.name}",
                        rank=t,
                    )
                )
    return firings


def _usage_in_scope(stmt: Any, scope: Scope) -> Any:
    stmt = stmt.join(Account, Account.id == UsageRecord.account_id).join(
        Service, Service.id == Account.service_id
    )
    if scope.kind == "service":
        stmt = stmt.where(Service.name == scope.name)
    elif scope.kind == "account":
        stmt = stmt.where(Account.name == scope.name)
    return stmt


def _eval_unpriced(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    start, _end = month_bounds(now.date())
    period = start.strftime("%Y-%m")
    stmt = (
        select(
            Service.name,
            UsageRecord.model,
            func.min(UsageRecord.day),
            func.count(),
            func.min(Account.name),
        )
        .where(
            UsageRecord.day >= start,
            UsageRecord.pricing_status == "unpriced",
            UsageRecord.billed_cost.is_(None),
        )
        .group_by(Service.name, UsageRecord.model)
        .order_by(Service.name, UsageRecord.model)
    )
    firings = []
    for provider, model, first_day, rows, account in session.execute(_usage_in_scope(stmt, scope)):
        firings.append(
            Firing(
                rule.id,
                period,
                f"{provider}/{model}"[:160],
                f"Unpriced model seen: {provider} {model or '(no model name)'}",
                f"{rows} usage row(s) of {provider} model {model!r} since {first_day} "
                f"(e.g. account {account}) have no billed cost and no known price, so they "
                "count as $0. Add a price override on the Admin page or update the price "
                "book, then run `python -m tracker reprice`.",
                {"kind": "unpriced", "provider": provider, "model": model, "rows": rows},
            )
        )
    return firings


def _eval_variance(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    start, _end = month_bounds(now.date())
    u = UsageRecord
    stmt = (
        select(Account.name, u.day, func.sum(u.billed_cost), func.sum(u.estimated_cost))
        .where(u.day >= start, u.billed_cost.is_not(None), u.estimated_cost.is_not(None))
        .group_by(Account.name, u.day)
        .order_by(Account.name, u.day)
    )
    (limit,) = thresholds(rule)[:1]
    firings = []
    for account, day, billed_raw, estimated_raw in session.execute(_usage_in_scope(stmt, scope)):
        # SQLite returns NUMERIC sums as floats; round to cents before comparing.
        billed = Decimal(str(billed_raw)).quantize(Decimal("0.01"))
        estimated = Decimal(str(estimated_raw)).quantize(Decimal("0.01"))
        gap = abs(billed - estimated)
        if not estimated or gap < VARIANCE_FLOOR:
            continue
        pct = gap / estimated * 100
        if pct <= limit:
            continue
        firings.append(
            Firing(
                rule.id,
                day.strftime("%Y-%m"),
                f"{account}:{day.isoformat()}",
                f"account {account}: billed differs from estimate by {_pct(pct)} on {day}",
                f"On {day} account {account} was billed {_usd(billed)} where our price book "
                f"estimates {_usd(estimated)} ({_pct(pct)} apart, limit {_pct(limit)}). "
                "Check the price book and overrides (e.g. a negotiated discount) with "
                "`python -m tracker reconcile`.",
                {
                    "kind": "variance",
                    "account": account,
                    "day": day.isoformat(),
                    "billed": str(billed),
                    "estimated": str(estimated),
                    "variance_pct": str(round(pct, 2)),
                },
            )
        )
    return firings


def _eval_sync(session: Session, rule: AlertRule, scope: Scope, now: dt.datetime) -> list[Firing]:
    (hours,) = thresholds(rule)[:1]
    firings = []
    for account in _accounts_in(session, scope):
        last_success = session.scalar(
            select(func.max(SyncRun.started_at)).where(
                SyncRun.account_id == account.id, SyncRun.status == "success"
            )
        )
        failed = select(func.min(SyncRun.started_at), func.count()).where(
            SyncRun.account_id == account.id, SyncRun.status == "failed"
        )
        if last_success is not None:
            failed = failed.where(SyncRun.started_at > last_success)
        first_failure, failures = session.execute(failed).one()
        if not failures or first_failure is None:
            continue
        if now - first_failure < dt.timedelta(hours=float(hours)):
            continue
        failing_for = (now - first_failure).total_seconds() / 3600
        firings.append(
            Firing(
                rule.id,
                first_failure.date().isoformat(),
                f"{account.name}:{first_failure.isoformat()}"[:160],
                f"account {account.name}: sync failing for {failing_for:.0f} hours",
                f"Every sync of account {account.name} since {first_failure:%Y-%m-%d %H:%M} UTC "
                f"has failed ({failures} attempt(s)); last error: "
                f"{(account.last_error or 'unknown')[:300]}. Check the Sync health page and "
                f"test the credential with `python -m tracker accounts test {account.name}`.",
                {
                    "kind": "sync",
                    "account": account.name,
                    "failing_since": first_failure.isoformat(),
                    "failed_runs": failures,
                },
            )
        )
    return firings


def _eval_anomaly(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    (minimum,) = thresholds(rule)[:1]
    since = now.date() - dt.timedelta(days=ANOMALY_LOOKBACK_DAYS)
    stmt = (
        select(Anomaly, Account.name)
        .join(Account, Account.id == Anomaly.account_id)
        .join(Service, Service.id == Account.service_id)
        .where(Anomaly.day >= since, Anomaly.acknowledged_at.is_(None))
        .order_by(Anomaly.day, Account.name, Anomaly.model)
    )
    if scope.kind == "service":
        stmt = stmt.where(Service.name == scope.name)
    elif scope.kind == "account":
        stmt = stmt.where(Account.name == scope.name)
    firings = []
    for anomaly, account in session.execute(stmt):
        excess = anomaly.actual_cost - anomaly.baseline_cost
        if excess < minimum:
            continue
        what = "all models" if anomaly.model == "*" else anomaly.model or "(no model)"
        firings.append(
            Firing(
                rule.id,
                anomaly.day.strftime("%Y-%m"),
                f"{account}:{anomaly.model}:{anomaly.day.isoformat()}"[:160],
                f"Cost anomaly: account {account}, {what}, {anomaly.day}",
                f"On {anomaly.day} account {account} ({what}) cost {_usd(anomaly.actual_cost)} "
                f"against a usual {_usd(anomaly.baseline_cost)} (score {anomaly.score}). "
                f"{anomaly.explanation or ''}".strip(),
                {
                    "kind": "anomaly",
                    "account": account,
                    "model": anomaly.model,
                    "day": anomaly.day.isoformat(),
                    "actual": str(anomaly.actual_cost),
                    "baseline": str(anomaly.baseline_cost),
                    "volume_effect": _s(anomaly.volume_effect),
                    "mix_effect": _s(anomaly.mix_effect),
                    "rate_effect": _s(anomaly.rate_effect),
                },
            )
        )
    return firings


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _eval_ratelimit(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    (floor_pct,) = thresholds(rule)[:1]
    firings = []
    for account in _accounts_in(session, scope):
        updated = account.rate_limit_updated_at
        # A stale snapshot says nothing about today: limits reset within minutes.
        if updated is None or now - updated > RATELIMIT_MAX_AGE:
            continue
        for reading in rate_limit_readings(account.rate_limit_snapshot):
            if reading.remaining_pct >= floor_pct:
                continue
            firings.append(
                Firing(
                    rule.id,
                    updated.date().isoformat(),
                    f"{account.name}:{reading.resource}"[:160],
                    f"account {account.name}: {reading.resource} rate limit nearly used",
                    f"At {updated:%Y-%m-%d %H:%M} UTC account {account.name} had "
                    f"{reading.remaining:,} of {reading.limit:,} {reading.resource} left "
                    f"({_pct(reading.remaining_pct)}, alert below {_pct(floor_pct)}).",
                    {
                        "kind": "ratelimit",
                        "account": account.name,
                        "resource": reading.resource,
                        "limit": reading.limit,
                        "remaining": reading.remaining,
                    },
                )
            )
    return firings


EVALUATORS = {
    "budget": _eval_budget,
    "projected": _eval_projected,
    "quota": _eval_quota,
    "unpriced": _eval_unpriced,
    "variance": _eval_variance,
    "sync": _eval_sync,
    "anomaly": _eval_anomaly,
    "ratelimit": _eval_ratelimit,
}


def evaluate(*, session: Session, now: dt.datetime) -> list[Firing]:
    """Every condition that holds now for every enabled rule (fired before or not).

    A rule whose scope no longer exists is skipped with a warning rather than stopping the
    other rules.
    """
    firings: list[Firing] = []
    for rule in session.scalars(
        select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ):
        try:
            firings.extend(EVALUATORS[rule.kind](session, rule, parse_scope(rule.scope), now))
        except TrackerError as exc:
            log.warning("alert rule %s (%s) skipped: %s", rule.id, rule.name, exc)
    return firings


def _already_fired(session: Session, firing: Firing) -> bool:
    return (
        session.scalar(
            select(AlertEvent.id).where(
                AlertEvent.alert_id == firing.rule_id,
                AlertEvent.period == firing.period,
                AlertEvent.dedupe_key == firing.dedupe_key,
            )
        )
        is not None
    )


def record_firings(
    *, session: Session, firings: Iterable[Firing], now: dt.datetime
) -> list[AlertEvent]:
    """Store the firings that have not fired yet; return the new events.

    The unique constraint is the arbiter: a concurrent checker that inserted the same key
    first makes our insert fail inside its savepoint, and we skip it.
    """
    new: list[tuple[Firing, AlertEvent]] = []
    for firing in firings:
        if _already_fired(session, firing):
            continue
        event = AlertEvent(
            alert_id=firing.rule_id,
            period=firing.period,
            dedupe_key=firing.dedupe_key,
            fired_at=now,
            message=f"{firing.subject}\n\n{firing.body}",
            payload={"subject": firing.subject, "fields": firing.fields, "deliveries": {}},
            delivery_status=PENDING,
            delivery_attempts=0,
        )
        try:
            with session.begin_nested():
                session.add(event)
                session.flush()
        except IntegrityError:
            log.info("alert %s %s already fired elsewhere", firing.rule_id, firing.dedupe_key)
            continue
        new.append((firing, event))
    # Several thresholds crossed at once: send the highest, keep the rest as history.
    best: dict[tuple[int, str, str], Decimal] = {}
    for firing, _event in new:
        if firing.group is not None:
            key = (firing.rule_id, firing.period, firing.group)
            best[key] = max(best.get(key, firing.rank), firing.rank)
    for firing, event in new:
        if firing.group is None:
            continue
        top = best[(firing.rule_id, firing.period, firing.group)]
        if firing.rank < top:
            event.delivery_status = SUPERSEDED
            event.last_delivery_error = None
    session.flush()
    return [event for _firing, event in new]


# --- delivery ----------------------------------------------------------------------------


def _notification(event: AlertEvent, rule: AlertRule) -> Notification:
    payload = event.payload or {}
    subject = str(payload.get("subject") or event.message.splitlines()[0])
    body = event.message.split("\n\n", 1)[1] if "\n\n" in event.message else event.message
    fields = {
        "alert_id": rule.id,
        "alert_name": rule.name,
        "event_id": event.id,
        "period": event.period,
        "fired_at": event.fired_at.isoformat(),
        **dict(payload.get("fields") or {}),
    }
    return Notification(subject=f"[AI cost tracker] {subject}", body=body, fields=fields)


def deliver_event(
    *, session: Session, event_id: int, settings: Settings, http: requests.Session
) -> str | None:
    """Send one pending or failed event to the channels it has not reached; record the outcome.

    The event is claimed with a conditional UPDATE first, so two checkers never send the same
    attempt. Returns the new delivery status, or None when another checker holds it.
    """
    event = session.get(AlertEvent, event_id)
    if event is None or event.delivery_status not in (PENDING, FAILED):
        return None
    seen = event.delivery_attempts
    claimed = session.execute(
        update(AlertEvent)
        .where(
            AlertEvent.id == event_id,
            AlertEvent.delivery_attempts == seen,
            AlertEvent.delivery_status.in_((PENDING, FAILED)),
        )
        .values(delivery_attempts=seen + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    session.refresh(event)
    rule = session.get(AlertRule, event.alert_id)
    assert rule is not None  # events cascade-delete with their rule
    note = _notification(event, rule)
    payload = dict(event.payload or {})
    deliveries = dict(payload.get("deliveries") or {})
    errors = []
    for raw in rule.channels or []:
        try:
            channel: Channel = parse_channel(raw)
        except InvalidInput as exc:
            errors.append(str(exc))
            continue
        if deliveries.get(channel.key, {}).get("status") == "sent":
            continue  # reached on an earlier attempt: never send twice
        try:
            deliver(channel, note, settings=settings, http=http)
        except DeliveryError as exc:
            errors.append(str(exc))
            deliveries[channel.key] = {"status": "failed", "error": str(exc)[:500]}
            log.warning("alert event %s: %s", event.id, exc)
        else:
            deliveries[channel.key] = {"status": "sent", "at": utcnow().isoformat()}
    payload["deliveries"] = deliveries
    event.payload = payload  # a new dict, so the JSON column is written
    if errors:
        event.delivery_status = FAILED
        event.last_delivery_error = "; ".join(errors)[:2000]
    else:
        event.delivery_status = DELIVERED
        event.last_delivery_error = None
        event.delivered_at = utcnow()
    session.flush()
    return event.delivery_status


@dataclass
class CheckReport:
    """What one `alerts check` did (or with dry_run, would do)."""

    fired: list[str] = field(default_factory=list)
    delivered: int = 0
    failed: int = 0
    pending_retries: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would fire" if self.dry_run else "fired"
        text = f"{verb} {len(self.fired)} alert(s)"
        if self.dry_run:
            return text + f"; {self.pending_retries} earlier delivery(ies) would be retried"
        return text + f"; delivered {self.delivered}, failed {self.failed} (retried next run)"


def run_check(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings,
    http: requests.Session,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> CheckReport:
    """Evaluate every rule, store new firings, then deliver everything not yet delivered.

    Each step commits on its own: a firing is stored before it is sent (so a crash never
    re-fires it), and each event's delivery is its own short transaction.
    """
    now = now or utcnow()
    report = CheckReport(dry_run=dry_run)
    if dry_run:
        with session_factory() as session:
            for firing in evaluate(session=session, now=now):
                if not _already_fired(session, firing):
                    report.fired.append(firing.subject)
            report.pending_retries = int(
                session.scalar(
                    select(func.count()).where(AlertEvent.delivery_status.in_((PENDING, FAILED)))
                )
                or 0
            )
        return report
    with session_factory.begin() as session:
        events = record_firings(
            session=session, firings=evaluate(session=session, now=now), now=now
        )
        report.fired = [
            (e.payload or {}).get("subject", e.dedupe_key)
            for e in events
            if e.delivery_status != SUPERSEDED
        ]
    with session_factory() as session:
        pending = list(
            session.scalars(
                select(AlertEvent.id)
                .where(AlertEvent.delivery_status.in_((PENDING, FAILED)))
                .order_by(AlertEvent.id)
            )
        )
    for event_id in pending:
        with session_factory.begin() as session:
            status = deliver_event(session=session, event_id=event_id, settings=settings, http=http)
        if status == DELIVERED:
            report.delivered += 1
        elif status == FAILED:
            report.failed += 1
    return report


def undelivered_count(*, session: Session) -> int:
    """How many events still wait for (re)delivery; shown in the app."""
    return int(
        session.scalar(
            select(func.count()).where(AlertEvent.delivery_status.in_((PENDING, FAILED)))
        )
        or 0
    )


def run_job(runtime: Runtime) -> None:
    """Worker job: evaluate the rules and deliver; a failed send is kept for the next run."""
    report = run_check(
        session_factory=runtime.session_factory,
        settings=runtime.settings,
        http=requests.Session(),
    )
    if report.failed:
        log.warning("alerts: %s", report.summary())
    else:
        log.info("alerts: %s", report.summary())
