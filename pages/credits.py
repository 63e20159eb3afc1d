"""Credits (admin, finance): credit grants and prepaid balances per account, burned down by
the account's usage in priority order, with what is left, the projected exhaustion date (from
the account's forecast) and, for providers that report a balance (DeepSeek, OpenRouter), the
provider's figure beside the ledger's.

The figures are `tracker.planning.credits` (what `python -m tracker credits list` prints);
every change goes through `tracker.ui.actions`, re-checked against the role and audited.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import plotly.graph_objects as go
import streamlit as st

from tracker.core import units
from tracker.reporting import credits as report
from tracker.ui import book_actions, charts, data
from tracker.ui import components as ui

runtime = data.get_runtime()
today = units.today_utc()

st.title("Credits")
st.caption(
    "Each day's spend of an account (billed, else estimated; today's so far included) is taken "
    "from its grants usable that day: the lowest priority number first, then the earliest "
    "expiry. A grant is never used before its start or from its expiry day on; what it has "
    "left then is lost. Only USD grants burn: usage is counted in USD."
)
ledger_tab, add_tab = ui.page_tabs(["Balances", "Add a grant"], key="credits_tab")
ledger = data.credit_ledger(today)
accounts = data.accounts()

with ledger_tab:
    if not ledger:
        st.info("No credit grant recorded yet, and no provider reports a balance: add a grant.")
    else:
        ui.table(
            report.accounts_frame(ledger),
            {
                "account": st.column_config.TextColumn("Account"),
                "provider": st.column_config.TextColumn("Provider"),
                "available": ui.money_column("Left now", help="USD grants usable today"),
                "upcoming": ui.money_column("Starting later", help="USD grants not started yet"),
                "exhausted_on": ui.date_column("Runs out (projected)"),
                "exhaustion": st.column_config.TextColumn(
                    "Projection", help="What the date means, or why there is none"
                ),
                "uncovered": ui.money_column(
                    "Not covered", help="Spend since the first grant started that no grant paid"
                ),
                "provider_balance": st.column_config.NumberColumn(
                    "Provider balance", format="%.2f", help="As the provider last reported it"
                ),
                "provider_currency": st.column_config.TextColumn("Currency"),
                "ledger_balance": st.column_config.NumberColumn(
                    "Ledger", format="%.2f", help="What the ledger has left now, same currency"
                ),
                "difference": ui.money_column(
                    "Difference", help="Provider minus ledger; — : not comparable (not USD)"
                ),
            },
            money_columns=report.MONEY_COLUMNS,
            pinned=["account"],
        )
        grants = report.grants_frame(ledger)
        if not grants.empty:
            st.subheader("Grants")
            ui.table(
                grants,
                {
                    "id": st.column_config.NumberColumn("#"),
                    "account": st.column_config.TextColumn("Account"),
                    "priority": st.column_config.NumberColumn("Priority"),
                    "amount": st.column_config.NumberColumn("Amount", format="%.2f"),
                    "currency": st.column_config.TextColumn("Currency"),
                    "starts_on": ui.date_column("Starts"),
                    "expires_on": ui.date_column("Expires"),
                    "used": ui.money_column("Used"),
                    "expired": ui.money_column("Lost at expiry"),
                    "remaining": st.column_config.NumberColumn("Left", format="%.2f"),
                    "status": st.column_config.TextColumn("Status"),
                    "note": st.column_config.TextColumn("Note"),
                },
                money_columns=report.MONEY_COLUMNS,
                pinned=["id", "account"],
            )
        with_burn = [a for a in ledger if a.burn]
        if with_burn:
            st.subheader("Burn-down")
            names = [a.account for a in with_burn]
            chosen = st.selectbox("Account", names, key="credits_burn_account")
            entry = with_burn[names.index(str(chosen))]
            burn = report.burn_frame(entry)
            fig = go.Figure()
            for kind, dash in (("Recorded", "solid"), ("Projected", "dot")):
                part = burn[burn["kind"] == kind]
                fig.add_trace(
                    go.Scatter(
                        x=list(part["day"]),
                        y=[float(v) for v in part["left"]],
                        name=kind,
                        mode="lines",
                        line={"dash": dash, "color": charts.SPEND_COLOR},
                        hovertemplate=f"{kind}: {charts.MONEY_HOVER}<extra></extra>",
                    )
                )
            charts.show_chart(fig, key="credits_chart")
            if entry.exhausted_on is not None:
                st.caption(
                    f"At the forecast's daily spend the grants run out on {entry.exhausted_on} "
                    f"({(entry.exhausted_on - today).days} days from today)."
                )
            else:
                st.caption(f"No exhaustion date: {entry.exhaustion}.")
        if not grants.empty:
            labels = {
                int(r.id): f"#{r.id} {r.account}: {r.amount:,.2f} {r.currency} from {r.starts_on}"
                for r in grants.itertuples()
            }
            ui.remove_picker(
                labels,
                pick="Grant to remove (recorded by mistake)",
                button="Remove grant",
                key="credits_remove",
                remove=lambda i: book_actions.remove_grant(runtime, grant_id=i),
                failed="Could not remove the grant: {reason}",
                done=lambda label: f"Removed grant {label}.",
            )

with add_tab:
    ui.form_state("credit_add")
    if not accounts:
        st.info(
            "Grants belong to a provider account: "
            + (
                "add the account first (Accounts page)."
                if router.can_open("accounts.py")
                else "ask an admin to add it."
            )
        )
    else:
        names_by = {a.name: a for a in accounts}
        with st.form("credit_add"):
            c1, c2, c3 = st.columns(3)
            account = c1.selectbox(
                "Account",
                list(names_by),
                format_func=lambda n: f"{n} ({names_by[n].provider_display_name})",
                key="credit_account",
            )
            amount = c2.text_input("Amount", placeholder="e.g. 5,000", key="credit_amount")
            currency = c3.text_input("Currency", value="USD", key="credit_currency")
            c4, c5, c6 = st.columns(3)
            starts = c4.date_input("Starts on", value=units.month_start(today), key="credit_start")
            expires = c5.date_input(
                "Expires on (optional)",
                value=None,
                key="credit_expiry",
                help="The first day it can no longer be used",
            )
            priority = c6.number_input(
                "Priority (lower is used first)",
                min_value=0,
                max_value=1000,
                value=1,
                step=1,
                key="credit_priority",
            )
            note = st.text_input("Note (optional)", key="credit_note")
            if st.form_submit_button("Add grant", type="primary"):
                ui.attempt_form(
                    "credit_add",
                    lambda: book_actions.add_grant(
                        runtime,
                        account=str(account),
                        amount=amount,
                        currency=currency,
                        starts_on=starts if isinstance(starts, dt.date) else None,
                        expires_on=expires if isinstance(expires, dt.date) else None,
                        priority=int(priority),
                        note=note,
                    ),
                    failed="Not added: {reason}.",
                    done=lambda label: f"Added grant {label}.",
                    reset={"credit_amount": "", "credit_note": ""},
                )
