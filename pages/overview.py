"""Overview: month-to-date spend and budget, one card per account, the 30-day chart, top models.

Costs are billed where the provider reports them and estimated otherwise; the captions say
how much of each. All days are UTC.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.reporting.forecast import interval_floor, month_end_floor, runs_out_on
from tracker.ui import components as ui
from tracker.ui import data

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
col_spend, col_prev, col_budget, col_projected = st.columns(4)
col_spend.metric(
    "Month-to-date spend",
    ui.money(summary.current.cost),
    delta=None if change is None else f"{ui.percent(change)} vs same days last month",
    delta_color="inverse",
)
col_prev.metric(
    "Same days last month",
    ui.money(summary.previous.cost),
    help=f"{summary.previous_start:%d %b} – {summary.previous_end:%d %b %Y} (UTC)",
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
else:
    col_budget.metric("Budget used", "—", help="No budget set: add one to an account.")
projection, stored = data.org_projection(today)
projected_total = month_end_floor(projection, summary.current.cost)
low, high = interval_floor(projection, summary.current.cost)
runs_out = runs_out_on(
    projection, spent_to_date=summary.current.cost, budget=summary.budget, today=today
)
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
        + ". Details on the Forecast page (admin, finance)."
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
        ui.account_card(card)

st.subheader("Daily cost, last 30 days")
start = today - dt.timedelta(days=29)
daily = data.daily_cost_by_provider(today, 30)
if daily.empty:
    st.info("No usage in the last 30 days yet. Run a sync (Accounts page) or wait for the worker.")
else:
    ui.daily_cost_chart(daily, start=start, end=today)

st.subheader("Top models this month")
models = data.top_models(summary.month_start, today, 10)
if models.empty:
    st.info("No model usage this month yet.")
else:
    st.dataframe(
        ui.display_frame(models, ["cost"]),
        hide_index=True,
        column_config={
            "model": st.column_config.TextColumn("Model"),
            "provider": st.column_config.TextColumn("Provider"),
            "cost": ui.money_column("Cost", help="Billed where reported, else estimated"),
            "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
            "requests": st.column_config.NumberColumn("Requests", format="localized"),
        },
    )
