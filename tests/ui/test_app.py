"""AppTests for every page and role: roles, server-side checks, and figures to the cent."""

from __future__ import annotations

import base64
import datetime as dt
import socket
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories.dashboard import expected_cost, seed_users
from tests.ui.conftest import current_user_of, new_app, run_until, signed_in
from tracker.core.crypto import CredentialCipher
from tracker.models import Account, AuditLog, PriceOverride, SyncRun, User
from tracker.ui.components import money

FINANCE_PAGES = [
    "pages/overview.py",
    "pages/usage.py",
    "pages/forecast.py",
    "pages/budgets.py",
    "pages/anomalies.py",
    "pages/chargeback.py",
    "pages/exports.py",
    "pages/reconciliation.py",
    "pages/invoices.py",
    "pages/credits.py",
    "pages/close.py",
    "pages/savings.py",
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


def errors(at: AppTest) -> list[str]:
    # Messages are escaped Markdown where they quote names: compare what the page shows.
    return [e.value.replace("\\", "") for e in at.error]


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
    at = app_as("fin", "finance").run()
    assert not at.exception
    assert current_user_of(at) == ("fin", "finance")
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
    assert current_user_of(at) is None
    assert not at.metric
    assert any("You were signed out" in w.value for w in at.warning)


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
    at = signed_in(AppTest.from_function(_require_admin_script), username).run()
    assert not at.exception
    if allowed:
        assert at.markdown[0].value == "allowed:alice"
    else:
        assert errors(at) == ["this action needs the admin role"]


def test_require_role_refuses_without_a_session(seeded_db: Engine) -> None:
    at = AppTest.from_function(_require_admin_script).run()
    assert errors(at) == ["you are signed out; sign in again"]


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


def test_usage_explorer_filters_come_from_the_url_and_go_back_to_it(app_as: AppAs) -> None:
    """A shared link opens the same view: range, filters and grouping from the query string;
    changing a filter rewrites it."""
    at = app_as("vic", "viewer")
    day = today()
    start = day - dt.timedelta(days=3)
    at.query_params.update(
        {"from": start.isoformat(), "to": day.isoformat(), "account": "OpenAI Prod",
         "group": "Model"}
    )  # fmt: skip
    at.switch_page("pages/usage.py").run()
    assert not at.exception
    assert at.date_input(key="usage_range").value == (start, day)
    assert at.multiselect(key="usage_accounts").value == ["OpenAI Prod"]
    assert at.multiselect(key="usage_group_by").value == ["Model"]
    assert metrics(at)["Cost in selection"] == money(
        expected_cost(start, day, day, account="OpenAI Prod")
    )
    at.multiselect(key="usage_models").select("gpt-4o")
    at.run()
    written = {k: v if isinstance(v, str) else list(v) for k, v in at.query_params.items()}
    assert written["model"] in ("gpt-4o", ["gpt-4o"])
    assert written["account"] in ("OpenAI Prod", ["OpenAI Prod"])
    assert written["from"] in (start.isoformat(), [start.isoformat()])


def test_usage_explorer_period_presets_and_a_bad_url(app_as: AppAs) -> None:
    at = app_as("vic", "viewer")
    at.query_params.update({"from": "2026-99-01", "to": "yesterday", "account": "No such"})
    at.switch_page("pages/usage.py").run()
    assert not at.exception  # an unreadable link falls back to this month, no filter
    day = today()
    assert at.date_input(key="usage_range").value == (day.replace(day=1), day)
    assert at.multiselect(key="usage_accounts").value == []
    assert at.selectbox(key="usage_period").value == "This month"
    at.selectbox(key="usage_period").select("Last month").run()
    last = day.replace(day=1) - dt.timedelta(days=1)
    assert at.date_input(key="usage_range").value == (last.replace(day=1), last)
    assert metrics(at)["Cost in selection"] == money(expected_cost(last.replace(day=1), last, day))


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
    # Finance cannot open the Accounts page: the message names who fixes the key instead.
    refused = [e for e in errors(at) if "Anthropic Team" in e]
    assert refused and "ask an admin to fix the key" in refused[0], errors(at)
    assert "Accounts page" not in refused[0]
    freshness = at.dataframe[0].value.set_index("account")
    assert freshness.at["Anthropic Team", "last_run_status"] == "failed"
    admin = app_as("alice", "admin")
    admin.switch_page("pages/sync_health.py").run()
    assert any("Anthropic Team" in e and "on the Accounts page" in e for e in errors(admin))


def test_overview_for_a_new_install_says_what_to_do(
    app_env: dict[str, str], committed_db: Engine
) -> None:
    with Session(committed_db) as session, session.begin():
        seed_users(session)
    at = signed_in(new_app(), "alice").run()
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
    at.checkbox(key="add_test_key").uncheck()  # no provider to ask here
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
    # The stored NUMERIC(18, 6) reads as money in the form, not "250.500000".
    assert at.text_input(key="edit_budget_OpenAI Research").value == "250.50"
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
    if button == "act_sync":  # runs in the background; the page shows progress meanwhile
        run_until(at, lambda page: any("openai" in e for e in errors(page)))
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
    # The last admin cannot demote themself, even with the change confirmed.
    at.selectbox(key="change_user").select("alice").run()
    at.selectbox(key="change_role_alice").select("viewer")
    at.checkbox(key="change_confirm_alice").check()
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert any("last active admin" in e for e in errors(at))
    with Session(seeded_db) as session:
        alice = session.scalar(select(User).where(User.username == "alice"))
        assert alice is not None and alice.role == "admin"


def test_a_role_change_needs_confirmation_and_ends_the_users_sessions(
    app_as: AppAs, seeded_db: Engine
) -> None:
    fin_tab = app_as("fin", "finance").run()
    assert current_user_of(fin_tab) == ("fin", "finance")
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    at.selectbox(key="change_user").select("fin").run()
    at.selectbox(key="change_role_fin").select("viewer")
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert any("needs the confirmation box" in w.value for w in at.warning)
    with Session(seeded_db) as session:
        assert session.scalar(select(User.role).where(User.username == "fin")) == "finance"
    at.selectbox(key="change_role_fin").select("viewer")
    at.checkbox(key="change_confirm_fin").check()
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert any("Saved fin" in s.value.replace("\\", "") for s in at.success), errors(at)
    with Session(seeded_db) as session:
        assert session.scalar(select(User.role).where(User.username == "fin")) == "viewer"
    # fin's open tab is signed out at its next click, and says so.
    fin_tab.run()
    assert current_user_of(fin_tab) is None
    assert any("You were signed out" in w.value for w in fin_tab.warning)


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
    at.selectbox(key="ov_other_kind").select("input_audio")
    at.text_input(key="ov_other").input("32")
    at.text_input(key="ov_source").input("MSA 2026 schedule B")
    at.date_input(key="ov_checked").set_value(dt.date(2026, 11, 30))
    next(b for b in at.button if b.label == "Add override").click()
    at.run()
    assert not at.exception, at.exception
    assert any("Override added" in s.value.replace("\\", "") for s in at.success), errors(at)
    with Session(seeded_db) as session:
        stored = session.scalars(select(PriceOverride).where(PriceOverride.model == "gpt-4o")).one()
        assert (stored.source, stored.checked_on) == ("MSA 2026 schedule B", dt.date(2026, 11, 30))
        assert stored.extra_prices == {"input_audio": "32"}
    at.button(key="ov_remove_go").click().run()
    assert not at.exception
    assert any("Removed override" in s.value.replace("\\", "") for s in at.success)


def test_sync_health_counts_rate_limits_and_timeouts_as_errors(
    app_as: AppAs, seeded_db: Engine
) -> None:
    with Session(seeded_db) as session, session.begin():
        openai = session.scalars(select(Account).where(Account.name == "OpenAI Prod")).one()
        session.add(
            SyncRun(
                account_id=openai.id,
                trigger="worker",
                range_start=today(),
                range_end=today(),
                status="failed",
                error="openai did not finish within this account's 60 s sync budget",
            )
        )
        openai.last_error = "openai did not finish within this account's 60 s sync budget"
    at = app_as("fin", "finance")
    at.switch_page("pages/sync_health.py").run()
    assert metrics(at)["With errors"] == "2"
    shown = errors(at)
    assert any("refused the key of Anthropic Team" in e for e in shown), shown
    assert any("The last sync failed for OpenAI Prod" in e for e in shown), shown
