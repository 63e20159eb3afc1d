"""Sign-in, sign-out and the server-side role check, for every script run.

Who is signed in is decided by the database at every run (`tracker.identity.sessions`): the
browser holds only an opaque token in the HttpOnly cookie `tracker_session`, which the
sign-in routes of `tracker.ui.web` set and delete. A sign-in here checks the password
(`users.check_login`: one atomic counter update, the same work for every failure), opens a
session, keeps its token for this tab and sends the browser to `/auth/session` with a
one-time code, which sets the cookie. A revoked, idle or expired session shows the sign-in
form, with the reason, at the tab's next interaction.

The form is drawn at the address the visitor asked for (the router registers every page's
address for that), and a sign-in returns there: the page and the query parameters it reads
(`saved_views.address`) go to `/auth/session` (or through the single sign-on) as `next`, which
the route checks again before it sends the browser back.

The page also answers the single-use links of `tracker.identity.links`: `?setup=` (first
admin), `?invite=` and `?reset=`. There is no open registration.

streamlit-authenticator is not used for sign-in any more: its cookie is set from JavaScript
(never HttpOnly) and it cannot revoke a session on the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import streamlit as st
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner import get_script_run_ctx

from tracker.core import audit
from tracker.core.errors import PermissionDenied, TrackerError
from tracker.core.runtime import Runtime
from tracker.identity import links, sessions, users
from tracker.ui import data
from tracker.ui.components import plain_text
from tracker.ui.web import COOKIE_NAME

log = logging.getLogger(__name__)

TOKEN_KEY = "auth_token"
USER_KEY = "auth_user"
LOGIN_FAILED = (
    "Wrong username or password, or the account is locked for 15 minutes after 5 failed "
    "attempts. Check your details and try again, or ask an admin for a reset link."
)
SSO_MESSAGES = {
    "refused": "Single sign-on did not sign you in: your identity has no access here. Ask an "
    "admin to invite you or to map your email or group to a role.",
    "unavailable": "The single-sign-on provider cannot be reached. Try again shortly, or sign "
    "in with your password.",
}


# role -> the address a sign-in with that role returns to (see `Auth.sign_in_page`).
Landing = Callable[[str | None], str]


@dataclass(frozen=True)
class SignedInUser:
    """The user of this browser session, as read from the database at this run."""

    username: str
    name: str
    role: str
    session_id: int


def redirect(url: str) -> None:
    """Send the browser to `url` (same tab), as `st.login` does."""
    context = get_script_run_ctx()
    if context is None:
        return
    message = ForwardMsg()
    message.auth_redirect.url = url
    context.enqueue(message)


def _policy() -> sessions.Policy:
    return sessions.Policy.from_settings(data.get_settings())


def _tokens() -> list[str]:
    """The tokens this tab may be signed in with: the cookie's, then one kept by a sign-in."""
    found = [st.context.cookies.get(COOKIE_NAME), st.session_state.get(TOKEN_KEY)]
    return [t for t in dict.fromkeys(found) if isinstance(t, str) and t]


class Auth:
    """Sign-in for one script run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.policy = sessions.Policy.from_settings(runtime.settings)
        self.ended: sessions.Ended | None = None  # why this tab's last session ended
        self.landing: Landing = lambda _role: ""  # the home page

    def gate(self) -> SignedInUser | None:
        """Return the signed-in user, or None: then draw `sign_in_page`, nothing else."""
        for token in _tokens():
            with self.runtime.session_factory.begin() as session:
                found = sessions.resolve(session=session, token=token, policy=self.policy)
            if isinstance(found, sessions.SessionUser):
                user = SignedInUser(found.username, found.name, found.role, found.session_id)
                st.session_state[TOKEN_KEY] = token
                st.session_state[USER_KEY] = user
                return user
            self.ended = self.ended or found
        st.session_state.pop(TOKEN_KEY, None)
        st.session_state.pop(USER_KEY, None)
        return None

    # --- the page an anonymous visitor sees --------------------------------------------------

    def sign_in_page(self, *, landing: Landing | None = None) -> None:
        """The sign-in form (or a single-use link's form). `landing(role)` is the address a
        sign-in returns to (`saved_views.address`; "" home), for a role that may open it;
        role None: not known yet (single sign-on decides it after the redirect)."""
        if landing is not None:
            self.landing = landing
        ended = self.ended
        st.title("AI cost tracker")
        params = st.query_params
        for purpose in links.Purpose:
            if params.get(purpose.value):
                self._link_page(purpose, str(params[purpose.value]))
                return
        if ended is not None:
            st.warning(self.policy.message(ended))
        elif params.get("signed_out"):
            st.success("You have signed out. Close the tab, or sign in again below.")
        sso_problem = SSO_MESSAGES.get(str(params.get("sso", "")))
        if sso_problem:
            st.error(sso_problem)
        with self.runtime.session_factory() as session:
            no_users = users.count_users(session=session) == 0
        if no_users:
            st.info(
                "No admin exists yet. Open the one-time setup link the server printed when it "
                "started, or make one with `python -m tracker users setup-link` (or add the "
                "admin directly with `python -m tracker users add`)."
            )
            return
        settings = self.runtime.settings
        if settings.password_sign_in:
            self._password_form()
        if settings.sso_enabled and st.button(
            f"Sign in with {plain_text(settings.oidc_label)}", key="sso_sign_in"
        ):
            redirect(f"/auth/sso/login{self._next('?', None)}")
            st.info("Taking you to your identity provider…")

    def _password_form(self) -> None:
        with st.form("login"):
            st.subheader("Sign in")
            username = st.text_input("Username", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if not submitted:
            return
        if not username.strip() or not password:
            st.error("Enter your username and password.")
            return
        with self.runtime.session_factory.begin() as session:
            found = users.check_login(session=session, username=username.strip(), password=password)
            started = (
                sessions.start(session=session, user=found, method="password", policy=self.policy)
                if found is not None
                else None
            )
            if found is not None:
                audit.record(
                    session=session,
                    actor=found.username,
                    action="user.sign_in",
                    target=found.username,
                    method="password",
                )
        if started is None or found is None:
            log.info("failed sign-in")
            st.error(LOGIN_FAILED)
            return
        self._complete(started, found.role)

    def _next(self, separator: str, role: str | None) -> str:
        """The `next` parameter of a sign-in route: where to return afterwards."""
        landing = self.landing(role)
        return f"{separator}next={quote(landing, safe='')}" if landing else ""

    def _complete(self, started: sessions.Started, role: str) -> None:
        """Keep the session for this tab and let the sign-in route set the cookie."""
        st.session_state[TOKEN_KEY] = started.token
        redirect(f"/auth/session?code={quote(started.handoff_code)}{self._next('&', role)}")
        st.success("Signed in. Opening the dashboard…")
        st.stop()

    # --- single-use links ---------------------------------------------------------------------

    def _link_page(self, purpose: links.Purpose, token: str) -> None:
        with self.runtime.session_factory() as session:
            view = links.inspect(session=session, purpose=purpose, token=token)
        if view is None:
            st.error(f"This link cannot be used: {links.EXPIRED_OR_USED}.")
            return
        if purpose is links.Purpose.RESET:
            st.subheader(f"Choose a new password for {plain_text(view.username or '')}")
        elif purpose is links.Purpose.INVITE:
            st.subheader(f"You are invited as {view.role}")
            st.caption(f"Your account will use the email {plain_text(view.email or '')}.")
        else:
            st.subheader("Create the first admin")
        key = f"link_{purpose.value}"
        with st.form(key):
            username = name = email = ""
            if purpose is not links.Purpose.RESET:
                username = st.text_input("Username", key=f"{key}_username")
                name = st.text_input("Full name", key=f"{key}_name")
            if purpose is links.Purpose.SETUP:
                email = st.text_input("Email", key=f"{key}_email")
            password = st.text_input(
                f"Password ({users.PASSWORD_RULE})", type="password", key=f"{key}_password"
            )
            repeat = st.text_input("Repeat the password", type="password", key=f"{key}_repeat")
            submitted = st.form_submit_button("Save", type="primary")
        if not submitted:
            return
        if password != repeat:
            st.error("The two passwords differ; type the same password twice.")
            return
        try:
            with self.runtime.session_factory.begin() as session:
                started, role = None, ""
                if purpose is links.Purpose.RESET:
                    links.redeem_reset(session=session, token=token, password=password)
                else:
                    if purpose is links.Purpose.SETUP:
                        user = links.redeem_setup(
                            session=session,
                            token=token,
                            username=username,
                            email=email,
                            password=password,
                            name=name.strip() or None,
                        )
                    else:
                        user = links.redeem_invitation(
                            session=session,
                            token=token,
                            username=username,
                            password=password,
                            name=name.strip() or None,
                        )
                    started = sessions.start(
                        session=session, user=user, method="password", policy=self.policy
                    )
                    role = user.role
        except TrackerError as exc:
            st.error(f"Not saved: {plain_text(str(exc))}.")
            return
        except IntegrityError:  # the same username or email was taken a moment ago
            st.error("Not saved: that username or email was just taken; choose another.")
            return
        st.query_params.clear()
        if started is None:
            st.success("Your password is set and every earlier sign-in has ended. Sign in now.")
            self._password_form()
            return
        self._complete(started, role)

    # --- signing out --------------------------------------------------------------------------

    def sign_out_button(self) -> None:
        """A sign-out button in the sidebar: ends the session on the server, then the cookie."""
        if not st.sidebar.button("Sign out", key="sign_out"):
            return
        user = current_user()
        with self.runtime.session_factory.begin() as session:
            for token in _tokens():
                sessions.revoke(session=session, token=token, reason="signed out")
            if user is not None:
                audit.record(
                    session=session,
                    actor=user.username,
                    action="user.sign_out",
                    target=user.username,
                )
        st.session_state.pop(TOKEN_KEY, None)
        st.session_state.pop(USER_KEY, None)
        redirect("/auth/signout")
        st.info("Signed out.")
        st.stop()


def require_role(session: Session, *allowed: str) -> str:
    """Check, in the action's own transaction, that this tab's session is still valid and its
    user has one of `allowed` roles; return the username.

    The page list already hides what a role may not see; this is the server-side check behind
    it, and it reads the session and the role from the database, never from the browser.
    """
    for token in _tokens():
        found = sessions.resolve(session=session, token=token, policy=_policy())
        if isinstance(found, sessions.SessionUser):
            if found.role not in allowed:
                raise PermissionDenied(f"this action needs the {' or '.join(allowed)} role")
            return found.username
    raise PermissionDenied("you are signed out; sign in again")


def current_user() -> SignedInUser | None:
    """The user `Auth.gate` signed in for this run (read from the database by it)."""
    user = st.session_state.get(USER_KEY)
    return user if isinstance(user, SignedInUser) else None
