"""The app with a read replica: a real streaming standby (`tests.replication`), pages run with
AppTest, every SQL statement counted by the server it went to.

Proven here: the pages' figures and the exports are read from the standby while the primary
sees only sign-in and per-user reads; a change shows on the rerun that follows it though the
standby has not applied it; a standby behind by more than REPLICA_MAX_LAG_SECONDS is reported
on the page (and the figures shown are the standby's); a standby that stops hands the reads
to the primary, with a notice and no error.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.factories.dashboard import expected_cost, seed_all
from tests.replication import StreamingPair
from tests.ui.conftest import new_app, signed_in
from tests.ui.test_app import ALL_PAGES
from tracker.core import migrate
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine
from tracker.ui import data
from tracker.ui.components import money

# The primary's share of signed-in pages: the session check, the user's saved views, and the
# process's one schema check (pg_catalog) when it builds its runtime.
PER_USER_TABLES = {"sessions", "users", "saved_views", "pg_catalog"}
PAGES = ["pages/overview.py", "pages/usage.py", "pages/budgets.py", "pages/forecast.py"]
REPLICA_NOTICE = "read replica"


@pytest.fixture(scope="module")
def replicated(streaming_pair: StreamingPair) -> StreamingPair:
    """The pair's primary migrated and seeded (once for this module), the standby caught up."""
    engine = make_engine(streaming_pair.primary_url)
    migrate.upgrade(engine)
    cipher = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))
    with Session(engine) as session, session.begin():
        seed_all(session, cipher, dt.datetime.now(dt.UTC).date())
    engine.dispose()
    streaming_pair.wait_caught_up()
    return streaming_pair


@pytest.fixture
def pair(
    replicated: StreamingPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StreamingPair]:
    """The app's environment pointing at the pair (lag reported past 1 s); the standby
    streams and has caught up before and after each test."""
    env = {
        "DATABASE_URL": replicated.primary_url,
        "DATABASE_REPLICA_URL": replicated.standby_url,
        "REPLICA_MAX_LAG_SECONDS": "1",
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "TRACKER_ENV": "development",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    replicated.wait_caught_up()
    yield replicated
    replicated.resume_replay()
    replicated.wait_caught_up()


@dataclass
class Statements:
    """Every SQL statement the app sends, by the port of the server it went to."""

    by_port: dict[int, list[str]] = field(default_factory=dict)

    def record(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.by_port.setdefault(conn.engine.url.port, []).append(statement)

    def tables(self, port: int) -> set[str]:
        found: set[str] = set()
        for statement in self.by_port.get(port, []):
            found |= set(re.findall(r'\b(?:FROM|JOIN|UPDATE|INTO)\s+"?(\w+)', statement, re.I))
        return found

    def clear(self) -> None:
        self.by_port.clear()


@pytest.fixture
def statements() -> Iterator[Statements]:
    seen = Statements()
    event.listen(Engine, "before_cursor_execute", seen.record)
    yield seen
    event.remove(Engine, "before_cursor_execute", seen.record)


def notices(at: AppTest) -> list[str]:
    return [n.value for n in [*at.warning, *at.info] if REPLICA_NOTICE in n.value]


def org_budget(at: AppTest) -> float:
    shown = at.dataframe[0].value.set_index("scope_label")
    return float(shown.at["Organisation", "monthly_budget"])


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


def test_pages_and_exports_read_from_the_standby_and_the_primary_only_signs_in(
    pair: StreamingPair, statements: Statements
) -> None:
    at = signed_in(new_app(), "alice", "admin").run()
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, page
        assert notices(at) == [], page
    at.switch_page("pages/exports.py").run()
    button(at, "Prepare the file").click().run()
    assert not at.exception
    day = dt.datetime.now(dt.UTC).date()
    assert any(money(expected_cost(day.replace(day=1), day, day)) in s.value for s in at.success)

    primary, standby = statements.tables(pair.primary_port), statements.tables(pair.standby_port)
    assert primary <= PER_USER_TABLES, primary - PER_USER_TABLES
    assert {"usage_daily", "accounts", "usage_records"} <= standby, standby
    assert not standby & {"sessions", "saved_views"}

    # Every other page renders too: nothing the standby serves tries to write.
    for page in sorted(set(ALL_PAGES) - set(PAGES)):
        at.switch_page(page).run()
        assert not at.exception, page
        assert notices(at) == [], page


def test_a_change_shows_at_once_and_a_standby_behind_is_reported_with_its_own_figures(
    pair: StreamingPair,
) -> None:
    fin = signed_in(new_app(), "fin", "finance").run()
    fin.switch_page("pages/budgets.py").run()
    assert org_budget(fin) == 120  # the accounts' budgets added up: no organisation budget

    pair.pause_replay()
    fin.selectbox(key="budget_scope").select("org")
    fin.text_input(key="budget_amount").input("750.00")
    button(fin, "Save budget").click().run()
    # The rerun after the change reads the primary: the paused standby does not have it.
    assert any("Saved the budget of Organisation" in s.value for s in fin.success)
    assert org_budget(fin) == 750
    assert notices(fin) == []

    # Another app process (no cached frames) reads the standby, which is behind: it says so.
    pair.wait_received_not_applied()
    time.sleep(1.2)  # past REPLICA_MAX_LAG_SECONDS since the last change it applied
    st.cache_data.clear()
    other = signed_in(new_app(), "alice", "admin").run()
    other.switch_page("pages/budgets.py").run()
    assert not other.exception
    assert org_budget(other) == 120  # the standby's figure
    [warning] = notices(other)
    assert re.search(r"These figures may be up to \d+ seconds? behind", warning), warning

    pair.resume_replay()
    pair.wait_caught_up()
    button(other, "Refresh data").click().run()
    assert org_budget(other) == 750
    assert notices(other) == []


def test_a_stopped_standby_hands_the_reads_to_the_primary_with_a_notice(
    pair: StreamingPair, statements: Statements
) -> None:
    at = signed_in(new_app(), "vic", "viewer").run()
    shown = {m.label: m.value for m in at.metric}
    assert shown and notices(at) == []

    pair.stop_standby()
    try:
        # The replica was fine at its last check (cached): the frames' queries fail over.
        for loader in data._FRAME_LOADERS:
            loader.clear()
        statements.clear()
        at.run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric} == shown
        [notice] = notices(at)
        assert "from the primary database" in notice
        assert "usage_daily" in statements.tables(pair.primary_port)

        # The next check finds it down: the page reads the primary from the start.
        button(at, "Refresh data").click().run()
        assert not at.exception
        assert {m.label: m.value for m in at.metric} == shown
        assert len(notices(at)) == 1
    finally:
        pair.start_standby()

    # Back: the next check (Refresh data) sends the figures to it again.
    statements.clear()
    button(at, "Refresh data").click().run()
    assert notices(at) == []
    assert "usage_daily" in statements.tables(pair.standby_port)
    assert "usage_daily" not in statements.tables(pair.primary_port)
