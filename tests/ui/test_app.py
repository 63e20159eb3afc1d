"""AppTests for every page and role: sign-in, registration, roles, and figures to the cent."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories.dashboard import PASSWORD, expected_cost, seed_users
from tests.ui.conftest import new_app
from tracker.core.crypto import CredentialCipher
from tracker.models import Account, AuditLog, PreauthorizedEmail, User
from tracker.ui.components import money

FINANCE_PAGES = [
    "pages/overview.py",
    "pages/usage.py",
    "pages/forecast.py",
    "pages/budgets.py",
    "pages/anomalies.py",
    "pages/exports.py",
    "pages/sync_health.py",
]
ALL_PAGES = [*FINANCE_PAGES, "pages/accounts.py", "pages/admin.py"]
ALLOWED = {
    "admin": ALL_PAGES,
    "finance": FINANCE_PAGES,
    "viewer": ["pages/overview.py", "pages/usage.py"],
}
USER_OF_ROLE = {"admin": "alice", "finance": "fin", "viewer": "vic"}
AppAs = Callable[[str, str], AppTest]


def today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def sign_in(at: AppTest, username: str, password: str) -> AppTest:
    form_inputs = [t for t in at.text_input if t.label in ("Username", "Password")]
    form_inputs[0].input(username)
    form_inputs[1].input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def errors(at: AppTest) -> list[str]:
    # Messages are escaped Markdown where they quote names: compare what the page shows.
    return [e.value.replace("\\", "") for e in at.error]


# --- sign-in and registration -----------------------------------------------------------------


def test_sign_in_through_the_form_shows_the_overview_to_the_cent(seeded_db: Engine) -> None:
    at = new_app().run()
    assert not at.exception
    assert at.session_state["authentication_status"] is None
    sign_in(at, "alice", PASSWORD)
    assert not at.exception
    assert at.session_state["authentication_status"] is True
    assert at.session_state["roles"] == ["admin"]
    shown = metrics(at)
    day = today()
    mtd = expected_cost(day.replace(day=1), day, day)
    assert mtd > 0
    assert shown["Month-to-date spend"] == money(mtd)
    # One card per account, each with its own month-to-date cost.
    card_costs = sorted(m.value for m in at.metric if m.label == "Cost this month")
    expected_cards = sorted(
        money(expected_cost(day.replace(day=1), day, day, account=name))
        for name in ("OpenAI Prod", "Anthropic Team", "Groq CSV")
    )
    assert card_costs == expected_cards
    with Session(seeded_db) as session:
        user = session.scalar(select(User).where(User.username == "alice"))
        assert user is not None and user.last_login_at is not None


@pytest.mark.parametrize("username", ["alice", "nobody-here"])
def test_failed_sign_in_says_the_same_whether_or_not_the_user_exists(
    seeded_db: Engine, username: str
) -> None:
    at = sign_in(new_app().run(), username, "wrong password!")
    assert not at.exception
    assert at.session_state["authentication_status"] is None
    assert errors(at) == [
        "Wrong username or password, or the account is locked for 15 minutes after 5 failed "
        "attempts. Check your details and try again, or ask an admin."
    ]
    assert not at.metric


def test_five_failures_lock_the_user_in_the_database(seeded_db: Engine) -> None:
    at = new_app().run()
    for _ in range(5):
        at = sign_in(at, "fin", "not the password")
    with Session(seeded_db) as session:
        fin = session.scalar(select(User).where(User.username == "fin"))
        assert fin is not None and fin.locked_until is not None
    # Even the right password is refused while locked, with the same message.
    at = sign_in(at, "fin", PASSWORD)
    assert at.session_state["authentication_status"] is None
    assert len(errors(at)) == 1 and "Wrong username or password" in errors(at)[0]


def test_first_user_registers_and_becomes_admin(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    at = new_app().run()
    assert not at.exception
    assert any("No user exists yet" in i.value for i in at.info)
    values = {
        "register_first_username": "root",
        "register_first_name": "Ada Admin",
        "register_first_email": "Ada@Example.org",
        "register_first_password": "a long enough secret",
        "register_first_repeat": "a long enough secret",
    }
    for key, value in values.items():
        at.text_input(key=key).input(value)
    next(b for b in at.button if b.label == "Register").click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["roles"] == ["admin"]
    # A new user sees what to do next, not an empty dashboard.
    assert any("No provider account is connected yet" in i.value for i in at.info)
    with Session(committed_db) as session:
        user = session.scalar(select(User).where(User.username == "root"))
        assert user is not None and user.role == "admin" and user.email == "ada@example.org"
        assert (
            session.scalar(select(AuditLog.action).where(AuditLog.target == "root")) == "user.add"
        )
    # Registration is now closed: a fresh visitor gets the sign-in form only.
    again = new_app().run()
    assert not any("No user exists yet" in i.value for i in again.info)
    assert [b.label for b in again.button] == ["Sign in"]


def test_registration_refuses_mismatched_and_over_long_passwords(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    at = new_app().run()
    for key, value in {
        "register_first_username": "root",
        "register_first_email": "root@example.org",
        "register_first_password": "é" * 40,  # 80 bytes: bcrypt would refuse it
        "register_first_repeat": "é" * 40,
    }.items():
        at.text_input(key=key).input(value)
    next(b for b in at.button if b.label == "Register").click()
    at.run()
    assert not at.exception
    assert any("at most 72 bytes" in e for e in errors(at))
    with Session(committed_db) as session:
        assert session.scalar(select(func.count(User.id))) == 0


def test_invited_email_can_register_with_its_role(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    assert not at.exception
    at.text_input(key="invite_email").input("New.Person@example.org")
    at.selectbox(key="invite_role").select("finance")
    next(b for b in at.button if b.label == "Pre-authorise").click()
    at.run()
    assert not at.exception
    assert any("may now register as finance" in s.value.replace("\\", "") for s in at.success)

    visitor = new_app().run()
    assert [t.label for t in visitor.tabs] == ["Sign in", "Register with an invitation"]
    for key, value in {
        "register_invited_username": "newbie",
        "register_invited_email": "new.person@example.org",
        "register_invited_password": "another long secret",
        "register_invited_repeat": "another long secret",
    }.items():
        visitor.text_input(key=key).input(value)
    next(b for b in visitor.button if b.label == "Register").click()
    visitor.run()
    assert not visitor.exception
    assert visitor.session_state["roles"] == ["finance"]
    with Session(seeded_db) as session:
        invite = session.scalar(select(PreauthorizedEmail))
        assert invite is not None and invite.used_at is not None


def test_uninvited_email_cannot_register(app_as: AppAs, seeded_db: Engine) -> None:
    with Session(seeded_db) as session, session.begin():
        session.add(PreauthorizedEmail(email="invited@example.org", role="viewer"))
    visitor = new_app().run()
    for key, value in {
        "register_invited_username": "mallory",
        "register_invited_email": "mallory@example.org",
        "register_invited_password": "another long secret",
        "register_invited_repeat": "another long secret",
    }.items():
        visitor.text_input(key=key).input(value)
    next(b for b in visitor.button if b.label == "Register").click()
    visitor.run()
    assert visitor.session_state["authentication_status"] is None
    assert any("may not register" in e for e in errors(visitor))


def test_sign_out_clears_the_session(app_as: AppAs) -> None:
    at = app_as("vic", "viewer").run()
    assert metrics(at)
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert at.session_state["authentication_status"] is None
    assert at.session_state["logout"] is True
    assert not at.metric


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "finance", "viewer"])
def test_every_allowed_page_renders_and_the_others_are_unreachable(
    app_as: AppAs, role: str
) -> None:
    at = app_as(USER_OF_ROLE[role], role).run()
    assert not at.exception
    for page in ALLOWED[role]:
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
        assert at.title, page
    for page in set(ALL_PAGES) - set(ALLOWED[role]):
        with pytest.raises(ValueError):
            at.switch_page(page).run()


def test_the_role_comes_from_the_database_not_the_session(app_as: AppAs) -> None:
    # A tampered session claiming admin for a finance user still gets finance pages only.
    at = app_as("fin", "admin").run()
    assert not at.exception
    assert at.session_state["roles"] == ["finance"]
    with pytest.raises(ValueError):
        at.switch_page("pages/accounts.py").run()


def test_deactivated_user_is_signed_out_at_the_next_click(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("vic", "viewer").run()
    assert metrics(at)
    with Session(seeded_db) as session, session.begin():
        vic = session.scalar(select(User).where(User.username == "vic"))
        assert vic is not None
        vic.is_active = False
    at.run()
    assert at.session_state["authentication_status"] is None
    assert not at.metric


def _require_admin_script() -> None:
    import streamlit as st

    from tracker.core.errors import PermissionDenied
    from tracker.ui import data
    from tracker.ui.auth import require_role

    with data.get_runtime().session_factory.begin() as session:
        try:
            st.write(f"allowed:{require_role(session, 'admin')}")
        except PermissionDenied as exc:
            st.error(str(exc))


@pytest.mark.parametrize(("username", "allowed"), [("alice", True), ("fin", False)])
def test_require_role_checks_the_database(seeded_db: Engine, username: str, allowed: bool) -> None:
    at = AppTest.from_function(_require_admin_script)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["roles"] = ["admin"]  # what the session claims does not matter
    at.run()
    assert not at.exception
    if allowed:
        assert at.markdown[0].value == "allowed:alice"
    else:
        assert errors(at) == ["this action needs the admin role"]


# --- pages and their figures --------------------------------------------------------------------


def test_usage_explorer_totals_and_filters(app_as: AppAs) -> None:
    at = app_as("vic", "viewer")
    at.switch_page("pages/usage.py").run()
    assert not at.exception
    day = today()
    start = day.replace(day=1)
    assert metrics(at)["Cost in selection"] == money(expected_cost(start, day, day))
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == ["day", "provider"]
    assert "credential_encrypted" not in table.columns
    at.multiselect(key="usage_accounts").select("OpenAI Prod")
    at.multiselect(key="usage_group_by").unselect("Day").unselect("Provider").select("Model")
    at.run()
    assert not at.exception
    assert metrics(at)["Cost in selection"] == money(
        expected_cost(start, day, day, account="OpenAI Prod")
    )
    shown = at.dataframe[0].value
    assert list(shown.columns[:1]) == ["model"]
    assert round(Decimal(str(shown["cost"].sum())), 2) == round(
        expected_cost(start, day, day, account="OpenAI Prod"), 2
    )


def test_usage_explorer_empty_state(app_as: AppAs) -> None:
    at = app_as("vic", "viewer")
    at.switch_page("pages/usage.py").run()
    at.multiselect(key="usage_models").select("gpt-4o-mini")
    at.multiselect(key="usage_projects").select("proj_a")
    at.run()
    assert not at.exception
    assert any("No usage matches these filters" in i.value for i in at.info)


def test_sync_health_shows_failures_and_what_to_do(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.switch_page("pages/sync_health.py").run()
    assert not at.exception
    assert metrics(at) == {"Accounts": "3", "With errors": "1", "Never synced": "0"}
    assert any("Anthropic Team" in e and "Accounts page" in e for e in errors(at))
    freshness = at.dataframe[0].value.set_index("account")
    assert freshness.at["Anthropic Team", "last_run_status"] == "failed"


def test_overview_for_a_new_install_says_what_to_do(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    with Session(committed_db) as session, session.begin():
        seed_users(session)
    at = new_app()
    for key, value in [
        ("authentication_status", True),
        ("username", "alice"),
        ("name", "Alice"),
        ("roles", ["admin"]),
        ("logout", None),
    ]:
        at.session_state[key] = value
    at.run()
    assert not at.exception
    assert any("No provider account is connected yet" in i.value for i in at.info)


# --- accounts (admin) ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_admin_adds_edits_and_removes_an_account(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    assert not at.exception
    listed = at.dataframe[0].value
    assert set(listed["key"]) == {"…1234", "…5678", "…9012"}
    assert listed.set_index("name").at["OpenAI Prod", "rate_limit_headroom"] == "requests 499/500"
    at.selectbox(key="add_provider").select("openai")
    at.text_input(key="add_name").input("OpenAI Research")
    at.text_input(key="add_key").input("sk-admin-research-key-WXYZ")
    at.text_input(key="add_budget").input("250.50")
    next(b for b in at.button if b.label == "Add account").click()
    at.run()
    assert not at.exception
    assert any("Added OpenAI Research" in s.value.replace("\\", "") for s in at.success)
    cipher = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))
    with Session(seeded_db) as session:
        account = session.scalar(select(Account).where(Account.name == "OpenAI Research"))
        assert account is not None
        assert account.monthly_budget == Decimal("250.50")
        assert "WXYZ" not in account.credential_encrypted
        assert cipher.decrypt(account.credential_encrypted).reveal() == "sk-admin-research-key-WXYZ"
    assert "…WXYZ" in set(at.dataframe[0].value["key"])

    at.selectbox(key="edit_account").select("OpenAI Research")
    at.run()
    at.text_input(key="edit_budget_OpenAI Research").input("300")
    next(b for b in at.button if b.label == "Save changes").click()
    at.run()
    assert not at.exception
    with Session(seeded_db) as session:
        account = session.scalar(select(Account).where(Account.name == "OpenAI Research"))
        assert account is not None and account.monthly_budget == Decimal("300")

    at.selectbox(key="remove_account").select("OpenAI Research")
    at.text_input(key="remove_confirm").input("wrong name")
    at.button(key="remove_go").click().run()
    assert any("exact name" in e for e in errors(at))
    at.text_input(key="remove_confirm").input("OpenAI Research")
    at.button(key="remove_go").click().run()
    assert not at.exception
    with Session(seeded_db) as session:
        assert session.scalar(select(Account).where(Account.name == "OpenAI Research")) is None
        actions = set(session.scalars(select(AuditLog.action).where(AuditLog.actor == "alice")))
        assert {"account.add", "account.update", "account.remove"} <= actions


def test_bad_account_input_changes_nothing(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    at.text_input(key="add_name").input("Broken")
    at.text_input(key="add_key").input("sk-admin-key-1234")
    at.text_input(key="add_budget").input("lots")
    next(b for b in at.button if b.label == "Add account").click()
    at.run()
    assert not at.exception
    assert any(e.startswith("Not added:") for e in errors(at))
    with Session(seeded_db) as session:
        assert session.scalar(select(Account).where(Account.name == "Broken")) is None


@pytest.mark.parametrize("button", ["act_test", "act_sync"])
def test_test_connection_and_sync_now_report_a_clear_error(
    app_as: AppAs, seeded_db: Engine, monkeypatch: pytest.MonkeyPatch, button: str
) -> None:
    monkeypatch.setenv("HTTP_MAX_RETRIES", "0")  # fail fast against the closed port
    with Session(seeded_db) as session, session.begin():
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None
        account.base_url = f"http://127.0.0.1:{_closed_port()}"
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    at.selectbox(key="act_account").select("OpenAI Prod")
    at.button(key=button).click().run()
    assert not at.exception
    assert any("cannot connect to openai" in e for e in errors(at)), errors(at)
    with Session(seeded_db) as session:
        account = session.scalar(select(Account).where(Account.name == "OpenAI Prod"))
        assert account is not None and "cannot connect to openai" in (account.last_error or "")


# --- admin --------------------------------------------------------------------------------------


def test_admin_manages_users_and_sees_the_audit_log(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    assert not at.exception
    users_frame = at.dataframe[0].value
    assert set(users_frame["username"]) == {"alice", "fin", "vic"}
    assert "password_hash" not in users_frame.columns
    at.text_input(key="new_user_username").input("bob")
    at.text_input(key="new_user_email").input("bob@example.org")
    at.selectbox(key="new_user_role").select("finance")
    at.text_input(key="new_user_password").input("bob's long password")
    next(b for b in at.button if b.label == "Add user").click()
    at.run()
    assert not at.exception
    assert any("Added bob as finance" in s.value.replace("\\", "") for s in at.success)
    # The last admin cannot demote themself.
    at.selectbox(key="change_user").select("alice").run()
    at.selectbox(key="change_role_alice").select("viewer")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert any("last active admin" in e for e in errors(at))
    audit = at.dataframe[-1].value
    assert "user.add" in set(audit["action"])
    with Session(seeded_db) as session:
        bob = session.scalar(select(User).where(User.username == "bob"))
        assert bob is not None and bob.role == "finance"
        alice = session.scalar(select(User).where(User.username == "alice"))
        assert alice is not None and alice.role == "admin"


def test_lifting_a_lockout_changes_nothing_else(app_as: AppAs, seeded_db: Engine) -> None:
    """The change form starts from the picked user's own role and state, not from admin."""
    with Session(seeded_db) as session, session.begin():
        vic = session.scalar(select(User).where(User.username == "vic"))
        assert vic is not None
        vic.failed_login_count = 5
        vic.locked_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=15)
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    at.selectbox(key="change_user").select("vic").run()
    assert at.selectbox(key="change_role_vic").value == "viewer"
    assert at.checkbox(key="change_active_vic").value is True
    at.checkbox(key="change_unlock_vic").check()
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception
    assert any("Saved vic" in s.value.replace("\\", "") for s in at.success), errors(at)
    with Session(seeded_db) as session:
        vic = session.scalar(select(User).where(User.username == "vic"))
        assert vic is not None
        assert (vic.role, vic.is_active, vic.locked_until) == ("viewer", True, None)
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "user.update", AuditLog.target == "vic")
        ).one()
        assert entry.details == {"unlocked": True}


def test_admin_price_overrides(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    at.selectbox(key="ov_provider").select("openai")
    at.text_input(key="ov_model").input("gpt-4o")
    at.text_input(key="ov_input").input("2.0")
    at.text_input(key="ov_output").input("8")
    next(b for b in at.button if b.label == "Add override").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Override added" in s.value.replace("\\", "") for s in at.success), errors(at)
    at.button(key="ov_remove_go").click().run()
    assert not at.exception
    assert any("Removed override" in s.value.replace("\\", "") for s in at.success)
