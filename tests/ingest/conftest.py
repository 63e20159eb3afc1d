"""Fixtures of the sync tests: the fake provider server and a runtime on the test database."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.fakes.provider_server import ProviderServer
from tracker.core.config import load_settings
from tracker.core.crypto import CredentialCipher
from tracker.core.db import make_session_factory
from tracker.core.runtime import Runtime
from tracker.ingest import sync

TODAY = dt.date(2026, 8, 4)  # the sync's clock in these tests
MAX_RETRIES = 3


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


@pytest.fixture
def runtime(committed_db: Engine, tmp_path, monkeypatch) -> Runtime:
    monkeypatch.setattr(sync, "utc_today", lambda: TODAY)
    settings = load_settings(
        {
            "DATABASE_URL": committed_db.url.render_as_string(hide_password=False),
            "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "SECRET_KEY": TEST_SECRET_KEY,
            "DATA_DIR": str(tmp_path / "data"),
            "HTTP_MAX_RETRIES": str(MAX_RETRIES),
            "HTTP_BACKOFF_FACTOR": "0.01",
            "HTTP_BACKOFF_MAX_SECONDS": "1",
            "HTTP_TIMEOUT_SECONDS": "5",
        },
        dotenv_path=None,
    )
    return Runtime(
        settings=settings,
        engine=committed_db,
        session_factory=make_session_factory(committed_db),
        cipher=CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY)),
    )
