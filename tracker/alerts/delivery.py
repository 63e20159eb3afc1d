"""Deliver recorded alert events to their channels; a failed channel is retried next check.

The event is committed before anything is sent; delivery then runs per event and per
channel, and a channel that succeeded is not sent again. `run_check` is the whole check:
evaluate, record, deliver.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import requests
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tracker.alerts.evaluate import already_fired, evaluate, record_firings
from tracker.alerts.notify import Channel, DeliveryError, Notification, deliver, open_channel
from tracker.alerts.rules import DeliveryStatus
from tracker.core.config import Settings
from tracker.core.crypto import CredentialCipher
from tracker.core.errors import InvalidInput
from tracker.models import (
    AlertEvent,
    AlertRule,
    utcnow,
)

log = logging.getLogger(__name__)

# Events still to send: new ones, and those a channel failed (retried at every check).
UNDELIVERED = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


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
    *,
    session: Session,
    event_id: int,
    settings: Settings,
    http: requests.Session,
    cipher: CredentialCipher | None = None,
) -> str | None:
    """Send one pending or failed event to the channels it has not reached; record the outcome.

    The event is claimed with a conditional UPDATE first, so two checkers never send the same
    attempt. Returns the new delivery status, or None when another checker holds it.
    """
    event = session.get(AlertEvent, event_id)
    if event is None or event.delivery_status not in UNDELIVERED:
        return None
    seen = event.delivery_attempts
    claimed = session.execute(
        update(AlertEvent)
        .where(
            AlertEvent.id == event_id,
            AlertEvent.delivery_attempts == seen,
            AlertEvent.delivery_status.in_(UNDELIVERED),
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
            channel: Channel = open_channel(raw, cipher)
        except InvalidInput as exc:
            errors.append(str(exc))
            continue
        if deliveries.get(channel.key, {}).get("status") == "sent":
            continue  # reached on an earlier attempt: never send twice
        try:
            deliver(channel, note, settings=settings, http=http)
        except DeliveryError as exc:
            errors.append(str(exc))
            deliveries[channel.key] = {
                "status": "failed",
                "channel": channel.masked,
                "error": str(exc)[:500],
            }
            log.warning("alert event %s: %s", event.id, exc)
        else:
            deliveries[channel.key] = {
                "status": "sent",
                "channel": channel.masked,
                "at": utcnow().isoformat(),
            }
    payload["deliveries"] = deliveries
    event.payload = payload  # a new dict, so the JSON column is written
    if errors:
        event.delivery_status = DeliveryStatus.FAILED
        event.last_delivery_error = "; ".join(errors)[:2000]
    else:
        event.delivery_status = DeliveryStatus.DELIVERED
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
    cipher: CredentialCipher | None = None,
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
                if not already_fired(session, firing):
                    report.fired.append(firing.subject)
            report.pending_retries = undelivered_count(session=session)
        return report
    with session_factory.begin() as session:
        events = record_firings(
            session=session, firings=evaluate(session=session, now=now), now=now
        )
        report.fired = [
            (e.payload or {}).get("subject", e.dedupe_key)
            for e in events
            if e.delivery_status != DeliveryStatus.SUPERSEDED
        ]
    with session_factory() as session:
        pending = list(
            session.scalars(
                select(AlertEvent.id)
                .where(AlertEvent.delivery_status.in_(UNDELIVERED))
                .order_by(AlertEvent.id)
            )
        )
    for event_id in pending:
        with session_factory.begin() as session:
            status = deliver_event(
                session=session, event_id=event_id, settings=settings, http=http, cipher=cipher
            )
        if status == DeliveryStatus.DELIVERED:
            report.delivered += 1
        elif status == DeliveryStatus.FAILED:
            report.failed += 1
    return report


def undelivered_count(*, session: Session) -> int:
    """How many events still wait for (re)delivery; shown in the app."""
    return int(
        session.scalar(select(func.count()).where(AlertEvent.delivery_status.in_(UNDELIVERED))) or 0
    )
