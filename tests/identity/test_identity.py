"""Sessions, the lockout counter, single-use links and single-sign-on mapping, on both backends."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tracker.core.errors import InvalidInput, PermissionDenied
from tracker.identity import links, sessions, sso, users
from tracker.models import SignInSession, User, utcnow

PASSWORD = "quarterly ledger tangerine"
POLICY = sessions.Policy(idle=dt.timedelta(minutes=60), absolute=dt.timedelta(hours=12))


def add(session: Session, username: str, role: str = "viewer") -> User:
    return users.add_user(
        session=session,
        username=username,
        email=f"{username}@example.com",
        role=role,
        password=PASSWORD,
    )


def test_a_session_token_is_stored_hashed_and_ends_idle_expired_or_revoked(
    session: Session,
) -> None:
    user = add(session, "ana")
    now = utcnow()
    started = sessions.start(session=session, user=user, method="password", policy=POLICY, now=now)
    row = session.scalars(select(SignInSession)).one()
    assert started.token not in (row.token_hash, row.handoff_hash)
    found = sessions.resolve(session=session, token=started.token, policy=POLICY, now=now)
    assert isinstance(found, sessions.SessionUser) and found.username == "ana"
    later = now + dt.timedelta(minutes=59)
    assert isinstance(
        sessions.resolve(session=session, token=started.token, policy=POLICY, now=later),
        sessions.SessionUser,
    )
    # Each click moves the idle clock: 59 minutes after the last one is still fine.
    assert isinstance(
        sessions.resolve(
            session=session,
            token=started.token,
            policy=POLICY,
            now=later + dt.timedelta(minutes=59),
        ),
        sessions.SessionUser,
    )
    assert (
        sessions.resolve(
            session=session,
            token=started.token,
            policy=POLICY,
            now=later + dt.timedelta(minutes=59 + 61),
        )
        is sessions.Ended.IDLE
    )
    # Revoked stays revoked, even when the clock would allow it again.
    assert (
        sessions.resolve(session=session, token=started.token, policy=POLICY, now=later)
        is sessions.Ended.REVOKED
    )
    other = sessions.start(session=session, user=user, method="password", policy=POLICY, now=now)
    assert (
        sessions.resolve(
            session=session, token=other.token, policy=POLICY, now=now + dt.timedelta(hours=12)
        )
        is sessions.Ended.EXPIRED
    )
    assert (
        sessions.resolve(session=session, token="made-up", policy=POLICY) is sessions.Ended.UNKNOWN
    )


def test_the_hand_off_code_works_once_and_rotates_the_token(session: Session) -> None:
    user = add(session, "ana")
    started = sessions.start(session=session, user=user, method="password", policy=POLICY)
    cookie = sessions.redeem_handoff(session=session, code=started.handoff_code)
    assert cookie is not None and cookie != started.token
    assert sessions.redeem_handoff(session=session, code=started.handoff_code) is None
    assert (
        sessions.resolve(session=session, token=started.token, policy=POLICY)
        is sessions.Ended.UNKNOWN
    )
    assert isinstance(
        sessions.resolve(session=session, token=cookie, policy=POLICY), sessions.SessionUser
    )
    late = sessions.start(session=session, user=user, method="password", policy=POLICY)
    assert (
        sessions.redeem_handoff(
            session=session, code=late.handoff_code, now=utcnow() + dt.timedelta(minutes=2)
        )
        is None
    )


def test_a_role_change_deactivation_or_password_change_ends_sessions(session: Session) -> None:
    add(session, "boss", "admin")
    user = add(session, "ana")
    first = sessions.start(session=session, user=user, method="password", policy=POLICY)
    users.update_user(session=session, username="ana", actor="boss", role="finance")
    assert (
        sessions.resolve(session=session, token=first.token, policy=POLICY)
        is sessions.Ended.REVOKED
    )
    kept = sessions.start(session=session, user=user, method="password", policy=POLICY)
    gone = sessions.start(session=session, user=user, method="password", policy=POLICY)
    kept_id = sessions.resolve(session=session, token=kept.token, policy=POLICY)
    assert isinstance(kept_id, sessions.SessionUser)
    users.change_own_password(
        session=session,
        username="ana",
        current=PASSWORD,
        new="violet kettle marathon",
        session_id=kept_id.session_id,
    )
    assert isinstance(
        sessions.resolve(session=session, token=kept.token, policy=POLICY), sessions.SessionUser
    )
    assert (
        sessions.resolve(session=session, token=gone.token, policy=POLICY) is sessions.Ended.REVOKED
    )
    users.update_user(session=session, username="ana", actor="boss", is_active=False)
    assert (
        sessions.resolve(session=session, token=kept.token, policy=POLICY) is sessions.Ended.REVOKED
    )


def test_parallel_wrong_guesses_all_count(committed_db: Engine) -> None:
    factory = sessionmaker(committed_db)
    with factory.begin() as session:
        add(session, "target")
    barrier = threading.Barrier(12)
    results: list[User | None] = []

    def guess() -> None:
        with factory.begin() as session:
            barrier.wait()
            results.append(
                users.check_login(session=session, username="target", password="not it at all")
            )

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [None] * 12
    with factory() as session:
        target = session.scalars(select(User)).one()
        assert target.failed_login_count == 12 and target.locked_until is not None
    with factory.begin() as session:
        assert users.check_login(session=session, username="target", password=PASSWORD) is None
    # When the lock has run out, the right password works and the count starts again.
    with factory.begin() as session:
        session.scalars(select(User)).one().locked_until = utcnow() - dt.timedelta(seconds=1)
    with factory.begin() as session:
        assert users.check_login(session=session, username="target", password=PASSWORD) is not None
        assert session.scalars(select(User)).one().failed_login_count == 0


def test_a_link_is_single_use_even_when_opened_twice_at_once(committed_db: Engine) -> None:
    factory = sessionmaker(committed_db)
    with factory.begin() as session:
        add(session, "boss", "admin")
        token = links.issue_invitation(
            session=session,
            email="new@example.com",
            role="finance",
            actor="boss",
            valid=dt.timedelta(days=7),
        )
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def redeem(name: str) -> None:
        try:
            with factory.begin() as session:
                barrier.wait()
                links.redeem_invitation(
                    session=session, token=token, username=name, password=PASSWORD, name=None
                )
            outcomes.append("ok")
        except (PermissionDenied, InvalidInput):
            outcomes.append("refused")
        except Exception as exc:  # SQLite: the second writer waits, then finds the link used
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=redeem, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes)[0] == "ok" and outcomes.count("ok") == 1
    with factory() as session:
        new = session.scalars(select(User).where(User.email == "new@example.com")).one()
        assert new.role == "finance"


def test_links_refuse_the_wrong_purpose_and_expiry(session: Session) -> None:
    add(session, "boss", "admin")
    invite = links.issue_invitation(
        session=session,
        email="x@example.com",
        role="viewer",
        actor="boss",
        valid=dt.timedelta(days=7),
    )
    assert links.inspect(session=session, purpose=links.Purpose.RESET, token=invite) is None
    with pytest.raises(PermissionDenied, match="expired or was already used"):
        links.redeem_reset(session=session, token=invite, password=PASSWORD)
    stale = links.issue_reset(
        session=session, username="boss", actor="boss", valid=dt.timedelta(seconds=-1)
    )
    assert links.inspect(session=session, purpose=links.Purpose.RESET, token=stale) is None
    with pytest.raises(PermissionDenied):
        links.issue_setup(session=session)  # a user exists


def test_sso_lets_in_users_invitations_and_mappings_only(session: Session) -> None:
    add(session, "boss", "admin")
    sso.add_mapping(
        session=session, claim="group", value="finance-team", role="finance", actor="boss"
    )
    sso.add_mapping(session=session, claim="group", value="admins", role="admin", actor="boss")
    sso.add_mapping(
        session=session, claim="email", value="Pinned@Example.com", role="viewer", actor="boss"
    )
    mapped = sso.sign_in(
        session=session,
        email="lead@example.com",
        email_verified=True,
        name="Lead",
        groups=["finance-team", "admins"],
    )
    assert mapped.role == "admin"  # the most privileged group wins
    pinned = sso.sign_in(
        session=session,
        email="pinned@example.com",
        email_verified=True,
        name=None,
        groups=["admins"],
    )
    assert pinned.role == "viewer"  # an email mapping beats groups
    links.issue_invitation(
        session=session,
        email="guest@example.com",
        role="finance",
        actor="boss",
        valid=dt.timedelta(days=1),
    )
    assert (
        sso.sign_in(
            session=session, email="guest@example.com", email_verified=True, name=None, groups=[]
        ).role
        == "finance"
    )
    assert (
        sso.sign_in(
            session=session, email="boss@example.com", email_verified=True, name=None, groups=[]
        ).username
        == "boss"
    )
    for email, verified in (
        ("stranger@example.com", True),
        ("lead2@example.com", False),
        (None, True),
    ):
        with pytest.raises(PermissionDenied, match="no access here"):
            sso.sign_in(
                session=session,
                email=email,
                email_verified=verified,
                name=None,
                groups=["contractors"],
            )
    with pytest.raises(InvalidInput, match="already mapped"):
        sso.add_mapping(session=session, claim="group", value="admins", role="viewer", actor="boss")


def test_old_sessions_and_links_are_pruned(session: Session) -> None:
    user = add(session, "ana")
    now = utcnow()
    long_ago = now - dt.timedelta(days=40)
    old = sessions.start(session=session, user=user, method="password", policy=POLICY, now=long_ago)
    fresh = sessions.start(session=session, user=user, method="password", policy=POLICY, now=now)
    links.issue_invitation(
        session=session, email="gone@example.com", role="viewer", actor="t",
        valid=dt.timedelta(days=-35),
    )  # fmt: skip
    kept = links.issue_reset(session=session, username="ana", actor="t", valid=dt.timedelta(days=1))
    assert sessions.prune(session=session, now=now) == 1
    assert links.prune(session=session, now=now) == 1
    assert (
        sessions.resolve(session=session, token=old.token, policy=POLICY) is sessions.Ended.UNKNOWN
    )
    assert isinstance(
        sessions.resolve(session=session, token=fresh.token, policy=POLICY), sessions.SessionUser
    )
    assert links.inspect(session=session, purpose=links.Purpose.RESET, token=kept) is not None


def test_guessing_on_during_a_lock_does_not_extend_it(session: Session) -> None:
    add(session, "ana")
    start = utcnow()
    for _ in range(5):
        users.check_login(session=session, username="ana", password="wrong guess", now=start)
    locked_until = session.scalars(select(User)).one().locked_until
    assert locked_until is not None
    later = start + dt.timedelta(minutes=10)
    for _ in range(3):
        users.check_login(session=session, username="ana", password="wrong again", now=later)
    session.expire_all()
    assert session.scalars(select(User)).one().locked_until == locked_until
    after = locked_until + dt.timedelta(seconds=1)
    assert users.check_login(session=session, username="ana", password=PASSWORD, now=after)


def test_a_linked_sso_identity_is_matched_by_subject_not_email(session: Session) -> None:
    add(session, "boss", "admin")
    idp = "https://idp.example.com"
    first = sso.sign_in(
        session=session,
        email="boss@example.com",
        email_verified=True,
        name=None,
        groups=[],
        subject=f"{idp}|abc",
    )
    assert first.username == "boss" and first.sso_subject == f"{idp}|abc"
    # Another identity of the provider that comes to claim the boss's email is refused.
    with pytest.raises(PermissionDenied, match="no access here"):
        sso.sign_in(
            session=session,
            email="boss@example.com",
            email_verified=True,
            name=None,
            groups=[],
            subject=f"{idp}|mallory",
        )
    # The linked identity signs in even after its email changed at the provider.
    again = sso.sign_in(
        session=session,
        email="renamed@example.com",
        email_verified=True,
        name=None,
        groups=[],
        subject=f"{idp}|abc",
    )
    assert again.username == "boss"
