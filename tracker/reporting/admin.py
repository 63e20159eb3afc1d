"""The Admin page's read model: the audit log."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.models import (
    AuditLog,
)

# --- admin ----------------------------------------------------------------------------------


def recent_audit(*, session: Session, limit: int = 200) -> pd.DataFrame:
    """The latest audit-log entries, newest first (details never hold secrets)."""
    rows = session.execute(
        select(AuditLog.at, AuditLog.actor, AuditLog.action, AuditLog.target, AuditLog.details)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
    ).all()
    return pd.DataFrame(
        [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "target": r.target,
                "details": ""
                if not r.details
                else ", ".join(f"{k}={v}" for k, v in r.details.items()),
            }
            for r in rows
        ],
        columns=["at", "actor", "action", "target", "details"],
    )
