"""The sign-in tables: server-side sessions, single-use links and single-sign-on role mappings;
and what belongs to one user: their saved views.

Read and written only by `tracker.identity`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tracker.models.base import ID, Base, utcnow


class SignInSession(Base):
    """A signed-in browser. The cookie holds a random token; this row holds only its SHA-256,
    and the one-time hand-off code that turns a sign-in into that cookie (`identity.sessions`)."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    handoff_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    handoff_expires_at: Mapped[dt.datetime | None]
    method: Mapped[str] = mapped_column(String(16))  # password or sso
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))


class UserToken(Base):
    """A single-use, expiring link: first-admin setup, an invitation or a password reset.

    Only the token's SHA-256 is stored; the link is shown once (and mailed, for invitations)."""

    __tablename__ = "user_tokens"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str | None] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]

    __table_args__ = (CheckConstraint("purpose IN ('setup', 'invite', 'reset')", name="purpose"),)


class SsoRoleMapping(Base):
    """Which role a single-sign-on identity gets: by its exact email or by one of its groups."""

    __tablename__ = "sso_role_mappings"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    claim: Mapped[str] = mapped_column(String(16))  # email or group
    value: Mapped[str] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("claim", "value"),)


class SavedView(Base):
    """A user's named view of a page: the page's address and its query parameters (filters,
    grouping, scope), as `identity.saved_views` checked them. Only its owner sees it."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    page: Mapped[str] = mapped_column(String(32))  # the page's url path: usage, exports, ...
    query: Mapped[dict[str, Any]]  # parameter -> list of values
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    # Listed by user (the key's first column); one name once per user.
    __table_args__ = (UniqueConstraint("user_id", "name"),)
