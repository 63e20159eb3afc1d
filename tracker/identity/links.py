"""Single-use, expiring links: first-admin setup, invitations and password resets.

A link is `PUBLIC_URL/?<purpose>=<token>`. Only the token's SHA-256 is stored. Redeeming
claims the row with one `UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING`,
so a link works once even when opened twice at the same moment. Nothing here tells a
stranger whether an email was invited: an invitation is used only through its link.

The first admin comes only from a setup link (printed by the server at start while no user
exists, and by `python -m tracker users setup-link`) or from `python -m tracker users add`;
there is no open registration in any environment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound, PermissionDenied
from tracker.identity import sessions, users
from tracker.models import Role, User, UserToken, utcnow

SETUP_VALID = dt.timedelta(hours=24)
EXPIRED_OR_USED = "this link has expired or was already used; ask an admin for a new one"


class Purpose(StrEnum):
    SETUP = "setup"
    INVITE = "invite"
    RESET = "reset"


@dataclass(frozen=True)
class LinkView:
    """What a valid link may tell the person holding it (never the hash)."""

    purpose: str
    email: str | None
    role: str | None
    username: str | None
    expires_at: dt.datetime


@dataclass(frozen=True)
class InvitationView:
    id: int
    email: str
    role: str
    created_by: str | None
    created_at: dt.datetime
    expires_at: dt.datetime


def url(public_url: str, purpose: Purpose, token: str) -> str:
    return f"{public_url.rstrip('/')}/?{purpose.value}={token}"


def _issue(
    session: Session,
    purpose: Purpose,
    *,
    valid: dt.timedelta,
    email: str | None = None,
    role: str | None = None,
    user_id: int | None = None,
    actor: str | None = None,
) -> str:
    token = sessions.new_token()
    now = utcnow()
    session.add(
        UserToken(
            purpose=purpose.value,
            token_hash=sessions.token_hash(token),
            email=email,
            role=role,
            user_id=user_id,
            created_by=actor,
            created_at=now,
            expires_at=now + valid,
        )
    )
    session.flush()
    return token


def _open(purpose: Purpose) -> Select[UserToken]:
    return select(UserToken).where(UserToken.purpose == purpose.value, UserToken.used_at.is_(None))


def issue_setup(*, session: Session) -> str:
    """A new first-admin link (earlier ones stop working); refused once any user exists."""
    if users.count_users(session=session) > 0:
        raise PermissionDenied("an admin already exists; sign in, or ask an admin to invite you")
    session.execute(delete(UserToken).where(UserToken.purpose == Purpose.SETUP.value))
    return _issue(session, Purpose.SETUP, valid=SETUP_VALID)


def issue_invitation(
    *, session: Session, email: str, role: str, actor: str, valid: dt.timedelta
) -> str:
    """Invite an email with a role; a new invitation replaces an open one for that email."""
    if role not in tuple(Role):
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    email = users.normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)):
        raise InvalidInput(f"a user with email {email!r} already exists")
    session.execute(
        delete(UserToken).where(
            UserToken.purpose == Purpose.INVITE.value,
            UserToken.email == email,
            UserToken.used_at.is_(None),
        )
    )
    token = _issue(session, Purpose.INVITE, valid=valid, email=email, role=role, actor=actor)
    audit.record(session=session, actor=actor, action="user.invite", target=email, role=role)
    return token


def issue_reset(*, session: Session, username: str, actor: str, valid: dt.timedelta) -> str:
    """A one-time password-reset link for a user (earlier open ones stop working)."""
    user = users.get_user(session=session, username=username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    if not user.is_active:
        raise InvalidInput(f"{user.username} is deactivated; activate them first")
    session.execute(
        delete(UserToken).where(
            UserToken.purpose == Purpose.RESET.value,
            UserToken.user_id == user.id,
            UserToken.used_at.is_(None),
        )
    )
    token = _issue(session, Purpose.RESET, valid=valid, user_id=user.id, actor=actor)
    audit.record(session=session, actor=actor, action="user.reset_link", target=user.username)
    return token


def inspect(*, session: Session, purpose: Purpose, token: str) -> LinkView | None:
    """What a link is for, if it is still valid; None otherwise (no reason given)."""
    row = session.scalar(
        _open(purpose).where(
            UserToken.token_hash == sessions.token_hash(token), UserToken.expires_at > utcnow()
        )
    )
    if row is None:
        return None
    user = session.get(User, row.user_id) if row.user_id is not None else None
    return LinkView(
        purpose=row.purpose,
        email=row.email,
        role=row.role,
        username=user.username if user is not None else None,
        expires_at=row.expires_at,
    )


def _claim(session: Session, purpose: Purpose, token: str) -> UserToken:
    """Mark a link used, atomically; raise if it is unknown, used or expired."""
    now = utcnow()
    claimed = session.execute(
        update(UserToken)
        .where(
            UserToken.purpose == purpose.value,
            UserToken.token_hash == sessions.token_hash(token),
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(UserToken.id)
    ).scalar()
    if claimed is None:
        raise PermissionDenied(EXPIRED_OR_USED)
    row = session.get(UserToken, claimed)
    assert row is not None
    return row


def redeem_setup(
    *, session: Session, token: str, username: str, email: str, password: str, name: str | None
) -> User:
    """Create the first admin through a setup link."""
    _claim(session, Purpose.SETUP, token)
    if users.count_users(session=session) > 0:
        raise PermissionDenied("an admin already exists; sign in instead")
    return users.add_user(
        session=session,
        username=username,
        email=email,
        role=Role.ADMIN,
        password=password,
        name=name,
        actor=username.strip(),
    )


def redeem_invitation(
    *, session: Session, token: str, username: str, password: str, name: str | None
) -> User:
    """Create the invited user with the invitation's email and role."""
    row = _claim(session, Purpose.INVITE, token)
    assert row.email is not None and row.role is not None
    return users.add_user(
        session=session,
        username=username,
        email=row.email,
        role=row.role,
        password=password,
        name=name,
        actor=username.strip(),
    )


def redeem_reset(*, session: Session, token: str, password: str) -> User:
    """Set a new password through a reset link; every session of the user ends."""
    row = _claim(session, Purpose.RESET, token)
    user = session.get(User, row.user_id) if row.user_id is not None else None
    if user is None or not user.is_active:
        raise PermissionDenied(EXPIRED_OR_USED)
    users.set_password(
        session=session, user=user, password=password, actor=user.username, keep_session_id=None
    )
    return user


def open_invitations(*, session: Session) -> list[InvitationView]:
    rows = session.scalars(
        _open(Purpose.INVITE)
        .where(UserToken.expires_at > utcnow())
        .order_by(UserToken.created_at.desc())
    )
    return [
        InvitationView(
            id=r.id,
            email=r.email or "",
            role=r.role or "",
            created_by=r.created_by,
            created_at=r.created_at,
            expires_at=r.expires_at,
        )
        for r in rows
    ]


def withdraw_invitation(*, session: Session, invitation_id: int, actor: str) -> str:
    row = session.get(UserToken, invitation_id)
    if row is None or row.purpose != Purpose.INVITE.value or row.used_at is not None:
        raise NotFound("that invitation is not open any more")
    email = row.email or ""
    session.delete(row)
    session.flush()
    audit.record(session=session, actor=actor, action="user.invite_withdrawn", target=email)
    return email


def prune(*, session: Session, now: dt.datetime | None = None) -> int:
    """Delete links used or expired more than 30 days ago (the audit log keeps the record)."""
    cutoff = (now or utcnow()) - dt.timedelta(days=30)
    result = session.execute(
        delete(UserToken).where((UserToken.expires_at < cutoff) | (UserToken.used_at < cutoff))
    )
    return int(getattr(result, "rowcount", 0) or 0)
