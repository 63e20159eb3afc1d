"""AppTests of sign-in: the form, sessions, single-use links, your account, invitations.

The cookie itself is set and read by HTTP (tests/e2e/test_sign_in_browser.py); here a tab's
session token is the one a sign-in keeps in session state, resolved against the database.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.factories.dashboard import PASSWORD, expected_cost
from tests.fakes.smtp_server import smtp_server
from tests.ui.conftest import current_user_of, new_app, signed_in
from tests.ui.test_app import AppAs, errors, metrics, today
from tracker.identity import links
from tracker.models import AuditLog, SignInSession, SsoRoleMapping, User, UserToken
from tracker.ui.components import money

LOGIN_FAILED = (
    "Wrong username or password, or the account is locked for 15 minutes after 5 failed "
    "attempts. Check your details and try again, or ask an admin for a reset link."
)
NEW_PASSWORD = "violet kettle marathon"


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    form_inputs = [t for t in at.text_input if t.label in ("Username", "Password")]
    form_inputs[0].input(username)
    form_inputs[1].input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def fill(at: AppTest, values: dict[str, str], button: str = "Save") -> AppTest:
    for key, value in values.items():
        at.text_input(key=key).input(value)
    next(b for b in at.button if b.label == button).click()
    return at.run()


def open_link(purpose: links.Purpose, token: str) -> AppTest:
    at = new_app()
    at.query_params[purpose.value] = token
    return at.run()


# --- the sign-in form ---------------------------------------------------------------------------


def test_sign_in_opens_a_server_side_session_and_shows_the_overview(seeded_db: Engine) -> None:
    at = new_app().run()
    assert not at.exception
    assert current_user_of(at) is None
    sign_in(at, "alice", PASSWORD)
    assert not at.exception
    assert any("Signed in" in s.value for s in at.success)
    at.run()  # the page after the browser came back from the cookie route
    assert current_user_of(at) == ("alice", "admin")
    day = today()
    assert metrics(at)["Month-to-date spend"] == money(expected_cost(day.replace(day=1), day, day))
    with Session(seeded_db) as session:
        row = session.scalars(select(SignInSession)).one()
        assert row.revoked_at is None and row.method == "password"
        assert len(row.token_hash) == 64 and row.handoff_hash is not None  # hashes only
        alice = session.scalar(select(User).where(User.username == "alice"))
        assert alice is not None and alice.last_login_at is not None
        signed = session.scalars(select(AuditLog).where(AuditLog.action == "user.sign_in")).one()
        assert (signed.actor, signed.details) == ("alice", {"method": "password"})


@pytest.mark.parametrize("username", ["alice", "nobody-here"])
def test_failed_sign_in_says_the_same_whether_or_not_the_user_exists(
    seeded_db: Engine, username: str
) -> None:
    at = sign_in(new_app().run(), username, "wrong password!")
    assert not at.exception
    assert current_user_of(at) is None
    assert errors(at) == [LOGIN_FAILED]
    assert not at.metric


def test_five_failures_lock_the_user_and_the_right_password_is_refused(seeded_db: Engine) -> None:
    at = new_app().run()
    for _ in range(5):
        at = sign_in(at, "fin", "not the password")
    with Session(seeded_db) as session:
        fin = session.scalar(select(User).where(User.username == "fin"))
        assert fin is not None and fin.locked_until is not None
        assert session.scalar(select(func.count(SignInSession.id))) == 0
    at = sign_in(at, "fin", PASSWORD)
    assert errors(at) == [LOGIN_FAILED]
    at.run()
    assert current_user_of(at) is None


def test_sign_out_revokes_the_session_on_the_server(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("vic", "viewer").run()
    assert metrics(at)
    token = at.session_state["auth_token"]
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert not at.metric
    with Session(seeded_db) as session:
        row = session.scalars(select(SignInSession)).one()
        assert row.revoked_at is not None and row.revoked_reason == "signed out"
        assert (
            session.scalar(select(AuditLog.actor).where(AuditLog.action == "user.sign_out"))
            == "vic"
        )
    # The same token, replayed by another tab, signs nobody in.
    replay = new_app()
    replay.session_state["auth_token"] = token
    replay.run()
    assert current_user_of(replay) is None
    assert [w.value for w in replay.warning] == ["You were signed out. Sign in again."]


def test_an_idle_session_ends_at_the_next_click(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("vic", "viewer").run()
    assert metrics(at)
    with Session(seeded_db) as session, session.begin():
        session.execute(
            update(SignInSession).values(
                last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=61)
            )
        )
    at.run()
    assert current_user_of(at) is None
    assert [w.value for w in at.warning] == [
        "You were signed out after 60 minutes without activity. Sign in again."
    ]


def test_an_old_session_ends_at_its_absolute_limit(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("vic", "viewer").run()
    with Session(seeded_db) as session, session.begin():
        session.execute(
            update(SignInSession).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1))
        )
    at.run()
    assert current_user_of(at) is None
    assert any("12-hour limit" in w.value for w in at.warning)


# --- no open registration: the first admin comes from a setup link ----------------------------


def test_a_fresh_install_offers_no_registration(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    at = new_app().run()
    assert not at.exception
    assert any("No admin exists yet" in i.value for i in at.info)
    assert not at.text_input  # no form at all
    assert not at.button


def test_the_setup_link_makes_the_first_admin_once(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    with Session(committed_db) as session, session.begin():
        token = links.issue_setup(session=session)
    values = {
        "link_setup_username": "root",
        "link_setup_name": "Ada Admin",
        "link_setup_email": "Ada@Example.org",
        "link_setup_password": "a long enough secret",
        "link_setup_repeat": "a long enough secret",
    }
    at = fill(open_link(links.Purpose.SETUP, token), values)
    assert not at.exception, at.exception
    at.run()
    assert current_user_of(at) == ("root", "admin")
    assert any("No provider account is connected yet" in i.value for i in at.info)
    with Session(committed_db) as session:
        user = session.scalar(select(User).where(User.username == "root"))
        assert user is not None and user.email == "ada@example.org"
    again = open_link(links.Purpose.SETUP, token)
    assert any("cannot be used" in e for e in errors(again))
    assert not again.text_input


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("é" * 40, "at most 72 bytes"),  # 80 bytes: bcrypt would refuse it
        ("password", "at least 12 characters"),
        ("password1234", "too easy to guess"),
        ("aaaaaaaaaaaa", "too easy to guess"),
        ("root-root-root", "too easy to guess"),
    ],
)
def test_weak_passwords_are_refused_and_the_link_still_works(
    app_env: dict[str, str], committed_db: Engine, password: str, reason: str
) -> None:
    with Session(committed_db) as session, session.begin():
        token = links.issue_setup(session=session)
    values = {
        "link_setup_username": "root",
        "link_setup_email": "root@example.org",
        "link_setup_password": password,
        "link_setup_repeat": password,
    }
    at = fill(open_link(links.Purpose.SETUP, token), values)
    assert not at.exception
    assert any(reason in e for e in errors(at)), errors(at)
    with Session(committed_db) as session:
        assert session.scalar(select(func.count(User.id))) == 0
        assert session.scalar(select(UserToken.used_at)) is None


# --- invitations and resets ---------------------------------------------------------------------


def test_an_invitation_works_only_through_its_link_once(app_as: AppAs, seeded_db: Engine) -> None:
    admin = app_as("alice", "admin")
    admin.switch_page("pages/admin.py").run()
    admin.text_input(key="invite_email").input("New.Person@example.org")
    admin.selectbox(key="invite_role").select("finance")
    next(b for b in admin.button if b.label == "Invite").click()
    admin.run()
    assert not admin.exception
    assert any("SMTP is not configured" in s.value for s in admin.success)
    url = admin.code[0].value
    assert url.startswith("http://localhost:8501/?invite=")
    token = url.split("=", 1)[1]

    # A stranger at the sign-in page sees no registration, whatever email they know.
    stranger = new_app().run()
    assert [b.label for b in stranger.button] == ["Sign in"]

    invitee = open_link(links.Purpose.INVITE, token)
    assert any("invited as finance" in h.value for h in invitee.subheader)
    values = {
        "link_invite_username": "newbie",
        "link_invite_password": "another long secret",
        "link_invite_repeat": "another long secret",
    }
    invitee = fill(invitee, values)
    invitee.run()
    assert current_user_of(invitee) == ("newbie", "finance")
    with Session(seeded_db) as session:
        newbie = session.scalar(select(User).where(User.username == "newbie"))
        assert newbie is not None and newbie.email == "new.person@example.org"
    again = open_link(links.Purpose.INVITE, token)
    assert any("cannot be used" in e for e in errors(again))


def test_an_admin_reset_link_sets_a_password_and_ends_sessions(
    app_as: AppAs, seeded_db: Engine
) -> None:
    vic_tab = app_as("vic", "viewer").run()
    admin = app_as("alice", "admin")
    admin.switch_page("pages/admin.py").run()
    admin.selectbox(key="change_user").select("vic").run()
    admin.button(key="reset_vic").click().run()
    assert not admin.exception
    token = admin.code[0].value.split("?reset=", 1)[1]
    at = open_link(links.Purpose.RESET, token)
    at = fill(at, {"link_reset_password": NEW_PASSWORD, "link_reset_repeat": NEW_PASSWORD})
    assert any("Your password is set" in s.value for s in at.success), errors(at)
    vic_tab.run()
    assert current_user_of(vic_tab) is None
    at = sign_in(new_app().run(), "vic", NEW_PASSWORD)
    at.run()
    assert current_user_of(at) == ("vic", "viewer")
    with Session(seeded_db) as session:
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.target == "vic")))
        assert {"user.reset_link", "user.password"} <= actions


def change_password(at: AppTest, current: str, new: str) -> AppTest:
    inputs = at.text_input
    inputs[0].input(current)
    inputs[1].input(new)
    inputs[2].input(new)
    next(b for b in at.button if b.label == "Change password").click()
    return at.run()


def test_a_user_changes_their_own_password(app_as: AppAs, seeded_db: Engine) -> None:
    other_device = app_as("fin", "finance").run()
    at = app_as("fin", "finance")
    at.switch_page("pages/account.py").run()
    assert not at.exception
    change_password(at, "not my password", NEW_PASSWORD)
    assert errors(at) == ["Not changed: the current password is wrong."]
    change_password(at, PASSWORD, NEW_PASSWORD)
    assert any("Password changed" in s.value for s in at.success), errors(at)
    assert current_user_of(at) == ("fin", "finance")  # this tab stays signed in
    other_device.run()
    assert current_user_of(other_device) is None
    assert errors(sign_in(new_app().run(), "fin", PASSWORD)) == [LOGIN_FAILED]
    with Session(seeded_db) as session:
        assert session.scalar(select(AuditLog.action).where(AuditLog.action == "user.password"))


def test_admin_maps_a_group_to_a_role_for_single_sign_on(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    assert any("Single sign-on is off" in i.value for i in at.info)
    at.selectbox(key="sso_claim").select("group")
    at.text_input(key="sso_value").input("finance-team")
    at.selectbox(key="sso_role").select("finance")
    next(b for b in at.button if b.label == "Add mapping").click()
    at.run()
    shown = [s.value.replace("\\", "") for s in at.success]  # names are escaped Markdown
    assert any("Mapped the group finance-team to finance" in s for s in shown), shown
    with Session(seeded_db) as session:
        mapping = session.scalars(select(SsoRoleMapping)).one()
        assert (mapping.claim, mapping.value, mapping.role) == ("group", "finance-team", "finance")
    at.button(key="sso_remove_go").click().run()
    assert any("Mapping removed" in s.value for s in at.success)


def test_sign_out_everywhere_else_keeps_this_tab(app_as: AppAs) -> None:
    phone = app_as("vic", "viewer").run()
    at = app_as("vic", "viewer")
    at.switch_page("pages/account.py").run()
    at.button(key="end_other_sessions").click().run()
    assert any("Ended 1 other session" in s.value for s in at.success)
    assert current_user_of(at) == ("vic", "viewer")
    phone.run()
    assert current_user_of(phone) is None


def test_an_invitation_is_mailed_when_smtp_is_configured(
    seeded_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server() as inbox:
        for name, value in {
            "SMTP_HOST": inbox.host,
            "SMTP_PORT": str(inbox.port),
            "SMTP_SECURITY": "none",
            "SMTP_FROM": "costs@example.org",
            "PUBLIC_URL": "https://costs.example.org",
        }.items():
            monkeypatch.setenv(name, value)
        at = signed_in(new_app(), "alice")
        at.switch_page("pages/admin.py").run()
        at.text_input(key="invite_email").input("cfo@example.org")
        next(b for b in at.button if b.label == "Invite").click()
        at.run()
        shown = [s.value.replace("\\", "") for s in at.success]
        assert any("Invitation emailed to cfo@example.org" in s for s in shown), shown
        link = at.code[0].value
        assert link.startswith("https://costs.example.org/?invite=")
        [mail] = inbox.messages
        assert mail.rcpt_tos == ["cfo@example.org"]
        assert link in mail.message.get_payload(decode=True).decode()


def test_an_admin_withdraws_an_invitation(app_as: AppAs, seeded_db: Engine) -> None:
    admin = app_as("alice", "admin")
    admin.switch_page("pages/admin.py").run()
    admin.text_input(key="invite_email").input("later@example.org")
    next(b for b in admin.button if b.label == "Invite").click()
    admin.run()
    admin.button(key="invite_remove_go").click().run()
    shown = [s.value.replace("\\", "") for s in admin.success]
    assert any("Withdrew the invitation of later@example.org (viewer)" in s for s in shown), shown
    with Session(seeded_db) as session:
        assert links.open_invitations(session=session) == []
