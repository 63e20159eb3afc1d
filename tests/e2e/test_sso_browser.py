"""Single sign-on through a real OpenID Connect provider, in Chromium, on PostgreSQL.

The provider is the certified `oidc-provider` package from the npm registry, run with Node
(`tests/oidc/provider.mjs`; `.ci/run` installs it with `npm ci`). Its development sign-in
page takes any password; the login name picks the identity. A mapped group gets in with its
role; an identity nobody invited or mapped is refused; password sign-in is turned off.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import IN_CI
from tests.e2e.conftest import ARTIFACTS, PRODUCTION, ROOT, free_port, new_page, running_app
from tracker.core.db import make_engine
from tracker.models import SignInSession, SsoRoleMapping, User

pytestmark = pytest.mark.e2e

OIDC_DIR = ROOT / "tests" / "oidc"
CLIENT_ID = "ai-cost-tracker"


@pytest.fixture
def oidc_provider_for() -> Iterator[Any]:
    """Start the OpenID Connect provider for an app at a given callback; yields a starter."""
    node = shutil.which("node")
    if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").exists():
        message = "Node or tests/oidc/node_modules missing; run `npm ci --prefix tests/oidc`"
        if IN_CI:
            pytest.fail(message + " (CI=true: the sign-on test must run)")
        pytest.skip(message)
    started: list[subprocess.Popen[str]] = []

    def start(callback: str, secret: str) -> str:
        port = free_port()
        proc = subprocess.Popen(
            [node, "provider.mjs", str(port), CLIENT_ID, secret, callback],
            cwd=OIDC_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(proc)
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.startswith("ready "):
                return line.split(" ", 1)[1].strip()
            if not line and proc.poll() is not None:
                break
        pytest.fail("the OpenID Connect provider did not start")

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture
def sso_app(seeded_pg: str, tmp_path: Path, oidc_provider_for: Any) -> Iterator[tuple[str, Engine]]:
    engine = make_engine(seeded_pg)
    with Session(engine) as session, session.begin():
        session.add(SsoRoleMapping(claim="group", value="finance-team", role="finance"))
    port = free_port()
    secret = secrets.token_urlsafe(24)
    issuer = oidc_provider_for(f"http://127.0.0.1:{port}/auth/sso/callback", secret)
    settings = {
        **PRODUCTION,
        "OIDC_METADATA_URL": f"{issuer}/.well-known/openid-configuration",
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": secret,
        "OIDC_LABEL": "Example SSO",
        "PASSWORD_SIGN_IN": "false",
    }
    with running_app(seeded_pg, tmp_path, port=port, **settings) as (url, _log):
        yield url, engine
    engine.dispose()


def sign_on(page: Any, url: str, login: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in with Example SSO").click()
    # The provider's own (development) sign-in page.
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password works here")
    page.locator("button[type=submit]").click()


def test_sso_signs_a_mapped_user_in_and_refuses_an_unmapped_one(
    sso_app: tuple[str, Engine], browser: Any
) -> None:
    from playwright.sync_api import expect

    url, engine = sso_app
    visitor = new_page(browser.new_context())
    visitor.goto(url)
    expect(visitor.get_by_role("button", name="Sign in with Example SSO")).to_be_visible()
    expect(visitor.get_by_role("textbox", name="Username")).to_have_count(0)  # passwords off

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    mapped = new_page(context)
    sign_on(mapped, url, "finance-lead")
    expect(mapped.get_by_role("heading", name="Overview").first).to_be_visible()
    expect(mapped.get_by_text("Signed in as")).to_contain_text("finance")
    expect(mapped.get_by_role("link", name="Accounts")).to_have_count(0)  # finance, not admin
    expect(mapped.get_by_test_id("stMetric").first).to_be_visible()
    mapped.screenshot(path=str(ARTIFACTS / "sso-signed-in.png"), full_page=True)
    cookie = next(c for c in context.cookies() if c["name"] == "tracker_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    with Session(engine) as session:
        fiona = session.scalars(select(User).where(User.email == "finance.lead@example.com")).one()
        assert fiona.role == "finance"
        assert fiona.sso_subject is not None and fiona.sso_subject.endswith("|finance-lead")
        methods = session.scalars(
            select(SignInSession.method).where(SignInSession.user_id == fiona.id)
        ).all()
        assert methods == ["sso"]

    stranger = new_page(browser.new_context())
    sign_on(stranger, url, "stranger")
    expect(stranger.get_by_text("Single sign-on did not sign you in")).to_be_visible()
    expect(stranger.get_by_role("heading", name="Overview")).to_have_count(0)
    with Session(engine) as session:
        assert session.scalar(select(User).where(User.email == "stranger@example.com")) is None
