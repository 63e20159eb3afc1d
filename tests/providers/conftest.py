"""Fixtures for connector tests: the fake provider server and a fast-retrying HTTP session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.fakes.provider_server import ProviderServer
from tracker.providers.base import make_http_session

MAX_RETRIES = 3


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = make_http_session(max_retries=MAX_RETRIES, backoff_factor=0.01, backoff_max=1)
    yield session
    session.close()
