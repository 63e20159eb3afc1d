"""Every Plotly figure of the app, in one style: axis titles, dollars to the cent and each
bar's total on hover, one colour per provider, whole days on a date axis with today marked
partial, no toolbar. Charts need floats; the figures they draw come as exact `Decimal`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import plotly.express as px
import streamlit as st

from tracker.core import units
from tracker.providers.registry import PROVIDERS

# Axis and legend titles for the frames' column names.
AXIS_TITLES = {
    "day": "Day (UTC)",
    "provider": "Provider",
    "account": "Account",
    "model": "Model",
    "project": "Project",
    "api_key": "API key",
    "user": "User",
    "usage_type": "Usage type",
    "team": "Team",
    "cost": "Cost (USD)",
    "tokens": "Tokens",
    "kind": "Token kind",
}
# No Plotly toolbar: it covered the first legend entry and offers nothing a finance user needs
# (the table below each chart downloads the figures).
PLOTLY_CONFIG = {"displayModeBar": False, "displaylogo": False}
MONEY_HOVER = "%{y:$,.2f}"
DAY_MS = 86_400_000
# Spend and its projection (the theme's primary colour, .streamlit/config.toml); red is kept
# for budgets and the Critical status.
SPEND_COLOR = "#1f5fbf"
SPEND_BAND_COLOR = "rgba(31, 95, 191, 0.15)"
# One colour per provider on every chart, in the registry's order.
PROVIDER_COLORS = {
    info.display_name: colour
    for info, colour in zip(PROVIDERS.values(), px.colors.qualitative.Safe, strict=False)
}


def show_chart(fig: Any, *, key: str, height: int = 360, money: bool = True) -> None:
    """Draw a Plotly figure in the app's one style: horizontal legend below, $ axis and cents
    on hover for money, no toolbar."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.22, "title_text": ""},
        hoverlabel={"namelength": -1},
    )
    if money:
        fig.update_yaxes(tickprefix="$", separatethousands=True)
    st.plotly_chart(fig, width="stretch", key=key, config=PLOTLY_CONFIG)


def _mark_partial_today(fig: Any, today: dt.date) -> None:
    """A dotted line on today's bar: its usage is still arriving."""
    fig.add_shape(
        type="line",
        x0=today.isoformat(),
        x1=today.isoformat(),
        y0=0,
        y1=1,
        yref="paper",
        line={"dash": "dot", "width": 1, "color": "gray"},
    )
    fig.add_annotation(
        x=today.isoformat(),
        y=1,
        yref="paper",
        text="today: partial",
        showarrow=False,
        yanchor="bottom",
        xanchor="right",
        font={"size": 11, "color": "gray"},
    )


def cost_chart(
    frame: pd.DataFrame,
    *,
    x: str,
    key: str,
    color: str | None = None,
    days: tuple[dt.date, dt.date] | None = None,
) -> None:
    """Bars of cost by `x`, stacked by `color`: money on the axis and in the hover (to the
    cent), each bar's total on hover. With x="day", `days` (first, last) puts every day on
    the axis and marks today as partial when it is shown."""
    plot = frame.assign(cost=frame["cost"].map(float))
    for column in (x, color):
        if column and column != "day":
            plot[column] = plot[column].map(str)
    labels = {c: AXIS_TITLES.get(c, c) for c in plot.columns}
    fig = px.bar(
        plot,
        x=x,
        y="cost",
        color=color,
        labels=labels,
        color_discrete_map=PROVIDER_COLORS if color == "provider" else None,
    )
    fig.update_traces(hovertemplate=f"%{{fullData.name}}: {MONEY_HOVER}<extra></extra>")
    totals = plot.groupby(x, sort=False)["cost"].sum()
    fig.add_scatter(
        x=list(totals.index),
        y=list(totals.values),
        mode="markers",
        marker={"opacity": 0},
        name="Total",
        showlegend=False,
        hovertemplate=f"Total: {MONEY_HOVER}<extra></extra>",
    )
    fig.update_layout(barmode="stack", hovermode="x unified")
    if x == "day" and days is not None:
        first, last = days
        span = (last - first).days + 1
        fig.update_xaxes(
            range=[first - dt.timedelta(hours=12), last + dt.timedelta(hours=12)],
            tickformat="%d %b",
            dtick=DAY_MS * max(1, -(-span // 15)),  # whole days, at most ~15 labels
        )
        if last == units.today_utc():
            _mark_partial_today(fig, last)
    show_chart(fig, key=key)


def count_chart(frame: pd.DataFrame, *, x: str, y: str, key: str) -> None:
    """Bars of a count (tokens, requests) by `x`, in the same style as the cost charts."""
    labels = {c: AXIS_TITLES.get(c, c) for c in frame.columns}
    fig = px.bar(frame, x=x, y=y, labels=labels)
    fig.update_traces(hovertemplate="%{x}: %{y:,}<extra></extra>")
    show_chart(fig, key=key, height=320, money=False)
