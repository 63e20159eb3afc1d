"""The router: every run of the app, and every page, goes through `run` first.

`run` sets the page config, signs the user in (`tracker.ui.auth`), registers with
`st.navigation` only the pages the user's role may open (`tracker.ui.roles`), draws the
shared sidebar, decides where the page's figures are read (`data.choose_reads`: the read
replica or the primary) and runs the chosen page, above which it says when the replica was
behind or could not be used. `app.py` calls it and nothing else.

Why every page's first statement is `router.gate()`: with a `pages/` folder beside
`app.py`, Streamlit 1.67 starts each server process in its legacy pages-directory mode.
Until `st.navigation` has run once in that process, a request for `/admin` runs
`pages/admin.py` directly, without `app.py`. `gate` notices that the page was not reached
through `run` and runs the router instead: an anonymous visitor sees only the sign-in form,
and a signed-in user gets the page the router chooses for their role (the one asked for if
the role may open it, else the default). `st.navigation` then switches the legacy mode off
for the whole process. AppTest resets that mode on every run, so it takes the same path.
The sidebar's page links are drawn here, for the user's role, with the user's saved views
below them (`tracker.ui.views`); `.streamlit/config.toml` hides the list Streamlit would draw
itself (in legacy mode: every file in pages/, to anyone).
`tests/test_architecture.py` fails if a page lacks the gate.

A signed-out visitor gets every page's address registered too, each showing only the sign-in
form (`sign_in_pages`): Streamlit then says which page the address asked for, and the form
keeps it, with the query parameters that page reads (`saved_views.address`), for after the
sign-in: a shared link to the Usage explorer opens with its filters once its reader has
signed in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from tracker.core.config import Settings
from tracker.core.errors import TrackerError
from tracker.core.replica import ReplicaStatus
from tracker.identity import saved_views
from tracker.ui import data, views
from tracker.ui.auth import Auth, current_user
from tracker.ui.components import duration, plain_text, url_query
from tracker.ui.roles import Capability, can

PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@dataclass(frozen=True)
class PageSpec:
    file: str  # in pages/
    title: str
    icon: str
    capability: Capability


# In sidebar order; the first a role may open is its default page.
PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview.py", "Overview", ":material/dashboard:", Capability.VIEW_SPEND),
    PageSpec("usage.py", "Usage explorer", ":material/query_stats:", Capability.VIEW_SPEND),
    PageSpec("forecast.py", "Forecast", ":material/trending_up:", Capability.VIEW_PLANNING),
    PageSpec(
        "budgets.py", "Budgets & alerts", ":material/notifications:", Capability.VIEW_PLANNING
    ),
    PageSpec("anomalies.py", "Anomalies", ":material/troubleshoot:", Capability.VIEW_PLANNING),
    PageSpec("chargeback.py", "Chargeback", ":material/groups:", Capability.CHARGE_BACK),
    PageSpec("exports.py", "Exports", ":material/download:", Capability.EXPORT),
    PageSpec("reconciliation.py", "Reconciliation", ":material/balance:", Capability.RECONCILE),
    PageSpec("invoices.py", "Invoices", ":material/receipt_long:", Capability.MANAGE_INVOICES),
    PageSpec("credits.py", "Credits", ":material/wallet:", Capability.MANAGE_INVOICES),
    PageSpec("close.py", "Month-end close", ":material/event_available:", Capability.CLOSE_BOOKS),
    PageSpec("savings.py", "Savings", ":material/savings:", Capability.VIEW_SAVINGS),
    PageSpec("sync_health.py", "Sync health", ":material/sync:", Capability.VIEW_PLANNING),
    PageSpec("accounts.py", "Accounts", ":material/key:", Capability.MANAGE_ACCOUNTS),
    PageSpec("admin.py", "Admin", ":material/admin_panel_settings:", Capability.ADMINISTER),
    PageSpec("account.py", "Your account", ":material/person:", Capability.OWN_ACCOUNT),
)

# Set while `run` executes the chosen page, in the script thread of that session.
_routing = threading.local()


def pages_for(role: str) -> list[st.Page]:
    """The pages a role may open, the first being the default."""
    settings = data.get_settings()
    allowed = [p for p in PAGES if can(role, p.capability, settings)]
    return [
        st.Page(PAGES_DIR / p.file, title=p.title, icon=p.icon, default=(i == 0))
        for i, p in enumerate(allowed)
    ]


def can_open(page_file: str) -> bool:
    """Whether the signed-in user may open pages/`page_file`. A message sends its reader only
    to pages they can open; for the others it names who can act."""
    spec = next(p for p in PAGES if p.file == page_file)
    user = current_user()
    return user is not None and can(user.role, spec.capability, data.get_settings())


def usage_hint() -> str:
    """The end of a "no usage here" message: where its reader gets usage in, or who does."""
    if can_open("accounts.py"):
        return "sync or import usage first (Accounts page)."
    return "ask an admin to sync or import usage."


def denied_pages(role: str) -> list[st.Page]:
    """For each page a role may not open, a stand-in at its address that says so (instead of
    Streamlit's "page not found"); the page itself never runs."""
    settings = data.get_settings()
    allowed = [p.title for p in PAGES if can(role, p.capability, settings)]

    def stand_in(spec: PageSpec) -> Callable[[], None]:
        def no_access() -> None:
            st.title(spec.title)
            st.error(
                f"You don't have access to this page: it needs another role than yours "
                f"({role}). You can open {', '.join(allowed)}; ask an admin if you need more."
            )

        return no_access

    return [
        st.Page(stand_in(p), title=p.title, icon=p.icon, url_path=Path(p.file).stem)
        for p in PAGES
        if not can(role, p.capability, settings)
    ]


def sign_in_pages(auth: Auth) -> list[st.Page]:
    """For a signed-out visitor, every page's address, each showing only the sign-in form
    (the page itself never runs), which returns to that page and its query once signed in,
    if the role signed in may open it (else to the home page, as a sign-in at home does)."""

    def stand_in(spec: PageSpec, home: bool) -> Callable[[], None]:
        def sign_in() -> None:
            address = "" if home else saved_views.address(Path(spec.file).stem, url_query())
            auth.sign_in_page(
                landing=lambda role: (
                    address
                    if role is None or can(role, spec.capability, auth.runtime.settings)
                    else ""
                )
            )

        return sign_in

    # Titled alike: the visitor learns nothing of the pages, not even their names.
    return [
        st.Page(stand_in(p, i == 0), title="Sign in", url_path=Path(p.file).stem, default=i == 0)
        for i, p in enumerate(PAGES)
    ]


def _figures_notice(replica: ReplicaStatus, source: str, settings: Settings) -> None:
    """Say where the page's figures came from when it matters: the primary because the read
    replica could not be used, or a replica behind by more than REPLICA_MAX_LAG_SECONDS."""
    if source == data.FAILED_OVER:
        st.info(
            "The read replica cannot be used right now, so this page read its figures from the "
            "primary database. The server log says what is wrong with the replica."
        )
    elif source == data.REPLICA and replica.lagging(settings.replica_max_lag_seconds):
        behind = replica.behind_seconds
        how_far = f"up to {duration(behind)} " if behind is not None else ""
        why = (
            "has changes from the primary database it has not applied yet"
            if replica.streaming
            else "is not receiving changes from the primary database"
        )
        st.warning(
            f"These figures may be {how_far}behind: the read replica they come from {why}, "
            "so the latest changes may not show yet."
        )


def run() -> None:
    """Sign in, register the role's pages, draw the sidebar and run the chosen page."""
    st.set_page_config(page_title="AI cost tracker", page_icon=":material/payments:", layout="wide")
    try:
        runtime = data.get_runtime()
    except TrackerError as exc:
        st.error(f"The app cannot start: {exc}")
        st.stop()
    auth = Auth(runtime)
    user = auth.gate()
    if user is None:
        st.navigation(sign_in_pages(auth), position="hidden").run()
        st.stop()
    pages = pages_for(user.role)
    # Listed by us, not by Streamlit: .streamlit/config.toml hides Streamlit's own list.
    navigation = st.navigation([*pages, *denied_pages(user.role)], position="hidden")
    with st.sidebar:
        for page in pages:
            st.page_link(page)
        # The home page's url_path is "": never a page a view can be saved of.
        views.sidebar(user.username, {page.url_path: page for page in pages})
        st.divider()
        st.caption(f"Signed in as **{plain_text(user.name)}** ({user.role})")
        if st.button(
            "Refresh data", key="refresh_data", help="Reload every figure from the database"
        ):
            data.clear_frames()
    auth.sign_out_button()
    replica = data.choose_reads()
    # Filled once the page has run: only then is it known where its figures came from.
    notice = st.empty() if replica is not None else None
    _routing.active = True
    try:
        navigation.run()
    finally:
        _routing.active = False
        if notice is not None and replica is not None:
            with notice.container():
                _figures_notice(replica, data.reads_from(), data.get_settings())


def gate() -> None:
    """The first statement of every page: a page not run by `run` runs the router instead."""
    if getattr(_routing, "active", False):
        return
    run()
    st.stop()
