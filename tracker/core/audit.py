"""The audit log: who changed what. Details must never hold a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tracker.models import AuditLog


def record(
    *, session: Session, actor: str, action: str, target: str | None = None, **details: Any
) -> None:
    """Add an audit entry to the caller's transaction."""
    session.add(AuditLog(actor=actor, action=action, target=target, details=details or None))
