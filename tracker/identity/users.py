"""Users, roles and password checks, with lockout counters kept in the database."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import bcrypt
from sqlalchemy import Engine, and_, case, func, or_, select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound, PermissionDenied
from tracker.identity import sessions
from tracker.models import Role, User, utcnow

MIN_PASSWORD_CHARS = 12
# bcrypt only reads 72 bytes, and bcrypt 5 refuses longer input instead of truncating it.
MAX_PASSWORD_BYTES = 72
# zxcvbn scores 0-4; 3 is "safely unguessable" against an online attack and slows an offline one.
MIN_PASSWORD_SCORE = 3
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PASSWORD_RULE = (
    f"at least {MIN_PASSWORD_CHARS} characters, not common or guessable; a few unrelated "
    "words work well"
)


def validate_password(password: str, *, personal: Sequence[str] = ()) -> None:
    """Refuse short, over-long, common and guessable passwords (zxcvbn's estimate).

    `personal` holds the username, email and name, which a password must not lean on.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise InvalidInput(f"the password must be at most {MAX_PASSWORD_BYTES} bytes long")
    strength = zxcvbn(password, user_inputs=[p for p in personal if p])
    if strength["score"] < MIN_PASSWORD_SCORE:
        warning = strength["feedback"].get("warning") or "it is easy to guess"
        raise InvalidInput(
            f"the password is too easy to guess ({warning.rstrip('.')}); use a longer "
            "password, for example a few unrelated words"
        )


def hash_password(password: str, *, personal: Sequence[str] = ()) -> str:
    validate_password(password, personal=personal)
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
        password_hash=hash_password(password, personal=(username, email, name or "")),
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
    """Verify a sign-in and count failures atomically; return the user or None.

    Unknown, inactive, locked and wrong-password answers are all None and cost the same:
    one read, one bcrypt check (against a dummy hash when there is no user) and one UPDATE.
    The counter moves in a single `UPDATE ... RETURNING`, so parallel guesses each count:
    the fifth failure locks the account for 15 minutes, a right password is refused while
    the lock holds, and failures during a lock do not extend it (nobody can keep another
    person locked out by guessing on).

    The user is read, and the password checked, outside the caller's transaction, so the
    slow bcrypt check holds no lock; the UPDATE is then the transaction's first statement
    (on SQLite a transaction that read first could not become a writer while another one
    commits: "database is locked").
    """
    now = now or utcnow()
    found = _login_row(session, username)
    known = found is not None and found.is_active
    encoded = password.encode()
    stored = found.password_hash.encode() if known and found is not None else _dummy_hash()
    ok = bcrypt.checkpw(encoded if len(encoded) <= MAX_PASSWORD_BYTES else b"", stored)
    target = found.id if known and found is not None else -1  # -1: an UPDATE matching nothing
    if ok and known:
        signed_in = session.execute(
            update(User)
            .where(User.id == target, or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(failed_login_count=0, locked_until=None, last_login_at=now)
            .returning(User.id)
            .execution_options(synchronize_session=False)
        ).first()
        return session.get(User, target, populate_existing=True) if signed_in else None
    locked_now = and_(User.locked_until.is_not(None), User.locked_until > now)
    lock_over = and_(User.locked_until.is_not(None), User.locked_until <= now)
    # A lock that has run out starts a fresh count, so one more slip does not re-lock.
    failures = case((lock_over, 1), else_=User.failed_login_count + 1)
    counted = session.execute(
        update(User)
        .where(User.id == target)
        .values(
            failed_login_count=failures,
            locked_until=case(
                (locked_now, User.locked_until),
                (failures >= MAX_FAILED_LOGINS, now + LOCKOUT),
                (lock_over, None),
                else_=User.locked_until,
            ),
        )
        .returning(User.failed_login_count, User.username)
        .execution_options(synchronize_session=False)
    ).first()
    if counted is not None and counted.failed_login_count == MAX_FAILED_LOGINS:
        audit.record(session=session, actor="system", action="user.locked", target=counted.username)
    return None


@dataclass(frozen=True)
class _LoginRow:
    id: int
    password_hash: str
    is_active: bool


def _login_row(session: Session, username: str) -> _LoginRow | None:
    """The user's id, hash and active flag, read on a connection of its own when the session
    is bound to an engine (the app), else in the session (tests bound to a connection)."""
    query = select(User.id, User.password_hash, User.is_active).where(
        func.lower(User.username) == username.lower()
    )
    bind = session.get_bind()
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            row = connection.execute(query).first()
    else:
        row = session.execute(query).first()
    return _LoginRow(row.id, row.password_hash, row.is_active) if row is not None else None


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
    if "role" in changed or changed.get("active") is False:
        # A new role or a deactivation takes effect now, not at the session's end.
        changed["sessions_ended"] = sessions.revoke_user(
            session=session, user_id=user.id, reason="role or status changed"
        )
    if changed:
        audit.record(
            session=session, actor=actor, action="user.update", target=user.username, **changed
        )
    return user


def set_password(
    *, session: Session, user: User, password: str, actor: str, keep_session_id: int | None
) -> None:
    """Give `user` a new password and end their other sessions (all, for a reset)."""
    user.password_hash = hash_password(password, personal=(user.username, user.email, user.name))
    user.failed_login_count = 0
    user.locked_until = None
    ended = sessions.revoke_user(
        session=session,
        user_id=user.id,
        reason="password changed",
        keep_session_id=keep_session_id,
    )
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="user.password",
        target=user.username,
        sessions_ended=ended,
    )


def change_own_password(
    *, session: Session, username: str, current: str, new: str, session_id: int
) -> None:
    """A signed-in user changes their password; the current one must be right."""
    user = get_user(session=session, username=username)
    if user is None or not user.is_active:
        raise PermissionDenied("you are signed out; sign in again")
    if not bcrypt.checkpw(current.encode()[:MAX_PASSWORD_BYTES], user.password_hash.encode()):
        raise InvalidInput("the current password is wrong")
    if new == current:
        raise InvalidInput("the new password is the same as the current one")
    set_password(
        session=session, user=user, password=new, actor=username, keep_session_id=session_id
    )
