"""Sign-in, registration, sign-out and role checks for the app.

The only module that touches streamlit-authenticator, and only for its signed re-login cookie
(a JWT signed with SECRET_KEY, valid 1 hour). The login form is our own: it checks passwords
with `tracker.identity.users.check_login`, which keeps the failure counter and the 15-minute
lockout in the `users` table (the library's own attempt counter lives in memory and forgets on
restart),
and answers every failure with the same message so nobody learns which usernames exist.

Session-state keys follow the library's names: `authentication_status`, `username`, `name`,
`roles` (a one-item list) and `logout`. Every run re-reads the signed-in user from the
database, so a removed, deactivated or re-roled user loses access at their next click.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import streamlit as st
from sqlalchemy.orm import Session
from streamlit_authenticator.controllers import CookieController

from tracker.core.errors import PermissionDenied, TrackerError
from tracker.core.runtime import Runtime
from tracker.identity import users

log = logging.getLogger(__name__)

COOKIE_NAME = "ai_cost_tracker_auth"
COOKIE_EXPIRY_DAYS = 1 / 24  # one hour
SESSION_DEFAULTS: dict[str, object] = {
    "authentication_status": None,
    "username": None,
    "name": None,
    "roles": None,
    "logout": None,
}
LOGIN_FAILED = (
    "Wrong username or password, or the account is locked for 15 minutes after 5 failed "
    "attempts. Check your details and try again, or ask an admin."
)


@dataclass(frozen=True)
class SignedInUser:
    """The user of this browser session, as last read from the database."""

    username: str
    name: str
    role: str


def _init_state() -> None:
    for key, value in SESSION_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value


def _sign_in(user: SignedInUser) -> None:
    st.session_state["authentication_status"] = True
    st.session_state["username"] = user.username
    st.session_state["name"] = user.name
    st.session_state["roles"] = [user.role]
    st.session_state["logout"] = None


def _sign_out_state() -> None:
    st.session_state["authentication_status"] = None
    st.session_state["username"] = None
    st.session_state["name"] = None
    st.session_state["roles"] = None
    st.session_state["logout"] = True


def _load(session: Session, username: str) -> SignedInUser | None:
    user = users.get_user(session=session, username=username)
    if user is None or not user.is_active:
        return None
    return SignedInUser(username=user.username, name=user.name, role=user.role)


class Auth:
    """Sign-in for one script run: create once per run (it renders the cookie component)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        _init_state()
        self.cookies = CookieController(
            cookie_name=COOKIE_NAME,
            cookie_key=runtime.settings.secret_key,
            cookie_expiry_days=COOKIE_EXPIRY_DAYS,
        )

    def gate(self) -> SignedInUser | None:
        """Return the signed-in user, or draw the login/registration page and return None."""
        username = st.session_state.get("username")
        if st.session_state.get("authentication_status") and username:
            with self.runtime.session_factory() as session:
                user = _load(session, str(username))
            if user is not None:
                _sign_in(user)
                return user
            _sign_out_state()  # removed or deactivated since signing in
        token = self.cookies.get_cookie()
        if token and token.get("username"):
            with self.runtime.session_factory() as session:
                user = _load(session, str(token["username"]))
            if user is not None:
                _sign_in(user)
                return user
        return self._login_page()

    def _login_page(self) -> SignedInUser | None:
        placeholder = st.empty()
        with placeholder.container():
            st.title("AI cost tracker")
            with self.runtime.session_factory() as session:
                first_user = users.count_users(session=session) == 0
                invitations = not first_user and users.has_open_invitations(session=session)
            if first_user:
                user = self._register_form(first=True)
            elif invitations:
                sign_in, register = st.tabs(["Sign in", "Register with an invitation"])
                with sign_in:
                    user = self._login_form()
                with register:
                    user = user or self._register_form(first=False)
            else:
                user = self._login_form()
        if user is not None:
            placeholder.empty()
            _sign_in(user)
            self.cookies.set_cookie()
        return user

    def _login_form(self) -> SignedInUser | None:
        with st.form("login"):
            st.subheader("Sign in")
            username = st.text_input("Username", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if not submitted:
            return None
        if not username.strip() or not password:
            st.error("Enter your username and password.")
            return None
        with self.runtime.session_factory.begin() as session:
            found = users.check_login(session=session, username=username.strip(), password=password)
            user = (
                SignedInUser(username=found.username, name=found.name, role=found.role)
                if found is not None
                else None
            )
        if user is None:
            log.info("failed sign-in")
            st.error(LOGIN_FAILED)
        return user

    def _register_form(self, *, first: bool) -> SignedInUser | None:
        key = "register_first" if first else "register_invited"
        if first:
            st.info(
                "No user exists yet. Register the first user: they become the admin and can "
                "then add others or pre-authorise their emails."
            )
        with st.form(key):
            st.subheader("Register the first user (admin)" if first else "Register")
            username = st.text_input("Username", key=f"{key}_username", autocomplete="username")
            name = st.text_input("Full name", key=f"{key}_name")
            email = st.text_input("Email", key=f"{key}_email", autocomplete="email")
            password = st.text_input(
                f"Password ({users.MIN_PASSWORD_CHARS}+ characters, at most "
                f"{users.MAX_PASSWORD_BYTES} bytes)",
                type="password",
                key=f"{key}_password",
                autocomplete="new-password",
            )
            repeat = st.text_input("Repeat the password", type="password", key=f"{key}_repeat")
            submitted = st.form_submit_button("Register", type="primary")
        if not submitted:
            return None
        if password != repeat:
            st.error("The two passwords differ; type the same password twice.")
            return None
        register = users.register_first_admin if first else users.register_invited
        try:
            with self.runtime.session_factory.begin() as session:
                created = register(
                    session=session,
                    username=username,
                    email=email,
                    password=password,
                    name=name.strip() or None,
                )
                user = SignedInUser(username=created.username, name=created.name, role=created.role)
        except TrackerError as exc:
            st.error(f"Not registered: {exc}.")
            return None
        log.info("registered user %s as %s", user.username, user.role)
        return user

    def logout_button(self) -> None:
        """A sign-out button in the sidebar; also forgets the re-login cookie."""
        if st.sidebar.button("Sign out", key="sign_out"):
            _sign_out_state()
            try:
                self.cookies.delete_cookie()
            except KeyError:  # the browser never sent the cookie back: nothing to delete
                pass
            st.rerun()


def current_user() -> SignedInUser | None:
    """The signed-in user from session state (set by `Auth.gate` in app.py)."""
    if not st.session_state.get("authentication_status"):
        return None
    roles = st.session_state.get("roles") or []
    username = st.session_state.get("username")
    if not username or not roles:
        return None
    return SignedInUser(
        username=str(username), name=str(st.session_state.get("name") or username), role=roles[0]
    )


def require_role(session: Session, *allowed: str) -> str:
    """Check, against the database, that the signed-in user has one of `allowed`; return them.

    Call inside every data-changing action, in the action's own transaction: the page list
    already hides what a role may not see, this is the server-side check behind it.
    """
    username = st.session_state.get("username")
    if not st.session_state.get("authentication_status") or not username:
        raise PermissionDenied("you are signed out; sign in again")
    user = users.get_user(session=session, username=str(username))
    if user is None or not user.is_active or user.role not in allowed:
        raise PermissionDenied(f"this action needs the {' or '.join(allowed)} role")
    return user.username
