"""Fixtures for AppTest: a committed, seeded database, clean Streamlit caches, an app factory."""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories.dashboard import seed_all
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_engine
from tracker.identity import sessions
from tracker.models import User
from tracker.ui.auth import TOKEN_KEY, USER_KEY

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(autouse=True)
def _clean_streamlit_caches() -> Iterator[None]:
    # Cached resources (the engine) and frames outlive a test otherwise.
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def seeded_db(app_env: dict[str, str], committed_db: Engine) -> Engine:
    """The committed test database with accounts, usage, sync runs and three users."""
    cipher = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))
    with Session(committed_db) as session, session.begin():
        seed_all(session, cipher, dt.datetime.now(dt.UTC).date())
    return committed_db


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def start_session(username: str) -> str:
    """A real server-side session for `username` in the app's database; its token."""
    engine = make_engine(os.environ["DATABASE_URL"])
    try:
        with Session(engine) as session, session.begin():
            user = session.scalar(select(User).where(User.username == username))
            assert user is not None, f"no user {username!r} in the test database"
            policy = sessions.Policy(dt.timedelta(minutes=60), dt.timedelta(hours=12))
            started = sessions.start(session=session, user=user, method="password", policy=policy)
    finally:
        engine.dispose()
    return started.token


def signed_in(at: AppTest, username: str, role: str | None = None) -> AppTest:
    """`at` signed in as `username` through a real session, as a sign-in leaves the tab.

    `role` is only a reminder for the reader: the role always comes from the database.
    """
    at.session_state[TOKEN_KEY] = start_session(username)
    return at


def run_until(at: AppTest, done: Callable[[AppTest], bool], *, timeout: float = 30) -> AppTest:
    """Rerun `at` until `done(at)`: for work the page runs in the background (Sync now)."""
    deadline = time.monotonic() + timeout
    while not done(at.run()):
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.2)
    return at


def current_user_of(at: AppTest) -> tuple[str, str] | None:
    """(username, role) that the app signed in for its last run, or None."""
    user = at.session_state[USER_KEY] if USER_KEY in at.session_state else None
    return (user.username, user.role) if user is not None else None


@pytest.fixture
def app_as(seeded_db: Engine) -> Callable[[str, str], AppTest]:
    """The app signed in as `username` (role `role`) on the seeded database."""
    return lambda username, role: signed_in(new_app(), username, role)
