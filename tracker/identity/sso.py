"""Single sign-on: which identity from the OpenID Connect provider becomes which user and role.

The provider vouches for an email (and, if configured, a list of groups). Only these get in:
- an existing active user with that email (their role is kept, unless a mapping says otherwise);
- an email with an open invitation (the invitation is used up and gives the role);
- an email or a group listed in `sso_role_mappings` (editable by admins on the Admin page).
An email mapping beats group mappings; among groups the most privileged role wins.
Everyone else is refused with one message that does not say why.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import bcrypt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tracker.core import audit
from tracker.core.errors import InvalidInput, NotFound, PermissionDenied
from tracker.identity import users
from tracker.identity.links import Purpose
from tracker.models import Role, SsoRoleMapping, User, UserToken, utcnow

CLAIMS = ("email", "group")
# Most privileged first: the order in which group mappings win.
PRIVILEGE = (Role.ADMIN, Role.FINANCE, Role.VIEWER)
REFUSED = "your single-sign-on identity has no access here; ask an admin to invite or map you"


@dataclass(frozen=True)
class MappingView:
    id: int
    claim: str
    value: str
    role: str
    created_by: str | None


def add_mapping(*, session: Session, claim: str, value: str, role: str, actor: str) -> None:
    if claim not in CLAIMS:
        raise InvalidInput(f"map an email or a group, not {claim!r}")
    if role not in tuple(Role):
        raise InvalidInput(f"unknown role {role!r}; choose one of {', '.join(Role)}")
    value = users.normalise_email(value) if claim == "email" else value.strip()
    if not value or len(value) > 254:
        raise InvalidInput("give the group's name as the identity provider sends it")
    if session.scalar(
        select(SsoRoleMapping.id).where(
            SsoRoleMapping.claim == claim, SsoRoleMapping.value == value
        )
    ):
        raise InvalidInput(f"the {claim} {value!r} is already mapped; remove it first")
    session.add(SsoRoleMapping(claim=claim, value=value, role=role, created_by=actor))
    session.flush()
    audit.record(
        session=session, actor=actor, action="sso.map", target=f"{claim}:{value}", role=role
    )


def remove_mapping(*, session: Session, mapping_id: int, actor: str) -> None:
    row = session.get(SsoRoleMapping, mapping_id)
    if row is None:
        raise NotFound("that mapping does not exist any more")
    session.delete(row)
    session.flush()
    audit.record(
        session=session, actor=actor, action="sso.unmap", target=f"{row.claim}:{row.value}"
    )


def list_mappings(*, session: Session) -> list[MappingView]:
    rows = session.scalars(
        select(SsoRoleMapping).order_by(SsoRoleMapping.claim, SsoRoleMapping.value)
    )
    return [MappingView(r.id, r.claim, r.value, r.role, r.created_by) for r in rows]


def _mapped_role(session: Session, email: str, groups: Iterable[str]) -> str | None:
    by_email = session.scalar(
        select(SsoRoleMapping.role).where(
            SsoRoleMapping.claim == "email", SsoRoleMapping.value == email
        )
    )
    if by_email is not None:
        return by_email
    names = [g for g in groups if isinstance(g, str) and g]
    if not names:
        return None
    roles = set(
        session.scalars(
            select(SsoRoleMapping.role).where(
                SsoRoleMapping.claim == "group", SsoRoleMapping.value.in_(names)
            )
        )
    )
    return next((r.value for r in PRIVILEGE if r.value in roles), None)


def _free_username(session: Session, email: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "-", email.split("@")[0])[:56] or "user"
    base = base if len(base) >= 2 else f"{base}-sso"
    candidate, n = base, 1
    while users.get_user(session=session, username=candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def sign_in(
    *,
    session: Session,
    email: str | None,
    email_verified: bool,
    name: str | None,
    groups: Iterable[str],
    subject: str | None = None,
) -> User:
    """The user an identity provider's vouched-for identity signs in as; refuse anyone else.

    `subject` is the provider's stable id of the identity ("issuer|sub"). The first sign-on
    links it to the user; after that only it signs that user in, so another identity that
    comes to claim the same email (renamed, recycled or not checked by the provider) cannot.
    """
    linked = session.scalar(select(User).where(User.sso_subject == subject)) if subject else None
    if linked is not None:
        if not linked.is_active:
            raise PermissionDenied(REFUSED)
        return linked
    if not email or not email_verified:
        raise PermissionDenied(REFUSED)
    try:
        email = users.normalise_email(email)
    except InvalidInput:
        raise PermissionDenied(REFUSED) from None
    mapped = _mapped_role(session, email, groups)
    user = session.scalar(select(User).where(User.email == email))
    if user is not None:
        if not user.is_active or (user.sso_subject and user.sso_subject != subject):
            raise PermissionDenied(REFUSED)
        if subject and user.sso_subject is None:
            user.sso_subject = subject
            audit.record(session=session, actor="sso", action="user.sso_link", target=user.username)
        if mapped is not None and mapped != user.role:
            users.update_user(session=session, username=user.username, actor="sso", role=mapped)
        return user
    invitation = session.execute(
        update(UserToken)
        .where(
            UserToken.purpose == Purpose.INVITE.value,
            UserToken.email == email,
            UserToken.used_at.is_(None),
            UserToken.expires_at > utcnow(),
        )
        .values(used_at=utcnow())
        .returning(UserToken.role)
    ).scalar()
    role = mapped or invitation
    if role is None:
        raise PermissionDenied(REFUSED)
    username = _free_username(session, email)
    # No local password: a random, unguessable hash nobody knows (a reset link can set one).
    unusable = bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt()).decode()
    user = User(
        username=username,
        email=email,
        name=(name or username).strip()[:128],
        password_hash=unusable,
        role=role,
        is_active=True,
        failed_login_count=0,
        sso_subject=subject,
    )
    session.add(user)
    session.flush()
    audit.record(session=session, actor="sso", action="user.add", target=username, role=role)
    return user
