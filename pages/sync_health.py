"""Sync health: per account, how fresh the data is, the latest runs and their errors, and
days missing from the daily series over the last 30 days (UTC).
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.ui import components as ui
from tracker.ui import data

st.title("Sync health")
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # minute grain: cache-friendly
freshness, runs, gaps = data.sync_health(now, units.today_utc())

if freshness.empty:
    st.info(
        "No account is connected yet. An admin can add one on the Accounts page; the worker "
        "then syncs it every hour (or use **Sync now** there)."
    )
    st.stop()

failing = freshness[freshness["failing"]]
never = freshness[freshness["last_sync_at"].isna() & (freshness["source"] == "API")]
c1, c2, c3 = st.columns(3)
c1.metric("Accounts", len(freshness))
c2.metric("With errors", len(failing))
c3.metric("Never synced", len(never))
refused = failing[failing["status"] == "error"]
if not refused.empty:
    st.error(
        "The provider refused the key of "
        + ui.plain_text(", ".join(refused["account"]))
        + ". Read the error below, "
        + (
            "fix the key or its permissions on the Accounts page, then sync again."
            if router.can_open("accounts.py")
            else "then ask an admin to fix the key or its permissions and sync again."
        )
    )
stuck = failing[failing["status"] != "error"]
if not stuck.empty:
    st.error(
        "The last sync failed for "
        + ui.plain_text(", ".join(stuck["account"]))
        + ": the provider kept rate limiting, had server errors, did not answer in time, "
        "or sent data that failed our checks (the error below says which). Nothing of "
        "those passes was stored; the next sync tries again."
    )

st.subheader("Freshness")
ui.table(
    freshness.drop(columns=["failing"]),
    {
        "account": st.column_config.TextColumn("Account"),
        "provider": st.column_config.TextColumn("Provider"),
        "source": st.column_config.TextColumn("Usage from"),
        "status": st.column_config.TextColumn("Status"),
        "last_sync_at": ui.datetime_column("Last sync (UTC)"),
        "hours_since_sync": st.column_config.NumberColumn("Hours since", format="%.1f"),
        "last_complete_day": ui.date_column("Complete through"),
        "last_run_status": st.column_config.TextColumn("Last run"),
        "last_run_at": ui.datetime_column("Last run at (UTC)"),
        "last_error": st.column_config.TextColumn("Last error", width="large"),
        "last_error_at": ui.datetime_column("Error at (UTC)"),
        "last_import_at": ui.datetime_column("Last CSV import (UTC)"),
    },
)

st.subheader("Latest runs")
if runs.empty:
    st.info(
        "No sync has run yet. "
        + (
            "Start the worker, or use Sync now on the Accounts page."
            if router.can_open("accounts.py")
            else "An admin starts the worker or runs Sync now on the Accounts page."
        )
    )
else:
    ui.table(
        runs,
        {
            "started_at": ui.datetime_column("Started (UTC)"),
            "account": st.column_config.TextColumn("Account"),
            "trigger": st.column_config.TextColumn("Trigger"),
            "range_start": ui.date_column("From"),
            "range_end": ui.date_column("To"),
            "status": st.column_config.TextColumn("Status"),
            "rows_written": st.column_config.NumberColumn("Rows"),
            "duration_ms": st.column_config.NumberColumn("Duration (ms)"),
            "error": st.column_config.TextColumn("Error", width="large"),
        },
    )

st.subheader("Gaps in the daily series (last 30 days)")
st.caption(
    "Days without any usage row between an account's first day and its last complete day. "
    "A gap can be a day nobody used the account; a gap on a busy account means a sync missed it."
)
if gaps.empty:
    st.info("No usage rows in the last 30 days, so there is nothing to check yet.")
else:
    ui.table(
        gaps,
        {
            "account": st.column_config.TextColumn("Account"),
            "first_day": ui.date_column("First day"),
            "last_day": ui.date_column("Last day"),
            "days_with_usage": st.column_config.NumberColumn("Days with usage"),
            "missing_days": st.column_config.NumberColumn("Missing days"),
            "missing": st.column_config.TextColumn("Missing", width="large"),
        },
    )
