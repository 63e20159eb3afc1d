"""Evaluate alert rules and record their firings exactly once.

One evaluator per kind (`EVALUATORS`) turns a rule and its scope into firings; each firing
becomes an `alert_events` row whose unique key (rule, period, dedupe key) decides, so
restarts and concurrent checkers never fire twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.alerts.rules import (
    ANOMALY_LOOKBACK_DAYS,
    RATELIMIT_MAX_AGE,
    VARIANCE_FLOOR,
    AlertKind,
    DeliveryStatus,
    thresholds,
)
from tracker.core.errors import TrackerError
from tracker.core.units import dec_str, month_bounds
from tracker.models import (
    Account,
    AccountStatus,
    AlertEvent,
    AlertRule,
    Anomaly,
    Service,
    SyncRun,
    SyncStatus,
    UsageRecord,
)
from tracker.planning import projections
from tracker.planning.budgets import (
    Scope,
    get_budget,
    parse_scope,
    scope_spend,
    scope_tokens,
)
from tracker.planning.spend_limits import compare_caps
from tracker.providers.ratelimits import rate_limit_readings
from tracker.providers.registry import display_name

log = logging.getLogger(__name__)


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
    stmt = select(Account).where(Account.status != AccountStatus.DISABLED).order_by(Account.name)
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
                SyncRun.account_id == account.id, SyncRun.status == SyncStatus.SUCCESS
            )
        )
        failed = select(func.min(SyncRun.started_at), func.count()).where(
            SyncRun.account_id == account.id,
            SyncRun.status.in_((SyncStatus.FAILED, SyncStatus.INTERRUPTED)),
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


def _eval_spendlimit(
    session: Session, rule: AlertRule, scope: Scope, now: dt.datetime
) -> list[Firing]:
    (pct,) = thresholds(rule)[:1]
    period = now.date().strftime("%Y-%m")
    names = [a.name for a in _accounts_in(session, scope)]
    firings = []
    for c in compare_caps(session=session, accounts=names, threshold_pct=pct):
        if not c.status.drifted or c.budget is None:
            continue
        cap = "none" if c.cap is None else _usd(c.cap)
        firings.append(
            Firing(
                rule.id,
                period,
                f"{c.account}:{c.status.name}:{dec_str(c.cap)}:{dec_str(c.budget)}"[:160],
                f"account {c.account}: the {display_name(c.provider)} spend limit and our "
                f"budget differ ({c.status})",
                f"Account {c.account} has a monthly budget of {_usd(c.budget)} here; at "
                f"{display_name(c.provider)} its spend limit is {cap} ({c.note}). Align the "
                "two: raise or set the cap at the provider, or change the budget on the "
                "Budgets & alerts page.",
                {
                    "kind": "spendlimit",
                    "account": c.account,
                    "provider": c.provider,
                    "status": str(c.status),
                    "provider_cap": dec_str(c.cap),
                    "budget": dec_str(c.budget),
                    "threshold_pct": str(pct),
                    "period": period,
                },
            )
        )
    return firings


# One evaluator per kind: (session, rule, its parsed scope, now) -> the firings due.
Evaluator = Callable[[Session, AlertRule, Scope, dt.datetime], list[Firing]]
EVALUATORS: dict[str, Evaluator] = {
    AlertKind.BUDGET: _eval_budget,
    AlertKind.PROJECTED: _eval_projected,
    AlertKind.QUOTA: _eval_quota,
    AlertKind.UNPRICED: _eval_unpriced,
    AlertKind.VARIANCE: _eval_variance,
    AlertKind.SYNC: _eval_sync,
    AlertKind.ANOMALY: _eval_anomaly,
    AlertKind.RATELIMIT: _eval_ratelimit,
    AlertKind.SPEND_LIMIT: _eval_spendlimit,
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


def already_fired(session: Session, firing: Firing) -> bool:
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
        if already_fired(session, firing):
            continue
        event = AlertEvent(
            alert_id=firing.rule_id,
            period=firing.period,
            dedupe_key=firing.dedupe_key,
            fired_at=now,
            message=f"{firing.subject}\n\n{firing.body}",
            payload={"subject": firing.subject, "fields": firing.fields, "deliveries": {}},
            delivery_status=DeliveryStatus.PENDING,
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
            event.delivery_status = DeliveryStatus.SUPERSEDED
            event.last_delivery_error = None
    session.flush()
    return [event for _firing, event in new]
