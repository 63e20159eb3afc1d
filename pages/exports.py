"""Exports (admin and finance): download usage and cost as CSV, JSON, the Excel month pack
or FOCUS (1.2, or 1.4's datasets in a zip) for a date range and the usage explorer's filters.

The files are built by `tracker.exports` (the same code as `python -m tracker export`); this
page only collects the choices. Large ranges are refused here with a pointer to the CLI,
because a download button holds the whole file in memory.
"""

from tracker.ui import router

router.gate()

import streamlit as st

from tracker.exports import export
from tracker.reporting import sources
from tracker.ui import actions, data, views
from tracker.ui import components as ui

FORMAT_LABELS = {
    "xlsx": "Excel month pack (.xlsx): summary, budgets, by provider / model / project, daily",
    "csv": "CSV: one line per usage record",
    "json": "JSON: one object per usage record, money as exact decimal strings",
    "focus": "FOCUS 1.2 CSV: for FinOps tools (one row per charge)",
    "focus-1.4": "FOCUS 1.4 (.zip): cost and usage with the team split, billing periods and "
    "invoices, for FinOps tools",
}

st.title("Exports")
st.caption(
    "UTC days, both ends included. Cost is the provider-billed amount where reported, "
    "else our estimate; unpriced usage counts as zero and is listed in the month pack."
)

with st.container(border=True):
    flt, c6 = ui.usage_filter_form("export")
    ui.write_url(flt)
    start, end = flt.start, flt.end
    fmt = c6.selectbox(
        "Format",
        list(FORMAT_LABELS),
        format_func=lambda f: FORMAT_LABELS[f].split(":")[0],
        key="export_format",
    )
    st.caption(FORMAT_LABELS[fmt])
    views.save_control("exports", period=ui.url_period("export"))

filters: sources.Dimensions = flt
choice = (fmt, start, end, filters)

if st.button("Prepare the file", type="primary", key="export_prepare"):
    prepared_now = ui.attempt(
        lambda: actions.prepare_export(
            data.get_runtime(), fmt=fmt, start=start, end=end, filters=filters
        ),
        failed="{reason}",
    )
    if prepared_now is not None:
        payload, stats = prepared_now
        st.session_state["export_file"] = (choice, payload, stats)

prepared = st.session_state.get("export_file")
if prepared and prepared[0] == choice:
    _, payload, stats = prepared
    if stats.records:
        st.success(
            f"Ready: {stats.records:,} usage record(s), total cost "
            f"{ui.money(stats.total_cost)} (the Usage explorer's figure for these filters)."
        )
    else:
        st.warning(
            "No usage record matches this range and these filters: the file holds only its "
            "headings. Widen the range or clear a filter."
        )
    st.download_button(
        "Download",
        data=payload,
        file_name=export.file_name(fmt, start, end),
        mime=export.MEDIA_TYPES[fmt],
        key="export_download",
        on_click="ignore",
    )
elif prepared:
    st.info("The choices changed since the file was prepared; prepare it again.")
