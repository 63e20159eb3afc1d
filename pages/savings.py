"""Savings (admin, finance): per month and provider, what cache reads, batch and flex
processing, off-peak hours and negotiated prices saved against the list price.

The figures are `tracker.reporting.savings` (the same ledger as the month pack's Savings
sheet); read-only.
"""

from tracker.ui import router

router.gate()

import streamlit as st

from tracker.reporting import savings
from tracker.ui import components as ui
from tracker.ui import data

MONEY = [*savings.KINDS, "total", "list_cost", "missed_batch"]

st.title("Savings")
st.caption(
    "What the organisation's choices saved against the list price (catalog and dated "
    "corrections), in USD on UTC days: cache reads instead of uncached input (less the cache "
    "writes' premium), batch and flex processing instead of the standard tier, off-peak hours "
    "where a model has time-of-day prices, and negotiated prices where the provider billed "
    "less than list. Off-peak savings assume the day's usage came when its estimate does "
    "(daily totals cannot tell the hour): those rows are marked approximate."
)

start, end = ui.period_picker("savings", default="This month")
frame = data.savings(start, end)

if frame.empty:
    st.info(f"No priced usage from {start} to {end}. Pick other dates, or " + router.usage_hint())
    st.stop()

cols = st.columns(len(savings.KINDS) + 1)
labels = {
    "cache": "Cache",
    "batch": "Batch",
    "flex": "Flex",
    "off_peak": "Off-peak",
    "negotiated": "Negotiated",
}
cols[0].metric("Saved in all", ui.money(frame["total"].sum()))
for col, kind in zip(cols[1:], savings.KINDS, strict=True):
    col.metric(labels[kind], ui.money(frame[kind].sum()))
missed = frame["missed_batch"].sum()
if missed:
    st.info(
        f"Missed: {ui.money(missed)} more could have been saved by running embeddings as batch "
        "with providers whose batch processing you already use (see Missed: batch). Cache "
        "misses on repeated prompts are not counted: daily usage cannot tell a repeated "
        "prompt from a new one."
    )

ui.table(
    frame,
    {
        "month": ui.date_column("Month"),
        "provider": st.column_config.TextColumn("Provider"),
        "cache": ui.money_column("Cache", help="Uncached input price minus what caching cost"),
        "batch": ui.money_column("Batch", help="Standard tier minus batch, at list price"),
        "flex": ui.money_column("Flex", help="Standard tier minus flex, at list price"),
        "off_peak": ui.money_column("Off-peak", help="The day's peak price minus the one used"),
        "negotiated": ui.money_column(
            "Negotiated", help="List price minus the bill, where the provider billed the usage"
        ),
        "total": ui.money_column("Saved"),
        "list_cost": ui.money_column("At list price", help="The usage at its tier's list price"),
        "missed_batch": ui.money_column(
            "Missed: batch",
            help="Embeddings run at the standard price while this provider's batch is in use "
            "that month: what batch would have saved (not in Saved)",
        ),
        "approximate": st.column_config.CheckboxColumn("Approximate"),
    },
    money_columns=MONEY,
)
st.download_button(
    "Download (CSV)",
    ui.csv_bytes(frame),
    file_name=f"savings-{start}-{end}.csv",
    mime="text/csv",
    key="savings_csv",
    on_click="ignore",
)
