"""Invoices (admin, finance): provider invoices, recorded one at a time or from a CSV, each
matched against the synced billed total of its account and month: matched to the cent,
within the tolerance (`INVOICE_TOLERANCE_PCT`), or unmatched with the variance and the days
that explain it (not billed yet, or changed since the invoice was recorded).

The figures are `tracker.costs.invoices` (what `python -m tracker invoices list` prints);
every change goes through `tracker.ui.actions`, re-checked against the role and audited.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.costs import invoice_csv
from tracker.costs.invoices import MatchStatus
from tracker.reporting import invoices as report
from tracker.reporting.chargeback import recent_months
from tracker.ui import book_actions, data
from tracker.ui import components as ui

runtime = data.get_runtime()
today = units.today_utc()
tolerance = runtime.settings.invoice_tolerance_pct

st.title("Invoices")
st.caption(
    "Each invoice is compared with what the provider billed that month according to the synced "
    f"data (billed cost only, never estimates): Matched to the cent, Within tolerance (up to "
    f"{ui.percent(tolerance, 2)} of the invoice), or Unmatched. Invoices in another currency "
    "are kept as written and not compared."
)
list_tab, record_tab, import_tab = ui.page_tabs(
    ["Invoices", "Record an invoice", "Import a CSV"], key="inv_tab"
)
matches = data.invoice_matches()
accounts = data.accounts()

with list_tab:
    if not matches:
        st.info("No invoice recorded yet: record one, or import a CSV of them (tabs above).")
    else:
        frame = report.invoices_frame(matches)
        periods = sorted(set(frame["period"]), reverse=True)
        shown_period = st.selectbox("Month", ["All months", *periods], key="inv_period")
        if shown_period != "All months":
            frame = frame[frame["period"] == shown_period]
        counts = frame["status"].value_counts()
        columns = st.columns(4)
        for column, label in zip(columns, report.STATUS_LABELS.values(), strict=True):
            column.metric(label, int(counts.get(label, 0)))
        ui.table(
            frame.drop(columns=["id"]),
            {
                "period": st.column_config.TextColumn("Month"),
                "provider": st.column_config.TextColumn("Provider"),
                "account": st.column_config.TextColumn("Account"),
                "invoice_id": st.column_config.TextColumn("Invoice"),
                "amount": st.column_config.NumberColumn(
                    "Amount", format="%.2f", help="In the invoice's currency"
                ),
                "currency": st.column_config.TextColumn("Currency"),
                "billed": ui.money_column("Billed (synced)", help="USD, billed cost only"),
                "variance": ui.money_column("Variance", help="Invoice minus billed"),
                "variance_pct": st.column_config.NumberColumn(
                    "Variance %", format="%.2f%%", help="Of the invoice"
                ),
                "status": st.column_config.TextColumn("Status"),
                "explanation": st.column_config.TextColumn("Days that explain it", width="large"),
                "issue_date": ui.date_column("Issued"),
                "due_date": ui.date_column("Due"),
                "po_number": st.column_config.TextColumn("PO number"),
                "source": st.column_config.TextColumn(
                    "Source", help="Recorded by finance, or read from the provider's billing API"
                ),
            },
            money_columns=report.MONEY_COLUMNS,
            pinned=["invoice_id"],
            status_column="status",
            status_levels=report.STATUS_LEVELS,
        )
        st.download_button(
            "Download the list (CSV)",
            ui.csv_bytes(frame),
            file_name=f"invoices-{today}.csv",
            mime="text/csv",
            key="inv_csv",
            on_click="ignore",
        )
        by_id = {m.id: m for m in matches}
        labels = {
            int(r.id): f"{r.account} {r.invoice_id} ({r.period}, {r.status})"
            for r in frame.itertuples()
        }
        if labels:
            st.subheader("Why an invoice differs")
            # Start from the first invoice that does not match: that is the one to explain.
            ids = list(labels)
            first_off = next(
                (i for i, m in enumerate(ids) if by_id[m].status != MatchStatus.MATCHED), 0
            )
            chosen = st.selectbox(
                "Invoice", ids, index=first_off, format_func=labels.__getitem__, key="inv_explain"
            )
            match = by_id[int(chosen)]
            days = report.explaining_days_frame(match)
            if days.empty:
                st.caption(
                    "No day of the month is unbilled or changed since the invoice was recorded."
                )
            else:
                st.caption(
                    f"Not billed yet: {ui.money(match.unbilled_estimate)} estimated over "
                    f"{len(match.not_billed)} day(s); changed since recorded: "
                    f"{len(match.changed)} day(s)."
                )
                ui.table(
                    days,
                    {
                        "day": ui.date_column("Day (UTC)"),
                        "reason": st.column_config.TextColumn("Why"),
                        "estimated": ui.money_column("Estimated, not billed"),
                        "billed_then": ui.money_column("Billed when recorded"),
                        "billed_now": ui.money_column("Billed now"),
                    },
                    money_columns=report.MONEY_COLUMNS,
                    key="inv_days",
                )
            ui.remove_picker(
                labels,
                pick="Invoice to remove (recorded by mistake)",
                button="Remove invoice",
                key="inv_remove",
                remove=lambda i: book_actions.remove_invoice(runtime, invoice_id=i),
                failed="Could not remove the invoice: {reason}",
                done=lambda label: f"Removed invoice {label}.",
            )

with record_tab:
    ui.form_state("invoice_add")
    if not accounts:
        st.info(
            "Invoices belong to a provider account: "
            + (
                "add the account first (Accounts page)."
                if router.can_open("accounts.py")
                else "ask an admin to add it."
            )
        )
    else:
        names = {a.name: a for a in accounts}
        with st.form("invoice_add"):
            c1, c2 = st.columns(2)
            account = c1.selectbox(
                "Account",
                list(names),
                format_func=lambda n: f"{n} ({names[n].provider_display_name})",
                key="inv_account",
            )
            number = c2.text_input("Invoice id (the provider's)", key="inv_number")
            c3, c4, c5 = st.columns(3)
            month = c3.selectbox(
                "Month billed",
                recent_months(today),
                index=1,
                format_func=lambda m: f"{m:%B %Y}",
                key="inv_month",
            )
            issued = c4.date_input("Issue date", value=today, key="inv_issued")
            due = c5.date_input("Due date (optional)", value=None, key="inv_due")
            c6, c7, c8 = st.columns(3)
            amount = c6.text_input("Amount", placeholder="e.g. 1,234.56", key="inv_amount")
            currency = c7.text_input("Currency", value="USD", key="inv_currency")
            po_number = c8.text_input("PO number (optional)", key="inv_po")
            if st.form_submit_button("Record invoice", type="primary"):
                ui.attempt_form(
                    "invoice_add",
                    lambda: book_actions.add_invoice(
                        runtime,
                        provider=names[str(account)].provider,
                        account=str(account),
                        invoice_number=number,
                        period=month,
                        issued_on=issued,
                        due_on=due if isinstance(due, dt.date) else None,
                        amount=amount,
                        currency=currency,
                        po_number=po_number,
                    ),
                    failed="Not recorded: {reason}.",
                    done=lambda m: (
                        f"Recorded invoice {m.invoice_number} of {m.account}: "
                        f"{report.STATUS_LABELS[m.status].lower()}."
                    ),
                    reset={"inv_number": "", "inv_amount": "", "inv_po": ""},
                )

with import_tab:
    st.caption(
        "One row per invoice. Required: "
        f"{', '.join(invoice_csv.REQUIRED)}; optional: {', '.join(invoice_csv.OPTIONAL)}. "
        "provider as in the list of accounts (openai or OpenAI), period as YYYY-MM, dates as "
        "YYYY-MM-DD, the amount as on the invoice (currency USD unless given). Every row is "
        "checked first: any problem is listed by line and nothing is recorded."
    )
    st.download_button(
        "Download the CSV template",
        invoice_csv.template_csv(),
        file_name="invoices-template.csv",
        mime="text/csv",
        key="inv_template",
    )
    upload = st.file_uploader("CSV file", type=["csv"], key="inv_file", max_upload_size=10)
    if st.button("Import invoices", key="inv_import", disabled=upload is None) and upload:
        ui.attempt(
            lambda: book_actions.import_invoices(runtime, upload=upload),
            failed="Nothing was recorded: {reason}",
            done=lambda n: f"Recorded {n} invoice(s).",
        )
