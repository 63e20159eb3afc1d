"""Anomalies (admin, finance): unusual daily costs per account and model, each with its
baseline, robust score and the change split into volume, mix and rate effects in dollars;
admins and finance can acknowledge one (it then stops alerting).

The worker scores the last week of complete days after each sync (`tracker.anomalies`);
days are UTC. Acknowledging goes through `tracker.ui.actions`, which re-checks the role
against the database and is audited.
"""

from tracker.ui import router

router.gate()

import datetime as dt

import streamlit as st

from tracker.core import units
from tracker.reporting.forecast import open_excess
from tracker.ui import actions, data
from tracker.ui import components as ui

WINDOWS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "Last year": 365}
MONEY = ["actual_cost", "baseline_cost", "excess", "volume_effect", "mix_effect", "rate_effect"]

runtime = data.get_runtime()
today = units.today_utc()

st.title("Anomalies")
st.caption(
    "A day counts as an anomaly when its cost is far above its usual level for that weekday "
    "(robust score of 4 or more) and at least $5 above it. Volume + mix + rate add up to the "
    "excess: more usage, a shift to dearer models or tiers, and a change in price per token "
    "(prices, cache hits)."
)
ui.show_flash()

c1, c2 = st.columns([2, 1])
window = c1.selectbox("Period", list(WINDOWS), index=1, key="anomaly_window")
show_acknowledged = c2.toggle("Show acknowledged", value=False, key="anomaly_show_ack")
since = today - dt.timedelta(days=WINDOWS[str(window)])
frame = data.anomalies(since, bool(show_acknowledged))

if frame.empty:
    st.info(
        "No anomaly in this period. They are detected after each sync once an account has "
        "two weeks of history; widen the period or show acknowledged ones to see older ones."
    )
    st.stop()

open_rows = frame[frame["acknowledged_at"].isna()]
m1, m2 = st.columns(2)
m1.metric("Open anomalies", f"{len(open_rows)}")
m2.metric(
    "Cost above baseline (open)",
    ui.money(open_excess(frame) if not open_rows.empty else None),
    help="An account's anomaly and its models' anomalies on the same day are counted once.",
)

shown = frame.drop(columns=["id"])
ui.table(
    shown,
    {
        "day": ui.date_column("Day (UTC)"),
        "account": st.column_config.TextColumn("Account"),
        "model": st.column_config.TextColumn("Model"),
        "actual_cost": ui.money_column("Actual"),
        "baseline_cost": ui.money_column("Baseline", help="Usual cost for this weekday"),
        "excess": ui.money_column("Above baseline"),
        "score": st.column_config.NumberColumn("Score", format="%.1f"),
        # Effects can be negative: the "dollar" format writes -$2.67, not $-2.67.
        "volume_effect": st.column_config.NumberColumn(
            "Volume", format="dollar", help="More or fewer tokens at the usual price"
        ),
        "mix_effect": st.column_config.NumberColumn(
            "Mix", format="dollar", help="A shift between models or service tiers"
        ),
        "rate_effect": st.column_config.NumberColumn(
            "Rate", format="dollar", help="Price per token changed (price, cache hits)"
        ),
        "explanation": st.column_config.TextColumn("Explanation", width="large"),
        "acknowledged_at": ui.datetime_column("Acknowledged (UTC)"),
        "acknowledged_by": st.column_config.TextColumn("By"),
    },
    money_columns=MONEY,
)

st.subheader("Acknowledge")
if open_rows.empty:
    st.caption("Every anomaly shown is acknowledged.")
else:
    labels = {
        int(r.id): f"{r.day:%d %b} · {r.account} · {r.model} · +{ui.money(r.excess)}"
        for r in open_rows.itertuples()
    }
    target = st.selectbox(
        "Anomaly", list(labels), format_func=lambda i: labels[i], key="anomaly_ack"
    )
    picked = open_rows[open_rows["id"] == target].iloc[0]
    if picked["explanation"]:
        st.caption(ui.plain_text(str(picked["explanation"])))
    if st.button("Acknowledge", key="anomaly_ack_go", type="primary"):
        ui.attempt(
            lambda: actions.acknowledge_anomaly(runtime, anomaly_id=int(target)),
            failed="Not acknowledged: {reason}. Refresh the page and try again.",
            done=f"Acknowledged: {labels[int(target)]}.",
        )
