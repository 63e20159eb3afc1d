"""Forecast (admin, finance): actual vs projected month-end spend per scope, with the 80 %
prediction interval, the budget and the day it runs out at the current pace, and the
backtest error of the model next to that of a straight run-rate.

The worker writes the projections after each sync (`tracker.projections`); until it has done
so this month they are computed on the spot with the same model, and the page says so.
Days are UTC; today's usage is still arriving, so actuals stop at yesterday.
"""

from tracker.ui import router

router.gate()

import plotly.graph_objects as go
import streamlit as st

from tracker.core import units
from tracker.planning.budgets import scope_label
from tracker.planning.projections import Projection
from tracker.reporting.forecast import projection_frame, projection_path
from tracker.ui import charts, data, views
from tracker.ui import components as ui

today = units.today_utc()
found = data.projections(today)

st.title("Forecast")
st.caption(
    f"Month-end projection for {today:%B %Y} (UTC). The model knows weekdays differ from "
    "weekends; the band is its 80 % prediction interval."
)
if not found.items:
    st.info(
        "Nothing to forecast yet: no provider account is connected. An admin can add one on "
        "the Accounts page and run a sync; the forecast appears after the first synced day."
    )
    st.stop()
if found.stored and found.computed_at is not None:
    st.caption(f"Projections written by the worker at {found.computed_at:%Y-%m-%d %H:%M} UTC.")
else:
    st.caption(
        "Computed just now: the worker writes stored projections after its next sync "
        "(`python -m tracker forecast` shows the same figures)."
    )


def backtest_text(p: Projection) -> str:
    """'Backtest error 6.2 % (straight run-rate 14.8 %) over 12 past projections'."""
    if p.backtest_mape is None:
        return "Backtest error: not enough history yet (it needs a complete past month of usage)."
    run_rate = "—" if p.run_rate_mape is None else ui.percent(p.run_rate_mape)
    return (
        f"Backtest error {ui.percent(p.backtest_mape)} (straight run-rate {run_rate}) over "
        f"{p.backtest_samples} past projection(s): the mean absolute % difference between "
        "the projected and the actual month-end total."
    )


items = list(found.items)
scopes = [p.scope for p in items]
# The scope lives in the address (?scope=team:Platform): a reload keeps it, a link shares it.
ui.follow_url("forecast_")
ui.restore_choice_from_url("forecast_scope", "scope", scopes)
choice = st.selectbox("Scope", scopes, format_func=scope_label, key="forecast_scope")
ui.write_query({"scope": choice})
views.save_control("forecast")
p = next(x for x in items if x.scope == choice)

# The interval needs the most room: two amounts side by side.
c1, c2, c3, c4 = st.columns([1, 1, 1.6, 1])
c1.metric(
    "Actual to date",
    ui.money(p.actual_to_date),
    help=f"Complete days through {p.as_of:%d %b}: the forecast starts from whole days, so "
    "today's usage so far (in the Overview's month-to-date) is not in this figure yet.",
)
c2.metric(
    "Projected month-end",
    ui.money(p.projected_total),
    help=f"80 % interval {ui.money(p.lower)} – {ui.money(p.upper)}; "
    f"straight run-rate {ui.money(p.run_rate_total)}",
)
c3.metric("80 % interval", f"{ui.money(p.lower)} – {ui.money(p.upper)}")
if p.budget:
    c4.metric(
        "Budget runs out",
        f"After {units.month_bounds(today)[1]:%d %b}"
        if p.budget_exhausted_on is None
        else f"{p.budget_exhausted_on:%d %b}",
        help=f"Monthly budget {ui.money(p.budget)}, at the projected pace",
    )
else:
    c4.metric("Budget runs out", "—", help="No budget on this scope (Budgets & alerts page)")
st.caption(backtest_text(p))


def draw_chart(p: Projection) -> None:
    """Actual and projected cumulative spend, the interval band, the budget line."""
    path = projection_path(p)
    fig = go.Figure()
    band = path.dropna(subset=["upper"])
    if not band.empty:
        fig.add_trace(
            go.Scatter(
                x=list(band["day"]) + list(band["day"])[::-1],
                y=list(band["upper"]) + list(band["lower"])[::-1],
                fill="toself",
                mode="lines",
                fillcolor=charts.SPEND_BAND_COLOR,
                line={"width": 0},
                hoverinfo="skip",
                hovertemplate=None,
                name="80 % interval",
            )
        )
    actual = path.dropna(subset=["actual"])
    fig.add_trace(
        go.Scatter(
            x=actual["day"],
            y=actual["actual"],
            mode="lines+markers",
            line={"color": charts.SPEND_COLOR},
            name="Actual",
        )
    )
    if not band.empty:
        fig.add_trace(
            go.Scatter(
                x=band["day"],
                y=band["forecast"],
                mode="lines",
                line={"dash": "dash", "color": charts.SPEND_COLOR},
                name="Projected",
            )
        )
    if p.budget:
        fig.add_hline(
            y=float(p.budget),
            line_color="red",
            line_dash="dot",
            annotation_text=f"Budget {ui.money(p.budget)}",
        )
    if p.budget_exhausted_on is not None:
        fig.add_vline(x=p.budget_exhausted_on.isoformat(), line_color="red", line_width=1)
    fig.update_traces(hovertemplate=f"%{{fullData.name}}: {charts.MONEY_HOVER}<extra></extra>")
    fig.update_layout(
        hovermode="x unified",
        xaxis_title=charts.AXIS_TITLES["day"],
        yaxis_title="Cumulative spend this month (USD)",
    )
    charts.show_chart(fig, key="forecast_chart", height=380)


if not p.daily and not p.projected_total and not p.actual_to_date:
    # An empty chart would draw a meaningless axis; say what is missing instead.
    st.info(
        f"No spend yet for {scope_label(p.scope)} on a complete day this month (today's usage "
        "is still arriving). The chart appears after the first complete day with spend."
    )
else:
    draw_chart(p)

st.subheader("Every scope")
table = projection_frame(tuple(items))
ui.table(
    table,
    {
        "scope": st.column_config.TextColumn("Scope"),
        "actual_to_date": ui.money_column("Actual to date"),
        "projected_total": ui.money_column("Projected month-end"),
        "lower": ui.money_column("80 % low"),
        "upper": ui.money_column("80 % high"),
        "budget": ui.money_column("Budget"),
        "projected_pct_of_budget": st.column_config.NumberColumn(
            "Projected % of budget", format="%.1f%%"
        ),
        "budget_exhausted_on": ui.date_column("Budget runs out"),
        "backtest_mape": st.column_config.NumberColumn(
            "Backtest error", format="%.1f%%", help="Mean absolute % error of this model"
        ),
        "run_rate_mape": st.column_config.NumberColumn(
            "Run-rate error", format="%.1f%%", help="The same backtest for a straight run-rate"
        ),
        "backtest_samples": st.column_config.NumberColumn("Backtests", format="%d"),
    },
    money_columns=["actual_to_date", "projected_total", "lower", "upper", "budget"],
)
