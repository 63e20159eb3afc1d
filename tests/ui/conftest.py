"""Fixtures for AppTest: a committed, seeded database, clean Streamlit caches, an app factory."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories.dashboard import seed_all
from tracker.core.crypto import CredentialCipher

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


def signed_in(at: AppTest, username: str, role: str) -> AppTest:
    """`at` signed in as `username` (the session claims `role`), by pre-seeding session state."""
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username.title()
    at.session_state["roles"] = [role]
    at.session_state["logout"] = None
    return at


@pytest.fixture
def app_as(seeded_db: Engine) -> Callable[[str, str], AppTest]:
    """The app signed in as `username` (role `role`) on the seeded database."""
    return lambda username, role: signed_in(new_app(), username, role)
