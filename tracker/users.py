"""Users, roles and password checks, with lockout counters kept in the database."""

from __future__ import annotations

import datetime as dt
import functools
import re

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tracker import audit
from tracker.errors import InvalidInput
from tracker.models import ROLES, User, utcnow

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
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
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
