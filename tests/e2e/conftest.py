"""Browser-test fixtures: Debian's Chromium, a seeded PostgreSQL, `streamlit run app.py`."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import IN_CI, TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.factories.dashboard import seed_all
from tracker.core.crypto import CredentialCipher

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PRODUCTION = {"TRACKER_ENV": "production"}
STARTUP_DEADLINE_S = 90  # generous: a cold start imports pandas, plotly and Streamlit


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} not found; install it with `apt-get install -y chromium`"
        if IN_CI:
            pytest.fail(message + " (CI=true: the browser test must run)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def seeded_pg(pg_databases, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, migrated PostgreSQL database with the standard seed; yields its URL."""
    from tracker.core import migrate
    from tracker.core.db import make_engine

    url = pg_databases.create()
    engine: Engine = make_engine(url)
    migrate.upgrade(engine)
    cipher = CredentialCipher(base64.urlsafe_b64decode(TEST_ENCRYPTION_KEY))
    with Session(engine) as session, session.begin():
        seed_all(session, cipher, dt.datetime.now(dt.UTC).date())
    engine.dispose()
    yield url


@contextmanager
def running_app(
    database_url: str,
    tmp_path: Path,
    *,
    port: int | None = None,
    tls: tuple[Path, Path] | None = None,
    **settings: str,
) -> Iterator[tuple[str, Path]]:
    """`streamlit run app.py` on a loopback port (a free one by default); yields its base URL
    and its log. With `tls` (certificate, key files) it serves HTTPS."""
    port = port or free_port()
    scheme = "https" if tls else "http"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("ENCRYPTION_KEY_PREVIOUS",)},
        "DATABASE_URL": database_url,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "TRACKER_ENV": "development",
        "PUBLIC_URL": f"{scheme}://127.0.0.1:{port}",
        **settings,
    }
    log_path = tmp_path / "streamlit.log"
    # The project's Streamlit config, as `make run` and the image use it (but no .env).
    shutil.copytree(ROOT / ".streamlit", tmp_path / ".streamlit")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(ROOT / "app.py"),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
                *(
                    ["--server.sslCertFile", str(tls[0]), "--server.sslKeyFile", str(tls[1])]
                    if tls
                    else []
                ),
            ],
            cwd=tmp_path,  # no .env from the checkout
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_DEADLINE_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(f"streamlit exited early:\n{log_path.read_text()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    time.sleep(0.3)
            else:
                pytest.fail(f"streamlit did not listen within {STARTUP_DEADLINE_S}s")
            yield f"{scheme}://127.0.0.1:{port}", log_path
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def server(seeded_pg: str, tmp_path: Path) -> Iterator[str]:
    """The app on the seeded database, development settings; yields its base URL."""
    with running_app(seeded_pg, tmp_path) as (url, _log):
        yield url


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(context: Any) -> Any:
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page
