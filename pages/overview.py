"""Overview: month-to-date spend and budget, one card per account, the 30-day chart, top models.

Costs are billed where the provider reports them and estimated otherwise; the captions say
how much of each. All days are UTC.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.reporting.forecast import floor_to_spend
from tracker.reporting.overview import status_for
from tracker.ui import charts, data
from tracker.ui import components as ui

settings = data.get_settings()
today = units.today_utc()
summary = data.spend_summary(today)
cards = data.account_cards(today, settings.status_warning_pct, settings.status_critical_pct)

st.title("Overview")
st.caption(f"Month to date: {summary.month_start:%d %b %Y} – {today:%d %b %Y} (UTC)")

if not cards:
    st.info(
        "No provider account is connected yet. An admin can add one on the **Accounts** page "
        "(or with `python -m tracker accounts add`), then run a sync to see spend here."
    )
    st.stop()

change = summary.change_pct
yesterday = today - dt.timedelta(days=1)
col_spend, col_prev, col_budget, col_projected = st.columns(4)
col_spend.metric(
    "Month-to-date spend",
    ui.money(summary.current.cost),
    delta=None if change is None else f"{ui.percent(change)} vs same days last month",
    delta_color="inverse",
    help="Today's usage so far included. The change compares complete days only.",
)
if summary.previous_start is not None and summary.previous_end is not None:
    col_prev.metric(
        "Same days last month",
        ui.money(summary.previous.cost),
        help=(
            f"{summary.previous_start:%d %b} – {summary.previous_end:%d %b %Y} (UTC), against "
            f"{summary.month_start:%d %b} – {yesterday:%d %b} this month "
            f"({ui.money(summary.complete.cost)}): today is still arriving, so it is left out "
            "of the comparison."
        ),
    )
else:
    col_prev.metric(
        "Same days last month", "—", help="No complete day this month yet: today is the 1st."
    )
if summary.budget is not None:
    col_budget.metric(
        "Budget used",
        ui.percent(summary.budget_used_pct),
        help=(
            f"Of {ui.money(summary.budget)} "
            + (
                "(organisation budget)"
                if summary.budget_source == "organisation"
                else "(sum of the accounts' monthly budgets)"
            )
        ),
    )
    with col_budget:
        ui.status_badge(
            status_for(
                summary.budget_used_pct,
                warning_pct=settings.status_warning_pct,
                critical_pct=settings.status_critical_pct,
            ),
            about="Organisation budget",
        )
else:
    col_budget.metric("Budget used", "—", help="No budget set: add one to an account.")
projection, stored = data.org_projection(today)
shown = floor_to_spend(projection, spent_to_date=summary.current.cost, today=today)
projected_total, low, high = shown.projected_total, shown.lower, shown.upper
runs_out = shown.budget_exhausted_on
col_projected.metric(
    "Projected month-end",
    ui.money(projected_total),
    help=(
        "Never below the spend so far; "
        f"80 % interval {ui.money(low)} – {ui.money(high)}"
        + (
            f"; backtest error {ui.percent(projection.backtest_mape)}"
            if projection.backtest_mape is not None
            else ""
        )
        + ("" if stored else "; computed now, the worker stores it after its next sync")
        + (". Details on the Forecast page." if router.can_open("forecast.py") else ".")
    ),
)
st.caption(ui.basis_caption(summary.current))
st.caption(
    f"Projected month-end: {ui.money(projected_total)} "
    f"(80 % interval {ui.money(low)} – {ui.money(high)})"
    + (
        f"; at this pace the budget runs out on {runs_out:%d %b}"
        if runs_out is not None and runs_out > today
        else "; the budget is used up"
        if runs_out is not None
        else ""
    )
    + "."
)

unpriced = data.unpriced_models(summary.month_start, today)
if not unpriced.empty:
    st.warning(
        f"{len(unpriced)} model(s) used this month have no list price, so their usage without a "
        "billed cost counts as $0: "
        + ui.plain_text(
            ", ".join(
                sorted(
                    f"{p}/{m}" for p, m in zip(unpriced["provider"], unpriced["model"], strict=True)
                )
            )
        )
        + ". An admin can add a price override on the Admin page."
    )
elif summary.current.unpriced_rows and summary.current.basis == "none":
    st.info("Usage was synced but none of it is priced yet.")

st.subheader("Accounts")
columns = st.columns(min(len(cards), 3))
for i, card in enumerate(cards):
    with columns[i % len(columns)]:
        ui.account_card(card, sync_health_open=router.can_open("sync_health.py"))

st.subheader("Daily cost, last 30 days")
start = today - dt.timedelta(days=29)
daily = data.daily_cost_by_provider(today, 30)
if daily.empty:
    st.info(
        "No usage in the last 30 days yet. "
        + (
            "Run a sync (Accounts page) or wait for the worker."
            if router.can_open("accounts.py")
            else "It appears after the worker's next sync."
        )
    )
else:
    charts.cost_chart(daily, x="day", color="provider", days=(start, today), key="daily_cost_chart")

st.subheader("Top models this month")
models = data.top_models(summary.month_start, today, 10)
if models.empty:
    st.info("No model usage this month yet.")
else:
    ui.table(
        models,
        {
            "model": st.column_config.TextColumn("Model"),
            "provider": st.column_config.TextColumn("Provider"),
            "cost": ui.money_column("Cost", help="Billed where reported, else estimated"),
            "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
            "requests": st.column_config.NumberColumn(
                "Requests", format="localized", help="— where the provider reports no count"
            ),
        },
        money_columns=["cost"],
    )
