"""Accounts (admin): connected provider accounts with masked keys, status, last sync, last
error and rate-limit headroom; add, edit, remove, test connection, sync now, CSV import, and
the import of a cloud bill's FOCUS export (Amazon Bedrock, Azure OpenAI, Google Vertex AI).

Every action re-checks the admin role against the database in its own transaction and is
written to the audit log by the tracker function it calls.
"""

from tracker.ui import router

router.gate()

import logging
from typing import NoReturn

import pandas as pd
import streamlit as st

from tracker.core.errors import InvalidInput, TrackerError
from tracker.ingest import csv_template
from tracker.providers.registry import PROVIDERS
from tracker.ui import actions, data
from tracker.ui import components as ui

log = logging.getLogger(__name__)
runtime = data.get_runtime()
SYNC_JOB = "sync_job"  # the running "Sync now", polled by its fragment
# What Test connection or Sync now found, shown after the rerun that redraws the table above
# with the account's new status: a list of (level, text).
CHECKED = "accounts_checked"
settings = runtime.settings


def _optional_int(raw: str, what: str) -> int | None:
    raw = raw.strip().replace(",", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidInput(f"{what} must be a whole number of tokens")
    return int(raw)


def report_and_redraw(results: list[tuple[str, str]]) -> NoReturn:
    """Keep what a check or a sync found and rerun, so the table shows the new status."""
    data.clear_frames()
    st.session_state[CHECKED] = results
    st.rerun(scope="app")


def show_checked() -> None:
    shown = {"ok": st.success, "skipped": st.warning}
    for level, text in st.session_state.pop(CHECKED, []):
        shown.get(level, st.error)(ui.plain_text(text))


st.title("Accounts")

table = data.accounts_table()
if table.empty:
    st.info(
        "No account yet. Add your first provider account below: paste an admin/usage API key "
        "(it is stored encrypted and shown only as its last 4 characters), then press "
        "**Sync now** to load its usage."
    )
else:
    ui.table(
        table,
        {
            "name": st.column_config.TextColumn("Name"),
            "provider": st.column_config.TextColumn("Provider"),
            "key": st.column_config.TextColumn("Key"),
            "status": st.column_config.TextColumn("Status"),
            "last_sync_at": ui.datetime_column("Last sync (UTC)"),
            "last_error": st.column_config.TextColumn("Last error", width="large"),
            "rate_limit_headroom": st.column_config.TextColumn("Rate-limit headroom"),
            "monthly_budget": ui.money_column("Monthly budget"),
            "token_quota": st.column_config.NumberColumn("Token quota", format="localized"),
            "organization": st.column_config.TextColumn("Organization"),
            "base_url": st.column_config.TextColumn("Base URL"),
        },
        money_columns=["monthly_budget"],
    )

for account in data.accounts():
    if account.custom_host:
        st.warning(
            f"{ui.plain_text(account.name)} sends its key to {ui.plain_text(account.custom_host)}, "
            f"not to {ui.plain_text(account.provider_display_name)}'s own API host. Keep it "
            "only if you run or trust that gateway."
        )

limits = data.rate_limits()
if not limits.empty:
    st.subheader("Rate-limit headroom")
    st.caption(
        "Remaining vs limit from the provider's rate-limit headers at the last call of each "
        "account (limits reset within minutes, so an old reading says little). A ratelimit "
        "alert rule on the Budgets & alerts page warns when one runs low."
    )
    ui.table(
        limits,
        {
            "account": st.column_config.TextColumn("Account"),
            "provider": st.column_config.TextColumn("Provider"),
            "resource": st.column_config.TextColumn("Resource"),
            "remaining": st.column_config.NumberColumn("Remaining", format="localized"),
            "limit": st.column_config.NumberColumn("Limit", format="localized"),
            # "auto": green above half, red below: plenty of headroom must not look alarming.
            "remaining_pct": st.column_config.ProgressColumn(
                "Headroom", format="%.1f%%", min_value=0, max_value=100, color="auto"
            ),
            "observed_at": ui.datetime_column("Read at (UTC)"),
        },
    )

names = list(table["name"])
add_tab, act_tab, edit_tab, import_tab, cloud_tab, remove_tab = ui.page_tabs(
    ["Add", "Test / sync", "Edit", "CSV import", "Cloud bill", "Remove"], key="accounts_tab"
)

with add_tab:
    ui.form_state("account_add")
    with st.form("account_add"):
        provider = st.selectbox(
            "Provider",
            list(PROVIDERS),
            format_func=lambda p: PROVIDERS[p].display_name,
            key="add_provider",
        )
        name = st.text_input("Name", placeholder="e.g. OpenAI production", key="add_name")
        api_key = st.text_input(
            "API key (leave empty for "
            + ", ".join(p.display_name for p in PROVIDERS.values() if p.csv_only)
            + ": their usage comes by file import)",
            type="password",
            help="  \n".join(f"{p.display_name}: {p.key_hint}" for p in PROVIDERS.values()),
            key="add_key",
        )
        organization = st.text_input(
            "Organization (GitHub Copilot: the organization's login; xAI: the team id)",
            key="add_org",
        )
        base_url = st.text_input("Base URL (optional: gateways, proxies)", key="add_base_url")
        budget = st.text_input("Monthly budget, USD (optional)", key="add_budget")
        quota = st.text_input("Monthly token quota (optional)", key="add_quota")
        test_key = st.checkbox(
            "Test the key before saving",
            value=True,
            key="add_test_key",
            help="Runs the check of Test connection with this key and saves the account only "
            "if the provider accepts it. Untick to save it untested, e.g. while the provider "
            "is down.",
        )
        if st.form_submit_button("Add account", type="primary"):
            ui.attempt_form(
                "account_add",
                lambda: actions.add_account(
                    runtime,
                    test_key=test_key,
                    provider=str(provider),
                    name=name,
                    api_key=api_key,
                    organization=organization or None,
                    base_url=base_url or None,
                    monthly_budget=budget or None,
                    token_quota=_optional_int(quota, "the token quota"),
                ),
                failed="Not added: {reason}.",
                done=lambda added: (
                    f"Added {added}. Press Sync now on the Test / sync tab to load its usage."
                ),
                reset=dict.fromkeys(
                    ["add_name", "add_org", "add_base_url", "add_budget", "add_quota"], ""
                ),
                secrets={"add_key": "API key"},
            )

with act_tab:
    if not names:
        st.caption("Add an account first.")
    else:
        target = st.selectbox("Account", names, key="act_account")
        show_checked()
        c1, c2 = st.columns(2)
        if c1.button("Test connection", key="act_test"):
            outcome = ui.attempt(
                lambda: actions.check_connection(runtime, name=str(target)),
                failed="Test failed: {reason}",
            )
            if outcome is not None:
                verdict = "Connection works" if outcome.ok else "Connection failed"
                level = "ok" if outcome.ok else "failed"
                report_and_redraw([(level, f"{target}: {verdict}: {outcome.message}")])
        if c2.button("Sync now", key="act_sync", type="primary"):
            job = ui.attempt(
                lambda: actions.start_sync(runtime, name=str(target)),
                failed="Sync not started: {reason}",
            )
            if job is not None:
                st.session_state[SYNC_JOB] = job

        @st.fragment(run_every=1)
        def sync_progress() -> None:
            """Runs every second while a sync is under way; the rest of the page stays live."""
            job = st.session_state.get(SYNC_JOB)
            if not isinstance(job, actions.BackgroundSync):
                return
            if not job.future.done():
                st.info(
                    f"Syncing {ui.plain_text(job.name)}… {job.elapsed:.0f} s so far (it stops "
                    f"after {job.budget_seconds:.0f} s at most if the provider does not answer). "
                    "You can use the rest of the page meanwhile."
                )
                return
            st.session_state.pop(SYNC_JOB, None)
            try:
                summary = job.future.result()
            except TrackerError as exc:
                report_and_redraw([("failed", f"Sync failed: {exc}")])
            report_and_redraw(
                [
                    (
                        result.status,
                        f"{result.name}: {result.status}, {result.rows_written} row(s). "
                        + (result.message or ""),
                    )
                    for result in summary.results
                ]
            )

        sync_progress()

with edit_tab:
    ui.form_state("account_edit")
    if not names:
        st.caption("Add an account first.")
    else:
        target = st.selectbox("Account", names, key="edit_account")
        current = table[table["name"] == target].iloc[0]
        shown_budget = ui.amount_text(current["monthly_budget"])
        shown_quota = "" if pd.isna(current["token_quota"]) else str(int(current["token_quota"]))
        shown_status = "disabled" if current["status"] == "disabled" else "active"
        with st.form(f"account_edit_{target}"):
            new_name = st.text_input("Name", value=str(target), key=f"edit_name_{target}")
            new_key = st.text_input(
                "New API key (leave empty to keep the current one)",
                type="password",
                key=f"edit_key_{target}",
            )
            new_budget = st.text_input(
                "Monthly budget, USD", value=shown_budget, key=f"edit_budget_{target}"
            )
            new_quota = st.text_input(
                "Monthly token quota (0 removes it)", value=shown_quota, key=f"edit_quota_{target}"
            )
            new_status = st.selectbox(
                "Status",
                ["active", "disabled"],
                index=1 if shown_status == "disabled" else 0,
                key=f"edit_status_{target}",
            )
            if st.form_submit_button("Save changes"):
                # Pass only what changed, so the audit log lists the real changes.
                ui.attempt_form(
                    "account_edit",
                    lambda: actions.update_account(
                        runtime,
                        name=str(target),
                        new_name=new_name if new_name.strip() != target else None,
                        api_key=new_key or None,
                        monthly_budget=new_budget if new_budget != shown_budget else None,
                        token_quota=_optional_int(new_quota, "the token quota")
                        if new_quota != shown_quota
                        else None,
                        status=new_status if new_status != shown_status else None,
                    ),
                    failed="Not saved: {reason}.",
                    done=f"Saved {new_name.strip()}.",
                    # After a rename the picker shows the account under its new name.
                    reset={"edit_account": new_name.strip() or str(target)},
                    secrets={f"edit_key_{target}": "new API key"},
                )

with import_tab:
    st.caption(
        "For providers without a usage API (Groq, Perplexity): upload their usage export as "
        "CSV. Bad lines are listed and nothing is written until the file is clean."
    )
    st.download_button(
        "Download the CSV template",
        csv_template.template_csv(),
        file_name="usage-template.csv",
        mime="text/csv",
        key="import_template",
    )
    st.caption(
        f"One row per UTC day and model. Required: {', '.join(csv_template.REQUIRED)}; "
        f"optional: {', '.join(csv_template.OPTIONAL)}. Days as YYYY-MM-DD, counts as whole "
        "numbers, input_tokens including cached ones, cost in US dollars as billed."
    )
    if not names:
        st.caption("Add an account first.")
    else:
        target = st.selectbox("Account", names, key="import_account")
        limit_mb = runtime.settings.import_max_megabytes
        upload = st.file_uploader(
            f"CSV file (at most {limit_mb} MB)",
            type=["csv"],
            key="import_file",
            max_upload_size=limit_mb,
        )
        if st.button("Import", key="import_go", disabled=upload is None) and upload is not None:
            ui.attempt(
                lambda: actions.import_usage(runtime, account=str(target), upload=upload),
                failed="Nothing imported: {reason}",
                done=lambda result: (
                    f"Imported {result.rows_written} row(s) into {target}, {result.days} "
                    f"day(s) from {result.first_day} to {result.last_day}."
                ),
            )

with cloud_tab:
    clouds = [p.display_name for p in PROVIDERS.values() if p.focus_import]
    st.caption(
        f"AI bought through a cloud ({', '.join(clouds)}) is billed on the cloud bill: upload "
        "its FOCUS export (CSV, CSV.GZ or Parquet; every file of the export with its "
        "manifest, or a zip of its folder). Only the AI charges are kept, at their billed cost. "
        "Importing a billing period again replaces it."
    )
    cloud_accounts = [a.name for a in data.accounts() if PROVIDERS[a.provider].focus_import]
    if not cloud_accounts:
        st.caption(f"Add an account of {' or '.join(clouds)} first (it needs no key).")
    else:
        target = st.selectbox("Account", cloud_accounts, key="focus_account")
        limit_mb = runtime.settings.import_max_megabytes
        uploads = st.file_uploader(
            f"FOCUS export files (at most {limit_mb} MB each)",
            type=["csv", "gz", "parquet", "json", "zip"],
            accept_multiple_files=True,
            key="focus_files",
            max_upload_size=limit_mb,
        )
        if st.button("Import", key="focus_go", disabled=not uploads) and uploads:
            ui.attempt(
                lambda: actions.import_cloud_bill(runtime, account=str(target), uploads=uploads),
                failed="Nothing imported: {reason}",
                done=lambda result: result.summary()[:1].upper() + result.summary()[1:] + ".",
            )

with remove_tab:
    ui.form_state("account_remove")
    if not names:
        st.caption("No account to remove.")
    else:
        target = st.selectbox("Account", names, key="remove_account")
        st.warning(
            "Removing an account deletes its usage history too. The audit log keeps a record."
        )
        confirm = st.text_input("Type the account name to confirm", key="remove_confirm")
        if st.button("Remove account", key="remove_go", type="primary"):
            if confirm.strip() != target:
                st.error("Type the account's exact name to confirm the removal.")
            else:
                ui.attempt_form(
                    "account_remove",
                    lambda: actions.remove_account(runtime, name=str(target)),
                    failed="Not removed: {reason}",
                    done=f"Removed {target}.",
                    reset={"remove_confirm": ""},
                )
