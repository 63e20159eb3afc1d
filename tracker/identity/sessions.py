"""Server-side sign-in sessions: the cookie is an opaque random token, the database decides.

A sign-in creates a `sessions` row holding only the SHA-256 of a random token, and a
one-time hand-off code valid for a minute. The app sends the browser to the sign-in route
with that code; the route redeems it (once), rotates the token and sets it as an HttpOnly
cookie (`tracker.ui.web`). Every script run resolves the token here: a session is over when
it was revoked (sign-out, a password change, a role change or deactivation), when it was
idle longer than the idle limit, or when it is older than the absolute limit. Nothing the
browser holds can outlive that decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tracker.core.config import Settings
from tracker.models import SignInSession, User, utcnow

log = logging.getLogger(__name__)

TOKEN_BYTES = 32
HANDOFF_VALID = dt.timedelta(seconds=60)
# last_seen_at is written at most this often, so a busy page does not write on every click.
TOUCH_EVERY = dt.timedelta(seconds=30)


class Ended(StrEnum):
    """Why a session token no longer signs anyone in (shown to the user, in words)."""

    REVOKED = "revoked"
    IDLE = "idle"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


ENDED_MESSAGES = {
    Ended.REVOKED: "You were signed out. Sign in again.",
    Ended.IDLE: "You were signed out after {idle} minutes without activity. Sign in again.",
    Ended.EXPIRED: "Your sign-in reached its {hours}-hour limit. Sign in again.",
    Ended.UNKNOWN: "Your sign-in is no longer valid. Sign in again.",
}


@dataclass(frozen=True)
class Policy:
    """How long a session lasts: idle limit and absolute limit (settings)."""

    idle: dt.timedelta
    absolute: dt.timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            absolute=dt.timedelta(hours=settings.session_max_hours),
        )

    def message(self, ended: Ended) -> str:
        return ENDED_MESSAGES[ended].format(
            idle=int(self.idle.total_seconds() // 60),
            hours=int(self.absolute.total_seconds() // 3600),
        )


@dataclass(frozen=True)
class SessionUser:
    """Who a valid session signs in, as read from the database at this run."""

    session_id: int
    username: str
    name: str
    role: str


@dataclass(frozen=True)
class Started:
    """A new session: the token for this tab and the one-time code for the cookie route."""

    token: str
    handoff_code: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def start(
    *, session: Session, user: User, method: str, policy: Policy, now: dt.datetime | None = None
) -> Started:
    """Open a session for `user` (already authenticated by password or single sign-on)."""
    now = now or utcnow()
    token, code = new_token(), new_token()
    session.add(
        SignInSession(
            user_id=user.id,
            token_hash=token_hash(token),
            handoff_hash=token_hash(code),
            handoff_expires_at=now + HANDOFF_VALID,
            method=method,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.absolute,
        )
    )
    session.flush()
    return Started(token=token, handoff_code=code)


def redeem_handoff(*, session: Session, code: str, now: dt.datetime | None = None) -> str | None:
    """Trade a hand-off code for a fresh cookie token, once; None if unknown, used or stale.

    One UPDATE claims the code, so two requests with the same code cannot both succeed.
    """
    now = now or utcnow()
    fresh = new_token()
    claimed = session.execute(
        update(SignInSession)
        .where(
            SignInSession.handoff_hash == token_hash(code),
            SignInSession.handoff_expires_at > now,
            SignInSession.revoked_at.is_(None),
        )
        .values(token_hash=token_hash(fresh), handoff_hash=None, handoff_expires_at=None)
        .returning(SignInSession.id)
    ).first()
    return fresh if claimed is not None else None


def resolve(
    *, session: Session, token: str, policy: Policy, now: dt.datetime | None = None
) -> SessionUser | Ended:
    """The user a token signs in, or why it does not; refreshes the idle clock."""
    now = now or utcnow()
    row = session.execute(
        select(SignInSession, User)
        .join(User, User.id == SignInSession.user_id)
        .where(SignInSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return Ended.UNKNOWN
    signed_in, user = row[0], row[1]
    if signed_in.revoked_at is not None or not user.is_active:
        return Ended.REVOKED
    if now >= signed_in.expires_at:
        return Ended.EXPIRED
    if now - signed_in.last_seen_at >= policy.idle:
        _best_effort(session, signed_in, revoked_at=now, revoked_reason=Ended.IDLE.value)
        return Ended.IDLE
    if now - signed_in.last_seen_at >= TOUCH_EVERY:
        _best_effort(session, signed_in, last_seen_at=now)
    return SessionUser(
        session_id=signed_in.id, username=user.username, name=user.name, role=user.role
    )


def _best_effort(session: Session, row: SignInSession, **values: object) -> None:
    """Record a touch or an idle end, unless the database is too busy to take the write.

    The answer does not depend on it: the idle clock is at most TOUCH_EVERY behind, and an
    idle session is refused by its times whether or not the row says so. On SQLite a read
    transaction cannot always become a write one while another writer commits; a savepoint
    keeps that from failing the page.
    """
    try:
        with session.begin_nested():
            session.execute(
                update(SignInSession).where(SignInSession.id == row.id).values(**values)
            )
    except OperationalError:
        log.info("session %s: not touched (database busy)", row.id)


def revoke(*, session: Session, token: str, reason: str, now: dt.datetime | None = None) -> bool:
    """End the session of one token (sign-out); True if it was open."""
    result = session.execute(
        update(SignInSession)
        .where(SignInSession.token_hash == token_hash(token), SignInSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason)
        .returning(SignInSession.id)
    ).first()
    return result is not None


def revoke_user(
    *,
    session: Session,
    user_id: int,
    reason: str,
    keep_session_id: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """End every open session of a user (all but `keep_session_id`); return how many."""
    statement = update(SignInSession).where(
        SignInSession.user_id == user_id, SignInSession.revoked_at.is_(None)
    )
    if keep_session_id is not None:
        statement = statement.where(SignInSession.id != keep_session_id)
    ended = session.execute(
        statement.values(revoked_at=now or utcnow(), revoked_reason=reason).returning(
            SignInSession.id
        )
    ).all()
    return len(ended)


# Ended sessions are kept this long (who was signed in when), then deleted.
KEEP_ENDED = dt.timedelta(days=30)


def prune(*, session: Session, now: dt.datetime | None = None) -> int:
    """Delete sessions that ended (expired or revoked) more than KEEP_ENDED ago."""
    cutoff = (now or utcnow()) - KEEP_ENDED
    result = session.execute(
        delete(SignInSession).where(
            (SignInSession.expires_at < cutoff) | (SignInSession.revoked_at < cutoff)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
