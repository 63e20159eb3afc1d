"""AppTests for the Accounts and Admin forms: they stay on the user's tab, keep what was typed
after a refusal (but not a secret, and say so), test a key before saving it, redraw the status
table in the same run, offer the CSV template, and speak without command-line words."""

from __future__ import annotations

import csv
import io
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.fakes.provider_server import OPENAI_KEY, ProviderServer
from tests.ui.conftest import run_until
from tracker.ingest import csv_template
from tracker.models import Account, AuditLog, SsoRoleMapping, UserToken

AppAs = Callable[[str, str], AppTest]
CLI_WORDS = ("--", "standard input", "stdin", "python -m", "`")


def shown(elements: Any) -> list[str]:
    # Messages are escaped Markdown where they quote names: compare what the page shows.
    return [e.value.replace("\\", "") for e in elements]


def no_cli_words(messages: list[str]) -> None:
    for message in messages:
        assert not any(word in message for word in CLI_WORDS), message


def tab(at: AppTest, label: str) -> Any:
    return next(t for t in at.tabs if t.label == label)


def add_button(at: AppTest) -> Any:
    return next(b for b in at.button if b.label == "Add account")


def accounts_page(app_as: AppAs) -> AppTest:
    at = app_as("alice", "admin")
    at.switch_page("pages/accounts.py").run()
    assert not at.exception
    return at


def account_named(engine: Engine, name: str) -> Account | None:
    with Session(engine) as session:
        return session.scalar(select(Account).where(Account.name == name))


@pytest.fixture
def provider() -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        yield server


# --- Accounts: Add --------------------------------------------------------------------------


def test_a_refused_add_keeps_what_was_typed_but_the_key(app_as: AppAs, seeded_db: Engine) -> None:
    at = accounts_page(app_as)
    at.selectbox(key="add_provider").select("github_copilot")
    at.text_input(key="add_name").input("Copilot")
    at.text_input(key="add_key").input("ghp_secret_token_0001")
    at.text_input(key="add_org").input("acme-corp")
    at.text_input(key="add_budget").input("lots")
    add_button(at).click()
    at.run()
    assert not at.exception
    [error] = shown(tab(at, "Add").error)
    assert error.startswith("Not added:") and "monthly budget" in error, error
    assert at.selectbox(key="add_provider").value == "github_copilot"
    assert at.text_input(key="add_name").value == "Copilot"
    assert at.text_input(key="add_org").value == "acme-corp"
    assert at.text_input(key="add_budget").value == "lots"
    assert at.text_input(key="add_key").value == ""
    assert any(
        "For safety the API key was cleared: paste it again" in c.value
        for c in tab(at, "Add").caption
    )
    assert account_named(seeded_db, "Copilot") is None

    # Corrected (and the key pasted again), it is added and the form starts afresh.
    at.text_input(key="add_budget").input("100")
    at.text_input(key="add_key").input("ghp_secret_token_0001")
    at.checkbox(key="add_test_key").uncheck()
    add_button(at).click()
    at.run()
    assert not at.exception
    assert account_named(seeded_db, "Copilot") is not None
    assert at.text_input(key="add_name").value == ""
    assert at.text_input(key="add_budget").value == ""
    assert not tab(at, "Add").error


def test_a_successful_add_stays_on_its_tab_with_the_message_and_the_new_row(
    app_as: AppAs, seeded_db: Engine, provider: ProviderServer
) -> None:
    at = accounts_page(app_as)
    at.selectbox(key="add_provider").select("openai")
    at.text_input(key="add_name").input("OpenAI Research")
    at.text_input(key="add_key").input(OPENAI_KEY)
    at.text_input(key="add_base_url").input(provider.url + "/v1")
    assert at.checkbox(key="add_test_key").value is True  # tested unless unticked
    add_button(at).click()
    at.run()
    assert not at.exception
    assert any("Added OpenAI Research" in s for s in shown(tab(at, "Add").success))
    assert at.session_state["accounts_tab"] == "Add"
    listed = at.dataframe[0].value.set_index("name")
    assert listed.at["OpenAI Research", "status"] == "active"
    assert provider.count() >= 1  # the key was tried before it was saved


def test_the_edit_and_remove_tabs_stay_open_after_their_change(
    app_as: AppAs, seeded_db: Engine
) -> None:
    at = accounts_page(app_as)
    at.session_state["accounts_tab"] = "Edit"  # the user opens the Edit tab
    at.run()
    at.selectbox(key="edit_account").select("OpenAI Prod").run()
    at.text_input(key="edit_name_OpenAI Prod").input("OpenAI Main")
    at.text_input(key="edit_key_OpenAI Prod").input("sk-new key with spaces")
    next(b for b in at.button if b.label == "Save changes").click()
    at.run()
    assert not at.exception
    # Refused for the key: the name typed stays, the key is emptied, and it says so.
    assert any("whitespace" in e for e in shown(tab(at, "Edit").error))
    assert at.text_input(key="edit_name_OpenAI Prod").value == "OpenAI Main"
    assert at.text_input(key="edit_key_OpenAI Prod").value == ""
    assert any("new API key was cleared" in c.value for c in tab(at, "Edit").caption)

    next(b for b in at.button if b.label == "Save changes").click()
    at.run()
    assert not at.exception
    assert at.session_state["accounts_tab"] == "Edit"
    assert any("Saved OpenAI Main" in s for s in shown(tab(at, "Edit").success))
    assert not tab(at, "Add").success
    assert at.selectbox(key="edit_account").value == "OpenAI Main"  # under its new name
    assert "OpenAI Main" in set(at.dataframe[0].value["name"])

    at.session_state["accounts_tab"] = "Remove"
    at.run()
    at.selectbox(key="remove_account").select("OpenAI Main")
    at.text_input(key="remove_confirm").input("OpenAI Main")
    at.button(key="remove_go").click().run()
    assert not at.exception
    assert at.session_state["accounts_tab"] == "Remove"
    assert any("Removed OpenAI Main" in s for s in shown(tab(at, "Remove").success))
    assert at.text_input(key="remove_confirm").value == ""
    assert account_named(seeded_db, "OpenAI Main") is None


def test_a_key_the_provider_refuses_is_not_saved_unless_the_test_is_unticked(
    app_as: AppAs, seeded_db: Engine, provider: ProviderServer
) -> None:
    at = accounts_page(app_as)
    at.selectbox(key="add_provider").select("openai")
    at.text_input(key="add_name").input("Wrong key")
    at.text_input(key="add_key").input("sk-admin-not-the-right-key")
    at.text_input(key="add_base_url").input(provider.url + "/v1")
    add_button(at).click()
    at.run()
    assert not at.exception
    [error] = shown(tab(at, "Add").error)
    assert "the key test failed" in error and "rejected the key" in error, error
    assert "Nothing was saved" in error and "Test the key before saving" in error
    no_cli_words([error])
    assert account_named(seeded_db, "Wrong key") is None
    with Session(seeded_db) as session:  # the refused add left no audit entry either
        assert session.scalar(select(AuditLog).where(AuditLog.target == "Wrong key")) is None
    assert at.text_input(key="add_name").value == "Wrong key"
    assert at.text_input(key="add_base_url").value == provider.url + "/v1"

    # Unticked (say the provider is down), the same key is saved untested.
    at.text_input(key="add_key").input("sk-admin-not-the-right-key")
    at.checkbox(key="add_test_key").uncheck()
    add_button(at).click()
    at.run()
    assert not at.exception
    assert any("Added Wrong key" in s for s in shown(tab(at, "Add").success))
    saved = account_named(seeded_db, "Wrong key")
    assert saved is not None and saved.status == "active"


@pytest.mark.parametrize(
    ("provider_id", "organization", "expected"),
    [
        ("openai", "", "the API key is empty"),
        ("github_copilot", "", "GitHub Copilot accounts need the organization"),
    ],
)
def test_add_messages_speak_without_command_line_words(
    app_as: AppAs, seeded_db: Engine, provider_id: str, organization: str, expected: str
) -> None:
    at = accounts_page(app_as)
    at.selectbox(key="add_provider").select(provider_id)
    at.text_input(key="add_name").input("Plain words")
    if provider_id == "github_copilot":
        at.text_input(key="add_key").input("ghp_secret_token_0001")
    at.text_input(key="add_org").input(organization)
    add_button(at).click()
    at.run()
    assert not at.exception
    errors = shown(at.error)
    assert any(expected in e for e in errors), errors
    no_cli_words(errors)


# --- Accounts: Test / sync and the status table ------------------------------------------------


def test_test_connection_shows_the_new_status_in_the_table_at_once(
    app_as: AppAs, seeded_db: Engine, provider: ProviderServer
) -> None:
    with Session(seeded_db) as session, session.begin():
        account = session.scalars(select(Account).where(Account.name == "OpenAI Prod")).one()
        account.base_url = provider.url + "/v1"  # the fake refuses the seeded key
    at = accounts_page(app_as)
    assert at.dataframe[0].value.set_index("name").at["OpenAI Prod", "status"] == "active"
    at.session_state["accounts_tab"] = "Test / sync"
    at.run()
    at.selectbox(key="act_account").select("OpenAI Prod")
    at.button(key="act_test").click().run()
    assert not at.exception
    assert at.session_state["accounts_tab"] == "Test / sync"
    assert any("Connection failed" in e for e in shown(tab(at, "Test / sync").error))
    listed = at.dataframe[0].value.set_index("name")
    assert listed.at["OpenAI Prod", "status"] == "error"
    assert "rejected the key" in listed.at["OpenAI Prod", "last_error"]


def test_the_headroom_bars_are_green_when_much_is_left(app_as: AppAs) -> None:
    at = accounts_page(app_as)
    headroom = at.dataframe[1]
    assert headroom.value["remaining_pct"].iloc[0] > 99
    config = json.loads(headroom.proto.columns)["remaining_pct"]
    # "auto": green above half, red below (the primary colour would paint 99.8 % red).
    assert config["type_config"]["color"] == "auto"


# --- Accounts: CSV import -------------------------------------------------------------------


def test_the_csv_import_tab_offers_the_template(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    files: dict[str | None, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def keep(
        self: MemoryMediaFileStorage, data: Any, mimetype: str, kind: Any, filename: str | None
    ) -> str:
        files[filename] = data
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = accounts_page(app_as)
    [button] = tab(at, "CSV import").get("download_button")
    assert button.label == "Download the CSV template"
    header = next(csv.reader(io.StringIO(files["usage-template.csv"].decode())))
    assert header == list(csv_template.COLUMNS)
    assert header[:5] == ["day", "model", "input_tokens", "output_tokens", "requests"]
    # The header the importer wants: nothing missing, nothing unknown.
    assert csv_template.header_problems(header)[1] == []


# --- Admin ---------------------------------------------------------------------------------------


def admin_page(app_as: AppAs, tab_label: str) -> AppTest:
    at = app_as("alice", "admin")
    at.switch_page("pages/admin.py").run()
    at.session_state["admin_tab"] = tab_label
    at.run()
    assert not at.exception
    return at


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def test_a_refused_invitation_keeps_what_was_typed(app_as: AppAs, seeded_db: Engine) -> None:
    at = admin_page(app_as, "Invitations")
    at.text_input(key="invite_email").input("not an address")
    at.selectbox(key="invite_role").select("finance")
    click(at, "Invite")
    assert not at.exception
    errors = shown(tab(at, "Invitations").error)
    assert any(e.startswith("Not invited:") and "email" in e for e in errors), errors
    no_cli_words(errors)
    assert at.text_input(key="invite_email").value == "not an address"
    assert at.selectbox(key="invite_role").value == "finance"
    with Session(seeded_db) as session:
        assert session.scalar(select(UserToken)) is None

    at.text_input(key="invite_email").input("new.person@example.org")
    click(at, "Invite")
    assert not at.exception
    assert at.session_state["admin_tab"] == "Invitations"
    assert any("SMTP is not configured" in s for s in shown(tab(at, "Invitations").success))
    assert tab(at, "Invitations").code[0].value.startswith("http://localhost:8501/?invite=")
    assert at.text_input(key="invite_email").value == ""
    assert at.selectbox(key="invite_role").value == "finance"
    # The invitation list below shows it in the same run.
    assert "new.person@example.org" in set(tab(at, "Invitations").dataframe[0].value["email"])


def test_a_refused_sso_mapping_keeps_what_was_typed(app_as: AppAs, seeded_db: Engine) -> None:
    at = admin_page(app_as, "Single sign-on")
    at.selectbox(key="sso_claim").select("email")
    at.text_input(key="sso_value").input("finance team")
    at.selectbox(key="sso_role").select("finance")
    click(at, "Add mapping")
    assert not at.exception
    errors = shown(tab(at, "Single sign-on").error)
    assert any(e.startswith("Not mapped:") for e in errors), errors
    no_cli_words(errors)
    assert at.selectbox(key="sso_claim").value == "email"
    assert at.text_input(key="sso_value").value == "finance team"
    assert at.selectbox(key="sso_role").value == "finance"

    at.selectbox(key="sso_claim").select("group")
    click(at, "Add mapping")
    assert at.session_state["admin_tab"] == "Single sign-on"
    assert any("Mapped the group" in s for s in shown(tab(at, "Single sign-on").success))
    assert at.text_input(key="sso_value").value == ""
    with Session(seeded_db) as session:
        assert session.scalars(select(SsoRoleMapping.value)).all() == ["finance team"]


def test_a_refused_price_override_keeps_what_was_typed(app_as: AppAs, seeded_db: Engine) -> None:
    at = admin_page(app_as, "Price overrides")
    at.selectbox(key="ov_provider").select("openai")
    at.text_input(key="ov_input").input("2.0")
    at.text_input(key="ov_output").input("8")
    at.text_input(key="ov_note").input("our contract")
    click(at, "Add override")  # a price needs a model
    assert not at.exception
    errors = shown(tab(at, "Price overrides").error)
    assert any(e.startswith("Not added:") and "model" in e for e in errors), errors
    no_cli_words(errors)
    assert (at.text_input(key="ov_input").value, at.text_input(key="ov_output").value) == (
        "2.0",
        "8",
    )
    assert at.text_input(key="ov_note").value == "our contract"

    at.text_input(key="ov_model").input("gpt-4o")
    click(at, "Add override")
    assert not at.exception
    assert at.session_state["admin_tab"] == "Price overrides"
    assert any("Override added" in s for s in shown(tab(at, "Price overrides").success))
    assert at.text_input(key="ov_model").value == ""
    assert at.text_input(key="ov_note").value == ""


def test_sync_now_shows_the_new_status_in_the_table_when_it_ends(
    app_as: AppAs, seeded_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_MAX_RETRIES", "0")
    with socket.socket() as s:  # a port nobody listens on: the sync fails fast
        s.bind(("127.0.0.1", 0))
        closed = int(s.getsockname()[1])
    with Session(seeded_db) as session, session.begin():
        account = session.scalars(select(Account).where(Account.name == "OpenAI Prod")).one()
        account.base_url = f"http://127.0.0.1:{closed}"
    at = accounts_page(app_as)
    at.session_state["accounts_tab"] = "Test / sync"
    at.run()
    at.selectbox(key="act_account").select("OpenAI Prod")
    at.button(key="act_sync").click().run()
    run_until(at, lambda page: bool(page.error))
    assert any("cannot connect to openai" in e for e in shown(tab(at, "Test / sync").error))
    listed = at.dataframe[0].value.set_index("name")
    assert "cannot connect to openai" in listed.at["OpenAI Prod", "last_error"]
