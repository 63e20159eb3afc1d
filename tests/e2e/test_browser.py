"""The real thing: `streamlit run app.py` against a seeded PostgreSQL, driven by Chromium.

Uses Debian's Chromium (`/usr/bin/chromium`) through Playwright for Python. Without it the
test is skipped locally and fails under CI=true. A screenshot of the Overview is saved to
tests/artifacts/overview.png.
"""

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
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import IN_CI, TEST_ENCRYPTION_KEY, TEST_SECRET_KEY
from tests.factories.dashboard import PASSWORD, expected_cost, seed_all
from tracker.core.crypto import CredentialCipher
from tracker.ui.components import money

pytestmark = pytest.mark.e2e

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
STARTUP_DEADLINE_S = 90  # generous: a cold start imports pandas, plotly and Streamlit


def _free_port() -> int:
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


@pytest.fixture
def server(seeded_pg: str, tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port; yields its base URL."""
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("ENCRYPTION_KEY_PREVIOUS",)},
        "DATABASE_URL": seeded_pg,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "SECRET_KEY": TEST_SECRET_KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "TRACKER_ENV": "development",
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
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_fresh_server_shows_every_page_url_only_the_sign_in_form(
    server: str, chromium: Path
) -> None:
    """The very first requests of a new server process, anonymous, one session per page URL.

    Streamlit starts a process with a pages/ folder in its legacy mode, where a page URL runs
    the page file directly; each page's first statement sends it through the router.
    """
    from playwright.sync_api import expect, sync_playwright

    from tracker.ui.router import PAGES

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            expect.set_options(timeout=60_000)
            for spec in PAGES:
                context = browser.new_context()  # a new browser: a new Streamlit session
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{server}/{spec.file.removesuffix('.py')}")
                expect(page.get_by_role("button", name="Sign in")).to_be_visible()
                expect(page.get_by_role("heading", name=spec.title, exact=True)).to_have_count(0)
                body = page.locator("body").inner_text()
                assert "@example.org" not in body, (spec.file, body)
                assert "Signed in as" not in body, (spec.file, body)
                # Not even the names of the pages.
                expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
                assert page.get_by_role("link", name=spec.file.removesuffix(".py")).count() == 0
                if spec.file == "admin.py":
                    page.screenshot(path=str(ARTIFACTS / "anonymous-admin.png"), full_page=True)
                context.close()
        finally:
            browser.close()


def test_sign_in_and_see_the_overview(server: str, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    today = dt.datetime.now(dt.UTC).date()
    mtd = money(expected_cost(today.replace(day=1), today, today))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.set_default_timeout(60_000)
            # expect() has its own 5 s default; a loaded 2-core CI machine needs longer.
            expect.set_options(timeout=60_000)
            page.goto(server)
            page.get_by_role("textbox", name="Username").fill("alice")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()

            # `.first`: while a slow rerun is replacing the page, Streamlit can show the old
            # run's (stale) heading beside the new one.
            expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
            # has_text is a case-insensitive substring: match the label exactly instead.
            spend = page.get_by_test_id("stMetric").filter(
                has=page.get_by_text("Month-to-date spend", exact=True)
            )
            expect(spend).to_contain_text(mtd)
            chart = page.locator(".js-plotly-plot").first
            expect(chart).to_be_visible()
            # Plotly draws one bar trace per provider once the chart has rendered.
            expect(chart.locator("g.trace.bars").first).to_be_attached()
            expect(page.get_by_role("heading", name="Top models this month").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "overview.png"), full_page=True)

            # A page the admin may open through the router's navigation.
            page.get_by_role("link", name="Sync health").click()
            expect(page.get_by_role("heading", name="Sync health").first).to_be_visible()
        finally:
            browser.close()


def test_viewer_cannot_open_admin_by_url(server: str, chromium: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            # expect() has its own 5 s default; a loaded 2-core CI machine needs longer.
            expect.set_options(timeout=60_000)
            # Signed out, a page URL shows the sign-in form and nothing else.
            page.goto(f"{server}/admin")
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            expect(page.get_by_role("heading", name="Admin")).to_have_count(0)
            page.get_by_role("textbox", name="Username").fill("vic")
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            # `.first`: while a slow rerun is replacing the page, Streamlit can show the old
            # run's (stale) heading beside the new one; seen once in a full, loaded run.
            expect(page.get_by_role("heading", name="Overview").first).to_be_visible()
            expect(page.get_by_role("link", name="Admin")).to_have_count(0)
            expect(page.get_by_role("link", name="Accounts")).to_have_count(0)
        finally:
            browser.close()
