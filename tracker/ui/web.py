"""The HTTP side of sign-in: routes that `app.py` mounts on Streamlit's server (`st.App`).

A Streamlit script cannot set a cookie that JavaScript cannot read, so the cookie is set
here, by an HTTP response:
- `GET /auth/session?code=...` trades the one-time hand-off code a sign-in made
  (`tracker.identity.sessions`) for a fresh session token, set as `tracker_session`
  (HttpOnly, SameSite=Strict, Secure over HTTPS, only the opaque token), then goes to the
  page the sign-in started at (`next`, rebuilt by `saved_views.checked_address`), else home;
- `GET /auth/signout` ends the session on the server and deletes the cookie;
- `GET /auth/sso/login` and `/auth/sso/callback` sign in through the OpenID Connect
  provider (Authlib) and set the same cookie; the page to return to waits, checked, beside
  Authlib's state in the signed session of Streamlit's server (never in the provider's URL).
The lifespan prints a first-admin setup link while the database has no user.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tracker.core import audit
from tracker.core.config import Settings, load_settings
from tracker.core.db import require_schema
from tracker.core.errors import TrackerError
from tracker.core.runtime import Runtime, build_runtime
from tracker.identity import links, saved_views, sessions, sso, users
from tracker.models import utcnow

log = logging.getLogger(__name__)

COOKIE_NAME = "tracker_session"
SSO_CLIENT = "tracker"
SSO_LANDING = "tracker_landing"  # in request.session, from the SSO login to its callback


@functools.cache
def _runtime() -> Runtime:
    runtime = build_runtime(load_settings())
    require_schema(runtime.engine)
    return runtime


def public_url(settings: Settings) -> str:
    """PUBLIC_URL, or, when it is not set, this server's own port on localhost."""
    from streamlit import config

    return settings.public_url or f"http://localhost:{config.get_option('server.port')}"


def _is_https(request: Request) -> bool:
    # Behind a TLS proxy on this machine uvicorn takes the scheme from X-Forwarded-Proto.
    return request.url.scheme == "https" or public_url(_runtime().settings).startswith("https:")


def _home(request: Request, *, query: str = "", landing: str = "") -> RedirectResponse:
    """Back to the app: its home page, or `landing` (a checked page address, `_landing`)."""
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/{landing}{query}", status_code=303)


def _landing(target: object) -> str:
    """The page a sign-in returns to: `target` as `saved_views.checked_address` rebuilds it
    (a page's url path and only that page's query parameters), "" (home) for anything else."""
    return saved_views.checked_address(target) if isinstance(target, str) else ""


def _with_cookie(request: Request, token: str, landing: str = "") -> Response:
    response = _home(request, landing=landing)
    response.set_cookie(
        COOKIE_NAME,
        token,
        max_age=_runtime().settings.session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_is_https(request),
    )
    return response


def _from_this_site(request: Request) -> bool:
    """Whether the browser says the request came from one of our own pages.

    The cookie routes act only on same-origin navigations: a link on another site could
    otherwise sign a victim into the attacker's account (a hand-off code) or sign them out.
    Browsers send Sec-Fetch-Site on every navigation; a client that sends none is judged
    by Origin or Referer."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin") or request.headers.get("referer") or ""
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own or origin.startswith(own + "/")


async def complete_sign_in(request: Request) -> Response:
    code = request.query_params.get("code", "")
    if not _from_this_site(request):
        log.warning("a sign-in hand-off from another site was refused")
        return _home(request)

    def redeem() -> str | None:
        with _runtime().session_factory.begin() as session:
            return sessions.redeem_handoff(session=session, code=code)

    token = await run_in_threadpool(redeem) if code else None
    landing = _landing(request.query_params.get("next"))
    if token is None:
        return _home(request, landing=landing)  # the sign-in form shows again
    return _with_cookie(request, token, landing)


async def sign_out(request: Request) -> Response:
    if not _from_this_site(request):
        return _home(request)
    token = request.cookies.get(COOKIE_NAME)
    if token:

        def revoke() -> None:
            with _runtime().session_factory.begin() as session:
                sessions.revoke(session=session, token=token, reason="signed out")

        await run_in_threadpool(revoke)
    response = _home(request, query="?signed_out=1")
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@functools.cache
def _oauth() -> Any:
    from authlib.integrations.starlette_client import OAuth

    settings = _runtime().settings
    oauth = OAuth()
    oauth.register(
        name=SSO_CLIENT,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_metadata_url,
        # PKCE too: a stolen authorization code is useless without this server's verifier.
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    return oauth.create_client(SSO_CLIENT)


async def sso_login(request: Request) -> Response:
    settings = _runtime().settings
    if not settings.sso_enabled:
        return _home(request)
    callback = f"{public_url(settings)}/auth/sso/callback"
    try:
        response: Response = await _oauth().authorize_redirect(request, callback)
    except Exception:  # the provider is down or its discovery document is unreadable
        log.warning("single sign-on: could not reach the identity provider", exc_info=True)
        return _home(request, query="?sso=unavailable")
    # Kept server-signed beside Authlib's state, checked again at the callback.
    request.session[SSO_LANDING] = _landing(request.query_params.get("next"))
    return response


async def sso_callback(request: Request) -> Response:
    settings = _runtime().settings
    if not settings.sso_enabled:
        return _home(request)
    client = _oauth()
    landing = _landing(request.session.pop(SSO_LANDING, None))
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        claims.update(await client.userinfo(token=token))
    except Exception:  # a replayed or forged callback, or the provider refused
        log.warning("single sign-on: the callback was refused", exc_info=True)
        return _home(request, query="?sso=refused")
    groups = claims.get(settings.oidc_groups_claim)
    email, name = claims.get("email"), claims.get("name")
    issuer, sub = claims.get("iss"), claims.get("sub")
    subject = f"{issuer}|{sub}"[:512] if isinstance(issuer, str) and isinstance(sub, str) else None

    def start() -> str:
        policy = sessions.Policy.from_settings(settings)
        with _runtime().session_factory.begin() as session:
            user = sso.sign_in(
                session=session,
                email=email if isinstance(email, str) else None,
                # Only an email the provider says it verified: a missing claim or "false"
                # could let anyone assert an admin's address.
                email_verified=claims.get("email_verified") in (True, "true"),
                name=name if isinstance(name, str) else None,
                groups=[g for g in groups if isinstance(g, str)]
                if isinstance(groups, list)
                else [],
                subject=subject,
            )
            user.last_login_at = utcnow()
            started = sessions.start(session=session, user=user, method="sso", policy=policy)
            audit.record(
                session=session,
                actor=user.username,
                action="user.sign_in",
                target=user.username,
                method="sso",
            )
            return sessions.redeem_handoff(session=session, code=started.handoff_code) or ""

    try:
        cookie_token = await run_in_threadpool(start)
    except TrackerError:
        log.info("single sign-on: an identity without access was refused")
        return _home(request, query="?sso=refused")
    return _with_cookie(request, cookie_token, landing)


def routes() -> list[Route]:
    return [
        Route("/auth/session", complete_sign_in, methods=["GET"]),
        Route("/auth/signout", sign_out, methods=["GET"]),
        Route("/auth/sso/login", sso_login, methods=["GET"]),
        Route("/auth/sso/callback", sso_callback, methods=["GET"]),
    ]


def announce_setup_link() -> None:
    """While no user exists, print a first-admin link (the only way in besides the CLI)."""
    try:
        runtime = _runtime()
        with runtime.session_factory.begin() as session:
            if users.count_users(session=session) > 0:
                return
            token = links.issue_setup(session=session)
    except TrackerError as exc:
        log.error("cannot prepare the first-admin link: %s", exc)
        return
    link = links.url(public_url(runtime.settings), links.Purpose.SETUP, token)
    # Printed, not logged: it is shown once to whoever started the server, like a password.
    print(  # noqa: T201
        "\nNo admin exists yet. Open this link to create the first admin "
        f"(valid {int(links.SETUP_VALID.total_seconds() // 3600)} hours, once):\n  {link}\n"
        "A new link: python -m tracker users setup-link\n",
        flush=True,
    )


@asynccontextmanager
async def lifespan(_app: object) -> AsyncIterator[None]:
    await run_in_threadpool(announce_setup_link)
    yield
