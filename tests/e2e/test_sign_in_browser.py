"""Sign-in tried as an attacker would: Chromium, PostgreSQL, `TRACKER_ENV=production`.

Each test starts `streamlit run app.py` with production settings and checks one family of
the defects that issue 13 found: sign-out that did not sign out, a cookie that outlived it,
a session that never ended, a lockout beaten by parallel guesses, open registration on a
fresh install, invitations that were an email allow-list, and an unlock that promoted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from tests.e2e.conftest import ARTIFACTS, PRODUCTION, new_page, running_app
from tests.factories.dashboard import PASSWORD
from tracker.core.db import make_engine
from tracker.identity import sessions
from tracker.models import SignInSession, User

pytestmark = pytest.mark.e2e

SIGNED_OUT = "You were signed out. Sign in again."


@pytest.fixture
def prod(seeded_pg: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The app with production settings on the seeded database, and an engine to look."""
    engine = make_engine(seeded_pg)
    with running_app(seeded_pg, tmp_path, **PRODUCTION) as (url, _log):
        yield url, engine
    engine.dispose()


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def expect_signed_in(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Overview").first).to_be_visible()


def expect_sign_in_form(page: Any, *, saying: str | None = None) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Overview")).to_have_count(0)
    if saying:
        expect(page.get_by_text(saying)).to_be_visible()


def session_cookie(context: Any) -> dict[str, Any] | None:
    return next((c for c in context.cookies() if c["name"] == "tracker_session"), None)


def test_sign_out_ends_the_session_everywhere_and_the_cookie_is_httponly(
    prod: tuple[str, Engine], browser: Any
) -> None:
    url, engine = prod
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = new_page(context)
    sign_in(tab, url, "alice", PASSWORD)
    expect_signed_in(tab)

    cookie = session_cookie(context)
    assert cookie is not None
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; Secure over https
    assert "alice" not in cookie["value"] and cookie["value"].count(".") == 0  # opaque
    assert tab.evaluate("document.cookie").find("tracker_session") == -1  # not for scripts

    second_tab = new_page(context)
    second_tab.goto(url)
    expect_signed_in(second_tab)

    tab.get_by_role("button", name="Sign out").click()
    expect_sign_in_form(tab, saying="You have signed out.")
    assert session_cookie(context) is None
    tab.reload()
    expect_sign_in_form(tab)
    third_tab = new_page(context)
    third_tab.goto(url)
    expect_sign_in_form(third_tab)
    # The tab that was open all along is signed out at its next click.
    second_tab.get_by_role("button", name="Refresh data").click()
    expect_sign_in_form(second_tab, saying=SIGNED_OUT)
    tab.screenshot(path=str(ARTIFACTS / "signed-out.png"), full_page=True)

    # The captured cookie, replayed from another browser, signs nobody in.
    thief = browser.new_context()
    thief.add_cookies([cookie])
    stolen = new_page(thief)
    stolen.goto(url)
    expect_sign_in_form(stolen, saying=SIGNED_OUT)
    # A forged cookie (the old signed-JWT format, alg=none, claiming alice) is just unknown.
    forger = browser.new_context()
    forged = "eyJhbGciOiJub25lIn0.eyJ1c2VybmFtZSI6ImFsaWNlIn0."
    forger.add_cookies([{**cookie, "value": forged}])
    forged_page = new_page(forger)
    forged_page.goto(url)
    expect_sign_in_form(forged_page, saying="Your sign-in is no longer valid. Sign in again.")
    assert "Traceback" not in forged_page.locator("body").inner_text()
    with Session(engine) as session:
        revoked = session.scalars(select(SignInSession.revoked_reason)).all()
        assert revoked == ["signed out"]

    # Login CSRF: an attacker's own hand-off code, opened by the victim from a link (not from
    # our page), sets no cookie: the victim is not signed in as the attacker.
    with Session(engine) as session, session.begin():
        attacker = session.scalars(select(User).where(User.username == "fin")).one()
        policy = sessions.Policy(dt.timedelta(minutes=60), dt.timedelta(hours=12))
        code = sessions.start(
            session=session, user=attacker, method="password", policy=policy
        ).handoff_code
    victim = browser.new_context()
    lured = new_page(victim)
    lured.goto(f"{url}/auth/session?code={code}")
    expect_sign_in_form(lured)
    assert session_cookie(victim) is None


def test_an_idle_tab_is_signed_out_at_its_next_click(
    prod: tuple[str, Engine], browser: Any
) -> None:
    url, engine = prod
    tab = new_page(browser.new_context())
    sign_in(tab, url, "fin", PASSWORD)
    expect_signed_in(tab)
    # 61 minutes pass without a click (the clock of the session, not of the test).
    with Session(engine) as session, session.begin():
        session.execute(
            update(SignInSession).values(
                last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=61)
            )
        )
    tab.get_by_role("button", name="Refresh data").click()
    expect_sign_in_form(
        tab, saying="You were signed out after 60 minutes without activity. Sign in again."
    )
    tab.reload()
    expect_sign_in_form(tab)


def test_parallel_guesses_lock_the_account_and_unlocking_keeps_the_role(
    prod: tuple[str, Engine], browser: Any
) -> None:
    from playwright.sync_api import expect

    url, engine = prod
    guessers = []
    for _ in range(12):
        page = new_page(browser.new_context())
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill("vic")
        page.get_by_role("textbox", name="Password").fill("a wrong guess")
        guessers.append(page)
    for page in guessers:  # twelve sign-ins in flight at once
        page.get_by_role("button", name="Sign in").click(no_wait_after=True)
    for page in guessers:
        expect(page.get_by_text("Wrong username or password")).to_be_visible()
    with Session(engine) as session:
        vic = session.scalars(select(User).where(User.username == "vic")).one()
        assert vic.failed_login_count == 12  # every guess counted
        assert vic.locked_until is not None
    right = new_page(browser.new_context())
    sign_in(right, url, "vic", PASSWORD)
    expect(right.get_by_text("Wrong username or password")).to_be_visible()
    expect(right.get_by_role("heading", name="Overview")).to_have_count(0)

    # The admin lifts the lockout: vic stays a viewer.
    admin = new_page(browser.new_context(viewport={"width": 1400, "height": 1200}))
    sign_in(admin, url, "alice", PASSWORD)
    expect_signed_in(admin)
    admin.get_by_role("link", name="Admin").click()
    expect(admin.get_by_role("heading", name="Admin").first).to_be_visible()
    admin.get_by_test_id("stSelectbox").filter(has_text="User").first.click()
    admin.get_by_role("option", name="vic").click()
    expect(admin.get_by_role("button", name="Make a password-reset link for vic")).to_be_visible()
    # The previous user's form leaves while the rerun replaces it: wait for vic's alone.
    expect(admin.get_by_text("Lift a login lockout")).to_have_count(1)
    admin.get_by_text("Lift a login lockout").click()
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_text("Saved vic.")).to_be_visible()
    with Session(engine) as session:
        vic = session.scalars(select(User).where(User.username == "vic")).one()
        assert (vic.role, vic.is_active, vic.locked_until) == ("viewer", True, None)
    sign_in(right, url, "vic", PASSWORD)
    expect_signed_in(right)
    expect(right.get_by_role("link", name="Admin")).to_have_count(0)


@pytest.fixture
def fresh_prod(pg_databases: Any, tmp_path: Path) -> Iterator[tuple[str, Path, Engine]]:
    """A fresh production install: migrated, no user at all."""
    from tracker.core import migrate

    database_url = pg_databases.create()
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with running_app(database_url, tmp_path, **PRODUCTION) as (url, log):
        yield url, log, engine
    engine.dispose()


def test_a_fresh_install_has_no_registration_only_the_printed_link_and_invitations(
    fresh_prod: tuple[str, Path, Engine], browser: Any
) -> None:
    from playwright.sync_api import expect

    url, log, engine = fresh_prod
    visitor = new_page(browser.new_context())
    visitor.goto(url)
    expect(visitor.get_by_text("No admin exists yet")).to_be_visible()
    expect(visitor.get_by_role("textbox")).to_have_count(0)
    expect(visitor.get_by_role("button", name="Register")).to_have_count(0)
    visitor.screenshot(path=str(ARTIFACTS / "fresh-install.png"), full_page=True)

    setup_link = next(line.strip() for line in log.read_text().splitlines() if "/?setup=" in line)
    owner = new_page(browser.new_context(viewport={"width": 1400, "height": 1200}))
    owner.goto(setup_link)
    owner.get_by_role("textbox", name="Username").fill("root")
    owner.get_by_role("textbox", name="Email").fill("root@example.com")
    owner.get_by_label("Password (at least 12").fill("ledger quarterly tangerine")
    owner.get_by_role("textbox", name="Repeat the password").fill("ledger quarterly tangerine")
    owner.get_by_role("button", name="Save").click()
    expect(owner.get_by_role("heading", name="Overview").first).to_be_visible()
    again = new_page(browser.new_context())
    again.goto(setup_link)
    expect(again.get_by_text("This link cannot be used")).to_be_visible()

    # The admin invites the CFO as admin; the link is the only way in, and only once.
    owner.get_by_role("link", name="Admin").click()
    owner.get_by_role("tab", name="Invitations").click()
    panel = owner.get_by_role("tabpanel").filter(has_text="An invitation is a single-use link")
    panel.get_by_role("textbox", name="Email").fill("cfo@example.com")
    panel.get_by_test_id("stSelectbox").click()
    owner.get_by_role("option", name="admin").click()
    panel.get_by_role("button", name="Invite").click()
    code = panel.get_by_test_id("stCode")
    expect(code).to_contain_text("/?invite=")
    owner.screenshot(path=str(ARTIFACTS / "admin-invitation.png"), full_page=True)
    invite_link = code.inner_text().strip()

    stranger = new_page(browser.new_context())
    stranger.goto(url)
    expect(stranger.get_by_role("button", name="Sign in")).to_be_visible()
    expect(stranger.get_by_text("invit", exact=False)).to_have_count(0)
    expect(stranger.get_by_role("button", name="Register")).to_have_count(0)

    cfo = new_page(browser.new_context())
    cfo.goto(invite_link)
    expect(cfo.get_by_text("You are invited as admin")).to_be_visible()
    cfo.get_by_role("textbox", name="Username").fill("cfo")
    cfo.get_by_label("Password (at least 12").fill("spreadsheet harbour violin")
    cfo.get_by_role("textbox", name="Repeat the password").fill("spreadsheet harbour violin")
    cfo.get_by_role("button", name="Save").click()
    expect(cfo.get_by_role("heading", name="Overview").first).to_be_visible()
    reuse = new_page(browser.new_context())
    reuse.goto(invite_link)
    expect(reuse.get_by_text("This link cannot be used")).to_be_visible()
    with Session(engine) as session:
        cfo_user = session.scalars(select(User).where(User.username == "cfo")).one()
        assert (cfo_user.email, cfo_user.role) == ("cfo@example.com", "admin")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, made for this test only."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_over_https_the_cookie_is_also_secure(seeded_pg: str, tmp_path: Path, browser: Any) -> None:
    tls = self_signed(tmp_path)
    with running_app(seeded_pg, tmp_path, tls=tls, **PRODUCTION) as (url, _log):
        assert url.startswith("https://")
        context = browser.new_context(ignore_https_errors=True)
        tab = new_page(context)
        sign_in(tab, url, "alice", PASSWORD)
        expect_signed_in(tab)
        cookie = session_cookie(context)
        assert cookie is not None
        assert (cookie["httpOnly"], cookie["sameSite"], cookie["secure"]) == (True, "Strict", True)
