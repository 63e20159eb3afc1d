"""Budgets & alerts (admin and finance edit, unless `BUDGETS_ADMIN_ONLY`): monthly budgets per
organisation, service, account and team with month-to-date spend, % used and projected
month-end; each provider's own spend limit (and spend alert, which only notifies) beside our
budget, and its members' effective limits; the alert rules; the recent alert events with
their delivery status, failed deliveries included.

Budget periods are UTC calendar months; money is USD, billed where the provider reports it
and estimated otherwise; a team's spend is its chargeback. Every change goes through
`tracker.ui.actions`, which re-checks the role against the database and is audited. Channel
URLs and addresses are shown masked.
"""

from tracker.ui import router

router.gate()

from decimal import Decimal

import pandas as pd
import streamlit as st

from tracker.alerts import rules as alert_rules
from tracker.core import units
from tracker.planning.budgets import scope_label
from tracker.reporting.budgets import CAP_LEVELS
from tracker.reporting.overview import status_for
from tracker.ui import actions, data
from tracker.ui import components as ui
from tracker.ui.auth import current_user
from tracker.ui.roles import Capability, can

runtime = data.get_runtime()
user = current_user()
can_edit = user is not None and can(user.role, Capability.EDIT_BUDGETS, runtime.settings)
today = units.today_utc()


st.title("Budgets & alerts")
st.caption(
    f"This month: {today.replace(day=1):%d %b} – {today:%d %b %Y} (UTC). Spend is billed where "
    "the provider reports it, estimated otherwise."
)
ui.show_flash()
scopes = data.budget_scopes()
if not can_edit:
    st.info(
        "Read-only: "
        + (
            "budgets and alert rules are set by admins on this installation."
            if user is not None and user.role == "finance"
            else "admins and finance set budgets and alert rules."
        )
    )

events, undelivered = data.alert_events()
if undelivered:
    st.warning(
        f"{undelivered} alert delivery(ies) failed or are waiting. They are retried at the next "
        "check (after each sync, or **Check now** below); the last error of each is in Recent "
        "alerts. Fix the channel or the SMTP settings if the same error repeats."
    )

# --- budgets -----------------------------------------------------------------------------------

st.subheader("Budgets")
table = data.budgets(today)
if table.empty or table["monthly_budget"].isna().all():
    st.info(
        "No budget is set yet. "
        + (
            "Set one below: for the whole organisation, a provider, an account or a team."
            if can_edit
            else "Ask someone who sets budgets to add one on this page."
        )
    )
if not table.empty:
    settings = runtime.settings
    shown = table.drop(columns=["scope"])
    shown.insert(
        1,
        "status",
        [
            None
            if pd.isna(pct)
            else status_for(
                Decimal(str(pct)),
                warning_pct=settings.status_warning_pct,
                critical_pct=settings.status_critical_pct,
            )
            for pct in shown["used_pct"]
        ],
    )
    ui.table(
        shown,
        {
            "scope_label": st.column_config.TextColumn("Scope"),
            "status": st.column_config.TextColumn(
                "Status",
                help=f"Warning from {ui.percent(settings.status_warning_pct, 0)} of the budget, "
                f"Critical from {ui.percent(settings.status_critical_pct, 0)}",
            ),
            "monthly_budget": ui.money_column("Monthly budget"),
            "source": st.column_config.TextColumn(
                "Budget from", help="'sum of accounts' when no organisation budget is set"
            ),
            "spent": ui.money_column(
                "Spent this month",
                help="A team's is its chargeback: its mappings, then the shared-cost rules",
            ),
            "used_pct": st.column_config.ProgressColumn(
                "Used", format="%.1f%%", min_value=0, max_value=100
            ),
            "projected_total": ui.money_column(
                "Projected month-end",
                help="Never below the spend so far; the 80 % interval is on the Forecast page",
            ),
            "projected_pct": st.column_config.NumberColumn(
                "Projected % of budget", format="%.1f%%"
            ),
            "budget_exhausted_on": ui.date_column("Runs out on"),
        },
        money_columns=["monthly_budget", "spent", "projected_total"],
        status_column="status",
    )

if can_edit:
    with st.expander("Set or clear a budget"), st.form("budget_set", clear_on_submit=True):
        scope = st.selectbox("Scope", scopes, format_func=scope_label, key="budget_scope")
        amount = st.text_input(
            "Monthly budget, USD", placeholder="e.g. 1500.00", key="budget_amount"
        )
        clear = st.checkbox("Remove this scope's budget instead", key="budget_clear")
        if st.form_submit_button("Save budget", type="primary"):
            ui.attempt(
                lambda: actions.set_budget(
                    runtime, scope=str(scope), monthly=None if clear else amount
                ),
                failed="Not saved: {reason}. Correct the amount and save again.",
                done=lambda saved: (
                    f"{'Removed' if clear else 'Saved'} the budget of {scope_label(str(saved))}."
                ),
            )

# --- the providers' own caps ------------------------------------------------------------------

st.subheader("Provider spend limits")
caps, partial, members = data.provider_caps(today)
if caps.empty:
    st.caption(
        "No provider spend limit read yet. Each sync reads them for OpenAI (with its spend "
        "alerts), Anthropic (with its members' effective limits), GitHub Copilot (budgets), "
        "xAI and Mistral accounts."
    )
else:
    st.caption(
        "The provider's cap on each whole account, as its last sync read it, beside our "
        "monthly budget (the account's, else its provider's when it is the only account). "
        "A provider's spend alert only emails: it is shown beside the cap, never taken for "
        "one. An alert rule of kind spendlimit warns when the cap is below the budget or "
        "missing."
    )
    ui.table(
        caps,
        {
            "account": st.column_config.TextColumn("Account"),
            "provider": st.column_config.TextColumn("Provider"),
            "provider_cap": st.column_config.NumberColumn(
                "Provider cap", format="%.2f", help="In the cap's currency"
            ),
            "currency": st.column_config.TextColumn("Currency"),
            "period": st.column_config.TextColumn("Per"),
            "enforcement": st.column_config.TextColumn("Enforcement"),
            "provider_alert": st.column_config.NumberColumn(
                "Provider alert",
                format="%.2f",
                help="The lowest spend alert on the whole account (USD a month): the "
                "provider emails when spend passes it, and stops nothing",
            ),
            "alert_status": st.column_config.TextColumn("Alert vs budget"),
            "budget": ui.money_column("Our budget"),
            "budget_from": st.column_config.TextColumn("Budget of"),
            "status": st.column_config.TextColumn("Comparison"),
            "note": st.column_config.TextColumn("Note", width="large"),
            "read_at": ui.datetime_column("Read (UTC)"),
        },
        money_columns=["budget"],
        status_column="status",
        status_levels=CAP_LEVELS,
    )
    if not partial.empty:
        with st.expander(f"Caps on parts of accounts ({len(partial)})"):
            ui.table(
                partial,
                {
                    "account": st.column_config.TextColumn("Account"),
                    "provider": st.column_config.TextColumn("Provider"),
                    "scope": st.column_config.TextColumn("Caps"),
                    "amount": st.column_config.NumberColumn("Amount", format="%.2f"),
                    "currency": st.column_config.TextColumn("Currency"),
                    "period": st.column_config.TextColumn("Per"),
                    "enforcement": st.column_config.TextColumn("Enforcement"),
                },
            )
if not members.empty:
    with st.expander(f"Members' effective limits ({len(members)})"):
        st.caption(
            "The limit that applies to each member at the provider, per period, where it "
            "comes from, and the member's spend so far in the period as the provider "
            "counts it. A member is matched with a user here by email; the team is where "
            "their spend goes (Chargeback mappings)."
        )
        ui.table(
            members,
            {
                "account": st.column_config.TextColumn("Account"),
                "provider": st.column_config.TextColumn("Provider"),
                "member": st.column_config.TextColumn("Member"),
                "email": st.column_config.TextColumn("Email"),
                "user": st.column_config.TextColumn("User here"),
                "team": st.column_config.TextColumn("Team"),
                "limit": st.column_config.NumberColumn(
                    "Effective limit", format="%.2f", help="Empty: no limit for that period"
                ),
                "spent": st.column_config.NumberColumn("Spent this period", format="%.2f"),
                "used_pct": st.column_config.ProgressColumn(
                    "Used", format="%.1f%%", min_value=0, max_value=100
                ),
                "currency": st.column_config.TextColumn("Currency"),
                "period": st.column_config.TextColumn("Per"),
                "source": st.column_config.TextColumn("From", width="large"),
                "read_at": ui.datetime_column("Read (UTC)"),
            },
        )

# --- rules -------------------------------------------------------------------------------------

st.subheader("Alert rules")
rule_table = data.alert_rules()
if rule_table.empty:
    st.info(
        "No alert rule yet. "
        + (
            "Add one below, e.g. kind *budget* on the organisation with your team's email: it "
            "warns at 50, 75, 90 and 100 % of the budget, once each per month."
            if can_edit
            else "Ask someone who sets budgets to add one."
        )
    )
else:
    ui.table(
        rule_table,
        {
            "id": st.column_config.NumberColumn("Id", format="%d"),
            "name": st.column_config.TextColumn("Name"),
            "kind": st.column_config.TextColumn("Kind"),
            "scope": st.column_config.TextColumn("Scope"),
            "thresholds": st.column_config.TextColumn("Fires at"),
            "channels": st.column_config.TextColumn("Channels (masked)"),
            "enabled": st.column_config.CheckboxColumn("Enabled"),
            "created_by": st.column_config.TextColumn("Created by"),
            "created_at": ui.datetime_column("Created (UTC)"),
        },
    )

if can_edit:
    add_tab, toggle_tab, remove_tab = st.tabs(["Add a rule", "Enable / disable", "Remove"])
    with add_tab, st.form("rule_add", clear_on_submit=True):
        kind = st.selectbox(
            "Kind",
            alert_rules.KINDS,
            format_func=lambda k: f"{k} ({alert_rules.THRESHOLD_UNITS[k] or 'no threshold'})",
            key="rule_kind",
        )
        rule_scope = st.selectbox("Scope", scopes, format_func=scope_label, key="rule_scope")
        threshold = st.text_input(
            "Threshold (empty: the kind's defaults)",
            help="budget and quota default to 50, 75, 90 and 100 %; projected to 100 %; "
            "variance to 10 %; sync to 6 hours; ratelimit to 10 % remaining; anomaly to any; "
            "spendlimit to a provider cap below 100 % of the budget.",
            key="rule_threshold",
        )
        channels = st.text_area(
            "Channels, one per line",
            placeholder="email:finance@example.org\nslack:https://hooks.slack.com/services/…\n"
            "webhook:https://example.org/hooks/ai-costs",
            key="rule_channels",
        )
        rule_name = st.text_input("Name (optional)", key="rule_name")
        if st.form_submit_button("Add rule", type="primary"):
            ui.attempt(
                lambda: actions.add_rule(
                    runtime,
                    kind=str(kind),
                    scope=str(rule_scope),
                    threshold=threshold.strip(),
                    channels=[line.strip() for line in channels.splitlines() if line.strip()],
                    name=rule_name.strip() or None,
                ),
                failed="Not added: {reason}. Correct the field and submit again.",
                done=lambda rule_id: f"Added alert rule {rule_id}. It is checked after every sync.",
            )

    rule_ids = [int(i) for i in rule_table["id"]] if not rule_table.empty else []
    names = dict(zip(rule_ids, rule_table["name"] if not rule_table.empty else [], strict=True))
    enabled = dict(
        zip(rule_ids, rule_table["enabled"] if not rule_table.empty else [], strict=True)
    )

    def _label(rule_id: int) -> str:
        state = "enabled" if enabled[rule_id] else "disabled"
        return f"#{rule_id} {names[rule_id]} ({state})"

    with toggle_tab:
        if not rule_ids:
            st.caption("Add a rule first.")
        else:
            target = st.selectbox("Rule", rule_ids, format_func=_label, key="toggle_rule")
            now_enabled = bool(enabled[int(target)])
            if st.button("Disable" if now_enabled else "Enable", key="toggle_go"):
                ui.attempt(
                    lambda: actions.set_rule_enabled(
                        runtime, rule_id=int(target), enabled=not now_enabled
                    ),
                    failed="Not changed: {reason}",
                    done=f"Rule {target} {'disabled' if now_enabled else 'enabled'}.",
                )

    with remove_tab:
        if not rule_ids:
            st.caption("No rule to remove.")
        else:
            target = st.selectbox("Rule", rule_ids, format_func=_label, key="remove_rule")
            st.warning(
                "Removing a rule deletes its alert history too. The audit log keeps a record."
            )
            confirm = st.checkbox(f"Yes, remove rule {target}", key="remove_rule_confirm")
            if st.button("Remove rule", key="remove_rule_go", type="primary"):
                if not confirm:
                    st.error("Tick the confirmation box first, then press Remove rule again.")
                else:
                    ui.attempt(
                        lambda: actions.remove_rule(runtime, rule_id=int(target)),
                        failed="Not removed: {reason}",
                        done=f"Removed rule {target}.",
                    )

# --- events ------------------------------------------------------------------------------------

st.subheader("Recent alerts")
head, button_col = st.columns([4, 1])
head.caption(
    "Each threshold fires once per budget period. A failed delivery stays here with its error "
    "and is retried at the next check; a channel that already received it is not sent again."
)
if can_edit and button_col.button("Check now", key="alerts_check", help="Evaluate every rule now"):
    with st.spinner("Checking the rules and delivering…"):
        ui.attempt(
            lambda: actions.check_alerts(runtime),
            failed="Check failed: {reason}. Try again, or run `python -m tracker alerts check`.",
            done=lambda report: f"Check done: {report.summary()}.",
        )

if events.empty:
    st.info("No alert has fired yet. Rules are checked after every sync.")
else:
    failed = events[events["delivery_status"] == alert_rules.DeliveryStatus.FAILED]
    if not failed.empty:
        st.error(
            f"{len(failed)} of the alerts below did not reach every channel; see each channel "
            "and the last error. Check the channel (URL, address) or the SMTP settings; the "
            "channels not reached are retried."
        )
    ui.table(
        events.drop(columns=["delivery_status"]),
        {
            "fired_at": ui.datetime_column("Fired (UTC)"),
            "rule": st.column_config.TextColumn("Rule"),
            "kind": st.column_config.TextColumn("Kind"),
            "period": st.column_config.TextColumn("Period"),
            "message": st.column_config.TextColumn("Message", width="large"),
            "delivery": st.column_config.TextColumn("Delivery"),
            "channels": st.column_config.TextColumn(
                "Each channel", help="Masked; a channel already reached is not sent again"
            ),
            "delivery_attempts": st.column_config.NumberColumn("Attempts", format="%d"),
            "last_delivery_error": st.column_config.TextColumn("Last error", width="medium"),
            "delivered_at": ui.datetime_column("Delivered (UTC)"),
        },
    )
