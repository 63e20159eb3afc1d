"""Usage explorer: filter usage by date, provider, account, model, project, API key and user,
group it, and download exactly the table shown (with exact decimals).
"""

from tracker.ui import router

router.gate()

import streamlit as st

from tracker.core import units
from tracker.reporting import usage
from tracker.ui import charts, data, views
from tracker.ui import components as ui

PARTS = {"billed_cost": "billed_part", "estimated_cost": "estimated_part"}
MONEY_COLUMNS = ["cost", *PARTS.values()]

st.title("Usage explorer")

with st.container(border=True):
    flt, c6 = ui.usage_filter_form("usage")
    ui.restore_from_url("usage_group_by", "group", list(usage.GROUP_BY_CHOICES))
    if "usage_group_by" not in st.session_state:
        st.session_state["usage_group_by"] = ["Day", "Provider"]
    group_labels = c6.multiselect("Group by", list(usage.GROUP_BY_CHOICES), key="usage_group_by")
    ui.write_url(flt, group=group_labels)
    views.save_control("usage", period=ui.url_period("usage"))

group_by = tuple(usage.GROUP_BY_CHOICES[label] for label in group_labels)
table = usage.label_blanks(data.usage_table(flt, group_by))

if table.empty:
    st.info(
        "No usage matches these filters. Widen the date range or clear a filter; if nothing "
        "was ever synced, an admin can add an account and run a sync on the Accounts page."
    )
    st.stop()

# The parts of cost, named so they are not read as the Exports' `estimated_cost` (our list-price
# estimate of every row, billed or not).
table = table.rename(columns=PARTS)
total = sum(table["cost"], start=units.to_dollars(0))
billed = sum(table["billed_part"], start=units.to_dollars(0))
estimated = sum(table["estimated_part"], start=units.to_dollars(0))
m1, m2, m3 = st.columns(3)
m1.metric("Cost in selection", ui.money(total))
m2.metric("Billed by providers", ui.money(billed), help="The part of the cost the providers billed")
m3.metric(
    "Estimated",
    ui.money(estimated),
    help="The part of the cost on days or usage no bill covers yet, from list prices",
)

if group_by:
    x = group_by[0]
    charts.cost_chart(
        table,
        x=x,
        color=group_by[1] if len(group_by) > 1 else None,
        days=(flt.start, flt.end),
        key="usage_chart",
    )

column_config = {
    "day": ui.date_column("Day"),
    "provider": st.column_config.TextColumn("Provider"),
    "account": st.column_config.TextColumn("Account"),
    "model": st.column_config.TextColumn("Model"),
    "project": st.column_config.TextColumn("Project"),
    "api_key": st.column_config.TextColumn("API key"),
    "user": st.column_config.TextColumn("User"),
    "usage_type": st.column_config.TextColumn("Usage type"),
    "input_tokens": st.column_config.NumberColumn("Input", format="localized"),
    "cached_input_tokens": st.column_config.NumberColumn("Cached input", format="localized"),
    "cache_write_tokens": st.column_config.NumberColumn("Cache write", format="localized"),
    "cache_write_1h_tokens": st.column_config.NumberColumn("Cache write 1 h", format="localized"),
    "output_tokens": st.column_config.NumberColumn("Output", format="localized"),
    "requests": st.column_config.NumberColumn(
        "Requests", format="localized", help="— where the provider reports no count"
    ),
    "cost": ui.money_column("Cost", help="Billed where reported, else estimated"),
    "billed_part": ui.money_column("Billed part", help="The part of Cost the provider billed"),
    "estimated_part": ui.money_column(
        "Estimated part", help="The part of Cost estimated from list prices (no bill yet)"
    ),
    "unpriced_rows": st.column_config.NumberColumn("Unpriced rows"),
}
ui.table(
    table,
    column_config,
    money_columns=MONEY_COLUMNS,
    pinned=list(group_by[:1]),
    key="usage_table",
)
st.download_button(
    "Download this table (CSV)",
    data=ui.csv_bytes(table),
    file_name=f"usage_{flt.start.isoformat()}_{flt.end.isoformat()}.csv",
    mime="text/csv",
    help="The rows and columns shown, with costs in exact USD (six decimals); billed_part + "
    "estimated_part = cost.",
    key="usage_download",
)

st.subheader("Tokens by kind")
kinds = data.tokens_by_kind(flt)
if int(kinds["tokens"].sum()) == 0:
    st.caption("No tokens in this selection (requests or other units only).")
else:
    charts.count_chart(kinds, x="kind", y="tokens", key="tokens_by_kind_chart")
    ui.table(
        kinds,
        {
            "kind": st.column_config.TextColumn("Kind"),
            "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
        },
    )
