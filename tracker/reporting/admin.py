"""The Admin page's read model: users, open invitations, single-sign-on mappings, price
overrides, the audit log.

Nothing here holds a secret: password hashes are never selected.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.core.units import dec_str
from tracker.costs.overrides import list_overrides
from tracker.identity.links import open_invitations
from tracker.identity.sso import list_mappings
from tracker.identity.users import list_users
from tracker.models import AuditLog

USER_COLUMNS = ["username", "name", "email", "role", "active", "locked_until", "last_login_at"]
INVITATION_COLUMNS = ["id", "email", "role", "created_by", "created_at", "expires_at"]
MAPPING_COLUMNS = ["id", "claim", "value", "role", "created_by"]


def users_frame(*, session: Session) -> pd.DataFrame:
    """Every dashboard user with role, active flag, lockout and last sign-in."""
    return pd.DataFrame(
        [
            (u.username, u.name, u.email, u.role, u.is_active, u.locked_until, u.last_login_at)
            for u in list_users(session=session)
        ],
        columns=USER_COLUMNS,
    )


def invitations_frame(*, session: Session) -> pd.DataFrame:
    """Invitations not used yet and not expired: who invited whom, as what, until when."""
    return pd.DataFrame(
        [
            (i.id, i.email, i.role, i.created_by, i.created_at, i.expires_at)
            for i in open_invitations(session=session)
        ],
        columns=INVITATION_COLUMNS,
    )


def sso_mappings_frame(*, session: Session) -> pd.DataFrame:
    """Which single-sign-on email or group gets which role."""
    return pd.DataFrame(
        [(m.id, m.claim, m.value, m.role, m.created_by) for m in list_mappings(session=session)],
        columns=MAPPING_COLUMNS,
    )


def overrides_frame(*, session: Session) -> pd.DataFrame:
    """The organisation's price overrides, one row each (who created them is in the audit log)."""
    views = list_overrides(session=session)
    if not views:
        return pd.DataFrame()
    rows = [
        {
            **o.__dict__,
            # Prices of the other kinds as one line of text ("input_audio 40, ...").
            "extra_prices": ", ".join(f"{k} {dec_str(v)}" for k, v in o.extra_prices.items()),
        }
        for o in views
    ]
    return pd.DataFrame(rows).drop(columns=["created_by"])


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
