"""Month-end close (admin, finance): each month's status and who signed it; preparing a
month's close (its snapshot: every total by provider, account, team, cost center and GL
account, and what is accrued because the provider has not billed it yet), its approval by
another person, reopening (an admin, with a reason); the accruals' journal entry and its
reversal as CSV; the Restatements (changes to closed months found after their close); the
chart of accounts and the default GL accounts.

A prepared or closed month is shown from its snapshot, never from the usage as it is now.
Every change goes through `tracker.ui.actions`, which re-checks the role against the
database; the two-people rule and the admin's reopening are checked in `tracker.closing`.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import pandas as pd
import streamlit as st

from tracker.closing.periods import SCOPE_LABELS, SCOPES
from tracker.core import units
from tracker.exports.journal import journal_file_name
from tracker.models import Role
from tracker.models.closing import PeriodStatus
from tracker.reporting.close import history_frame, totals_frame
from tracker.ui import book_actions, data
from tracker.ui import components as ui
from tracker.ui.auth import current_user

# A period's status as a badge: what it means for the figures shown.
STATUS_BADGES = {
    PeriodStatus.OPEN: ("Open: figures still move", "blue"),
    PeriodStatus.PREPARED: ("Prepared: waiting for approval", "orange"),
    PeriodStatus.CLOSED: ("Closed: figures kept", "green"),
}

runtime = data.get_runtime()
today = units.today_utc()
user = current_user()
is_admin = user is not None and user.role == Role.ADMIN


def when(moment: dt.datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


def pick(codes: list[str], current: str | None) -> int:
    """The index of `current` among the choices ['', *codes] ('' when unset)."""
    return codes.index(current) + 1 if current in codes else 0


def corrections_table(frame: pd.DataFrame) -> None:
    ui.table(
        frame,
        {
            "month": st.column_config.TextColumn("Month closed"),
            "posted_month": st.column_config.TextColumn("Posted to"),
            "provider": st.column_config.TextColumn("Provider"),
            "account": st.column_config.TextColumn("Account"),
            "team": st.column_config.TextColumn("Team"),
            "original": ui.money_column(
                "Original", help="As booked: the snapshot, or the last correction"
            ),
            "new": ui.money_column("New"),
            "difference": ui.money_column("Difference", help="New minus original: what is posted"),
            "detected_at": ui.datetime_column("Found"),
            "cause": st.column_config.TextColumn("Cause"),
            "close": st.column_config.TextColumn(
                "Close", help="Current, or reopened since (then history)"
            ),
        },
        money_columns=["original", "new", "difference"],
    )


st.title("Month-end close")
tab_periods, tab_restatements, tab_gl = ui.page_tabs(
    ["Periods", "Restatements", "GL accounts"], key="close_tabs"
)

with tab_periods:
    st.caption(
        "A month is closed by two people: a finance user prepares it (its figures are kept as "
        "a snapshot), another finance user or an admin approves it. A closed month's figures "
        "never change here; a later change is listed under Restatements and posted to the "
        "next open month. Reopening needs an admin and a reason."
    )
    listed, frame = data.close_periods(today)
    ui.table(
        frame,
        {
            "month": st.column_config.TextColumn("Month"),
            "status": st.column_config.TextColumn("Status"),
            "prepared_by": st.column_config.TextColumn("Prepared by"),
            "prepared_at": ui.datetime_column("Prepared"),
            "approved_by": st.column_config.TextColumn("Approved by"),
            "approved_at": ui.datetime_column("Approved"),
            "closed_total": ui.money_column("Closed total", help="The snapshot's total"),
            "current_total": ui.money_column("Now", help="What the month's usage adds up to now"),
            "corrections": st.column_config.NumberColumn(
                "Corrections", help="Changes found since the close (Restatements tab)"
            ),
        },
        money_columns=["closed_total", "current_total"],
    )
    by_month = {p.month: p for p in listed}
    # The month to close first: the latest that has ended (last month, usually).
    ended_months = [m for m in by_month if units.month_bounds(m)[1] < today]
    month = st.selectbox(
        "Month (UTC)",
        list(by_month),
        index=list(by_month).index(ended_months[0]) if ended_months else 0,
        format_func=lambda m: f"{m:%B %Y}",
        key="close_month",
    )
    period = by_month[month]
    label, color = STATUS_BADGES[PeriodStatus(period.status)]
    st.badge(label, color=color)
    ended = units.month_bounds(month)[1] < today

    if period.status == PeriodStatus.OPEN:
        if not ended:
            st.info(
                f"{month:%B %Y} has not ended yet: it can be closed from "
                f"{units.next_month(month)} (UTC)."
            )
        elif st.button(f"Prepare the close of {month:%B %Y}", type="primary"):
            ui.attempt(
                lambda: book_actions.prepare_period(runtime, month=month),
                failed="Could not prepare the close: {reason}",
                done=lambda s: (
                    f"Prepared {month:%B %Y}: {ui.money(s.total)}, of which "
                    f"{ui.money(s.accrued)} accrued. Another finance user or an admin approves it."
                ),
            )
    elif period.status == PeriodStatus.PREPARED:
        st.caption(
            f"Prepared by {ui.plain_text(period.prepared_by or '')} on "
            f"{when(period.prepared_at)}. Another finance user or an admin approves it; "
            "if the figures moved since, it is prepared again first."
        )
        c1, c2 = st.columns(2)
        if c1.button("Approve and close", type="primary"):
            ui.attempt(
                lambda: book_actions.approve_period(runtime, month=month),
                failed="Could not approve: {reason}",
                done=f"Closed {month:%B %Y}.",
            )
        if c2.button("Prepare again"):
            ui.attempt(
                lambda: book_actions.prepare_period(runtime, month=month),
                failed="Could not prepare the close: {reason}",
                done=f"Prepared {month:%B %Y} again with its figures as they are now.",
            )
    else:
        st.caption(
            f"Prepared by {ui.plain_text(period.prepared_by or '')}, approved by "
            f"{ui.plain_text(period.approved_by or '')} on {when(period.approved_at)}."
        )

    shown = data.month_close(month)
    snap = shown.snapshot
    if snap is not None:
        m1, m2, m3 = st.columns(3)
        m1.metric("Total", ui.money(snap.total))
        m2.metric(
            "Accrued", ui.money(snap.accrued), help="Estimated: the provider has not billed it yet"
        )
        m3.metric("Corrections since", str(period.corrections))
        by = st.radio(
            "Totals by", SCOPES, format_func=SCOPE_LABELS.__getitem__, horizontal=True,
            key="close_by",
        )  # fmt: skip
        ui.table(
            totals_frame(snap, by),
            {
                "scope": st.column_config.TextColumn(SCOPE_LABELS[by]),
                "amount": ui.money_column("Total"),
                "accrued": ui.money_column("Accrued"),
            },
            money_columns=["amount", "accrued"],
        )
        st.subheader("Accruals")
        if shown.accruals.empty:
            st.info("Nothing to accrue: the providers billed all of this month.")
        else:
            ui.table(
                shown.accruals,
                {
                    "provider": st.column_config.TextColumn("Provider"),
                    "team": st.column_config.TextColumn("Team"),
                    "cost_center": st.column_config.TextColumn("Cost center"),
                    "gl_account": st.column_config.TextColumn("GL account"),
                    "amount": ui.money_column("Accrued"),
                },
                money_columns=["amount"],
            )
            st.subheader("Journal entry and its reversal")
            ui.table(
                shown.journal,
                {
                    "journal": st.column_config.TextColumn("Journal"),
                    "date": ui.date_column("Date"),
                    "line": st.column_config.NumberColumn("Line"),
                    "gl_account": st.column_config.TextColumn("GL account"),
                    "gl_name": st.column_config.TextColumn("Account name"),
                    "cost_center": st.column_config.TextColumn("Cost center"),
                    "debit": ui.money_column("Debit"),
                    "credit": ui.money_column("Credit"),
                    "description": st.column_config.TextColumn("Description", width="large"),
                },
                money_columns=["debit", "credit"],
            )
            if snap.state == PeriodStatus.CLOSED:
                csv = ui.attempt(
                    lambda: book_actions.journal_csv(runtime, month=month),
                    failed="Could not build the journal: {reason}",
                )
                if csv is not None:
                    st.download_button(
                        "Download the journal entry (CSV)",
                        csv,
                        file_name=journal_file_name(month),
                        mime="text/csv",
                        on_click="ignore",
                    )
            else:
                st.caption("The journal entry can be downloaded once the month is closed.")
    if period.status != PeriodStatus.OPEN:
        st.subheader("Reopen")
        if is_admin:
            ui.form_state("close_reopen")
            with st.form("close_reopen"):
                reason = st.text_input(
                    "Reason for reopening (kept with the month's history)", key="close_reason"
                )
                if st.form_submit_button("Reopen the month"):
                    ui.attempt_form(
                        "close_reopen",
                        lambda: book_actions.reopen_period(runtime, month=month, reason=reason),
                        failed="Could not reopen: {reason}",
                        done=f"Reopened {month:%B %Y}; its snapshot is kept as history.",
                        reset={"close_reason": ""},
                    )
        else:
            st.caption("Reopening a month needs an admin, with a reason.")
    if not shown.corrections.empty:
        st.subheader("Corrections of this month, or posted to it")
        corrections_table(shown.corrections)
    if shown.history:
        st.subheader("Earlier closes, reopened")
        ui.table(
            history_frame(shown.history),
            {
                "prepared_by": st.column_config.TextColumn("Prepared by"),
                "approved_by": st.column_config.TextColumn("Approved by"),
                "approved_at": ui.datetime_column("Approved"),
                "total": ui.money_column("Total"),
                "reopened_by": st.column_config.TextColumn("Reopened by"),
                "reopened_at": ui.datetime_column("Reopened"),
                "reason": st.column_config.TextColumn("Reason", width="large"),
            },
            money_columns=["total"],
        )

with tab_restatements:
    st.caption(
        "A closed month keeps its figures. When a provider restates a day, usage arrives "
        "late, estimates are re-priced or a team mapping changes, the difference is recorded "
        "here and posted to the next open month."
    )
    found = data.restatements()
    if found.empty:
        st.info("No corrections: no closed month changed after its close.")
    else:
        corrections_table(found)

with tab_gl:
    gl = data.gl_settings()
    st.caption(
        "The journal entry debits each team's GL account (the default expense account for "
        "teams without one, and for unassigned spend) and credits the accrued-liabilities "
        "account. Teams' GL accounts are set on the Chargeback page."
    )
    if gl.chart.empty:
        st.info("No GL account yet: add the expense and accrued-liabilities accounts below.")
    else:
        ui.table(
            gl.chart,
            {
                "code": st.column_config.TextColumn("Code"),
                "name": st.column_config.TextColumn("Name"),
                "kind": st.column_config.TextColumn("Kind"),
                "default": st.column_config.TextColumn("Default"),
            },
        )
    ui.form_state("close_gl_account")
    with st.form("close_gl_account"):
        c1, c2, c3 = st.columns(3)
        code = c1.text_input("Code", key="gl_code", help="An existing code is renamed")
        name = c2.text_input("Name", key="gl_name")
        kind = c3.selectbox("Kind", ["expense", "liability"], key="gl_kind")
        if st.form_submit_button("Save account"):
            ui.attempt_form(
                "close_gl_account",
                lambda: book_actions.save_gl_account(runtime, code=code, name=name, kind=kind),
                failed="Could not save the account: {reason}",
                done=lambda saved: f"Saved GL account {saved}.",
                reset={"gl_code": "", "gl_name": ""},
            )
    with st.form("close_gl_defaults"):
        c1, c2 = st.columns(2)
        expense = c1.selectbox(
            "Default expense account", ["", *gl.expense_codes],
            index=pick(gl.expense_codes, gl.defaults.expense), format_func=lambda c: c or "—",
            key="close_gl_expense",
        )  # fmt: skip
        liability = c2.selectbox(
            "Accrued-liabilities account", ["", *gl.liability_codes],
            index=pick(gl.liability_codes, gl.defaults.accrued_liabilities),
            format_func=lambda c: c or "—", key="close_gl_liability",
        )  # fmt: skip
        if st.form_submit_button("Save defaults"):
            ui.attempt(
                lambda: book_actions.set_gl_defaults(
                    runtime, expense=expense, accrued_liabilities=liability
                ),
                failed="Could not save the defaults: {reason}",
                done="Saved the default GL accounts.",
            )
    if not gl.chart.empty:
        codes = list(gl.chart["code"])
        ui.remove_picker(
            dict(enumerate(codes)),
            pick="GL account to remove",
            button="Remove account",
            key="close_gl_remove",
            remove=lambda i: book_actions.remove_gl_account(runtime, code=codes[i]),
            failed="Could not remove the account: {reason}",
            done=lambda label: f"Removed GL account {label}.",
        )
