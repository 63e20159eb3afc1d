"""The Streamlit entry point: a router only.

It sets the page config, signs the user in, builds the page list from the user's role (a page
a role may not see is not registered, so it cannot be reached), draws the shared sidebar and
runs the chosen page. Run with `streamlit run app.py`.
"""

from __future__ import annotations

import logging

import streamlit as st

from tracker.core.errors import TrackerError
from tracker.ui import data
from tracker.ui.auth import Auth

log = logging.getLogger("app")

# The folder is app_pages/, not pages/: with a pages/ folder Streamlit 1.67 falls back to its
# old automatic page discovery on a process's first run (and on AppTest reruns) and runs a page
# file directly, skipping this router and its sign-in.
# (file, title, icon, roles that may open it). Viewers see the dashboards only; budgets,
# forecasts, anomalies and exports are for admin and finance.
PAGES: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("app_pages/overview.py", "Overview", ":material/dashboard:", ("admin", "finance", "viewer")),
    (
        "app_pages/usage.py",
        "Usage explorer",
        ":material/query_stats:",
        ("admin", "finance", "viewer"),
    ),
    ("app_pages/forecast.py", "Forecast", ":material/trending_up:", ("admin", "finance")),
    (
        "app_pages/budgets.py",
        "Budgets & alerts",
        ":material/notifications:",
        ("admin", "finance"),
    ),
    ("app_pages/anomalies.py", "Anomalies", ":material/troubleshoot:", ("admin", "finance")),
    ("app_pages/exports.py", "Exports", ":material/download:", ("admin", "finance")),
    ("app_pages/sync_health.py", "Sync health", ":material/sync:", ("admin", "finance")),
    ("app_pages/accounts.py", "Accounts", ":material/key:", ("admin",)),
    ("app_pages/admin.py", "Admin", ":material/admin_panel_settings:", ("admin",)),
]


def pages_for(role: str) -> list[st.Page]:
    """The pages a role may open, the first being the default."""
    return [
        st.Page(path, title=title, icon=icon, default=(i == 0))
        for i, (path, title, icon, roles) in enumerate(p for p in PAGES if role in p[3])
    ]


st.set_page_config(page_title="AI cost tracker", page_icon=":material/payments:", layout="wide")

try:
    runtime = data.get_runtime()
except TrackerError as exc:
    st.error(f"The app cannot start: {exc}")
    st.stop()

auth = Auth(runtime)
user = auth.gate()
if user is None:
    st.stop()

navigation = st.navigation(pages_for(user.role))
with st.sidebar:
    st.caption(f"Signed in as **{user.name}** ({user.role})")
    if st.button("Refresh data", key="refresh_data", help="Reload every figure from the database"):
        data.clear_frames()
auth.logout_button()
navigation.run()
