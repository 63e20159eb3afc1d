"""Users, roles and password checks, with lockout counters kept in the database."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.db import advisory_lock
from tracker.core.errors import InvalidInput, NotFound, PermissionDenied
from tracker.models import PreauthorizedEmail, Role, User, utcnow

MIN_PASSWORD_CHARS = 8
# bcrypt only reads 72 bytes, and bcrypt 5 refuses longer input instead of truncating it.
MAX_PASSWORD_BYTES = 72
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"the password must be at most {MAX_PASSWORD_BYTES} bytes long")


def hash_password(password: str) -> str:
    validate_password(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise InvalidInput(f"{email!r} is not a valid email address")
    return email


def add_user(
    *,
    session: Session,
    username: str,
    email: str,
    role: str,
    password: str,
    name: str | None = None,
    actor: str = "cli",
) -> User:
    """Create a user; refuse duplicates, unknown roles and weak passwords."""
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "the username must be 2-64 characters of letters, digits, '.', '_' or '-'"
        )
    if role not in tuple(Role):
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    email = normalise_email(email)
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        raise InvalidInput(f"a user named {username!r} already exists")
    if session.scalar(select(User.id).where(User.email == email)):
        raise InvalidInput(f"a user with email {email!r} already exists")
    user = User(
        username=username,
        email=email,
        name=(name or username).strip(),
        password_hash=hash_password(password),
        role=role,
        is_active=True,
        failed_login_count=0,
    )
    session.add(user)
    session.flush()
    audit.record(session=session, actor=actor, action="user.add", target=username, role=role)
    return user


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def get_user(*, session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.username) == username.lower()))


def check_login(
    *, session: Session, username: str, password: str, now: dt.datetime | None = None
) -> User | None:
    """Verify a login and update the failure counter; return the user or None.

    A locked or unknown user gets None just like a wrong password, so a caller cannot tell
    which usernames exist. Five failures lock the account for 15 minutes.
    """
    now = now or utcnow()
    user = get_user(session=session, username=username)
    if user is None or not user.is_active:
        # Spend the same time as a real check so timing does not reveal the username.
        bcrypt.checkpw(b"not-a-password", _dummy_hash())
        return None
    if user.locked_until is not None and user.locked_until > now:
        return None
    encoded = password.encode()
    ok = len(encoded) <= MAX_PASSWORD_BYTES and bcrypt.checkpw(encoded, user.password_hash.encode())
    if ok:
        user.failed_login_count = 0
        user.locked_until = None
        user.last_login_at = now
        return user
    user.failed_login_count += 1
    if user.failed_login_count >= MAX_FAILED_LOGINS:
        user.locked_until = now + LOCKOUT
        user.failed_login_count = 0
        audit.record(session=session, actor="system", action="user.locked", target=user.username)
    return None


@functools.cache
def _dummy_hash() -> bytes:
    return bcrypt.hashpw(b"dummy-password", bcrypt.gensalt())


# --- registration and user administration (the app's login page and Admin page) ---------


@dataclass(frozen=True)
class UserView:
    """What the Admin page may show of a user: never the password hash."""

    username: str
    email: str
    name: str
    role: str
    is_active: bool
    locked_until: dt.datetime | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime


def list_users(*, session: Session) -> list[UserView]:
    """Every user, by username, without password hashes."""
    return [
        UserView(
            username=u.username,
            email=u.email,
            name=u.name,
            role=u.role,
            is_active=u.is_active,
            locked_until=u.locked_until,
            last_login_at=u.last_login_at,
            created_at=u.created_at,
        )
        for u in session.scalars(select(User).order_by(User.username))
    ]


def register_first_admin(
    *, session: Session, username: str, email: str, password: str, name: str | None = None
) -> User:
    """Create the first user as admin; refuse once any user exists.

    On PostgreSQL a transaction-scoped advisory lock makes two simultaneous first
    registrations queue, so the second sees the first user and is refused.
    """
    with advisory_lock(session, "register-first-admin", 0) as taken:
        if not taken or count_users(session=session) > 0:
            raise PermissionDenied(
                "registration is closed: an admin must add you or pre-authorise your email"
            )
        return add_user(
            session=session,
            username=username,
            email=email,
            role="admin",
            password=password,
            name=name,
            actor=username.strip(),
        )


def preauthorize_email(
    *, session: Session, email: str, role: str, actor: str
) -> PreauthorizedEmail:
    """Allow an email address to register once, with the given role."""
    if role not in tuple(Role):
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    email = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == email)):
        raise InvalidInput(f"a user with email {email!r} already exists")
    if session.scalar(select(PreauthorizedEmail.id).where(PreauthorizedEmail.email == email)):
        raise InvalidInput(f"{email!r} is already pre-authorised")
    entry = PreauthorizedEmail(email=email, role=role, created_by=actor)
    session.add(entry)
    session.flush()
    audit.record(session=session, actor=actor, action="preauth.add", target=email, role=role)
    return entry


def list_preauthorized(*, session: Session) -> list[PreauthorizedEmail]:
    return list(session.scalars(select(PreauthorizedEmail).order_by(PreauthorizedEmail.email)))


def has_open_invitations(*, session: Session) -> bool:
    """Whether any pre-authorised email has not registered yet."""
    return bool(
        session.scalar(
            select(PreauthorizedEmail.id).where(PreauthorizedEmail.used_at.is_(None)).limit(1)
        )
    )


def remove_preauthorized(*, session: Session, email: str, actor: str) -> None:
    email = normalise_email(email)
    entry = session.scalar(select(PreauthorizedEmail).where(PreauthorizedEmail.email == email))
    if entry is None:
        raise NotFound(f"{email!r} is not pre-authorised")
    session.delete(entry)
    session.flush()
    audit.record(session=session, actor=actor, action="preauth.remove", target=email)


def register_invited(
    *, session: Session, username: str, email: str, password: str, name: str | None = None
) -> User:
    """Register a user whose email an admin pre-authorised; the role comes from the invitation.

    The refusal does not say whether the email was invited, used, or never seen.
    """
    email = normalise_email(email)
    entry = session.scalar(
        select(PreauthorizedEmail).where(
            PreauthorizedEmail.email == email, PreauthorizedEmail.used_at.is_(None)
        )
    )
    if entry is None:
        raise PermissionDenied("this email may not register; ask an admin to pre-authorise it")
    user = add_user(
        session=session,
        username=username,
        email=email,
        role=entry.role,
        password=password,
        name=name,
        actor=username.strip(),
    )
    entry.used_at = utcnow()
    return user


def _active_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.is_active.is_(True))
        )
        or 0
    )


def update_user(
    *,
    session: Session,
    username: str,
    actor: str,
    role: str | None = None,
    is_active: bool | None = None,
    unlock: bool = False,
) -> User:
    """Change a user's role or active flag, or lift a lockout; keep at least one admin."""
    user = get_user(session=session, username=username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    changed: dict[str, object] = {}
    if role is not None and role != user.role:
        if role not in tuple(Role):
            raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}")
        if user.role == "admin" and user.is_active and _active_admins(session) <= 1:
            raise InvalidInput("this is the last active admin; make another user admin first")
        user.role = role
        changed["role"] = role
    if is_active is not None and is_active != user.is_active:
        if not is_active and user.role == "admin" and _active_admins(session) <= 1:
            raise InvalidInput("this is the last active admin; make another user admin first")
        user.is_active = is_active
        changed["active"] = is_active
    if unlock and (user.locked_until is not None or user.failed_login_count):
        user.locked_until = None
        user.failed_login_count = 0
        changed["unlocked"] = True
    session.flush()
    if changed:
        audit.record(
            session=session, actor=actor, action="user.update", target=user.username, **changed
        )
    return user
