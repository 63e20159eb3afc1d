"""Reconciliation (admin, finance): billed vs estimated cost by provider, by model and by day,
with the variance and its cause where the rows tell it; and re-pricing the stored estimates
with the price book now in force, previewed (a dry run) before it is applied (audited).

The figures are `tracker.reporting.reconciliation` (the comparison of `python -m tracker
reconcile`); re-pricing goes through `tracker.ui.actions` (what `python -m tracker reprice`
does). Billed cost is never changed.
"""

from tracker.ui import router

router.gate()

from decimal import Decimal

import pandas as pd
import streamlit as st

from tracker.core import units
from tracker.costs.reprice import RepriceReport
from tracker.reporting import reconciliation as rec
from tracker.ui import book_actions, data
from tracker.ui import components as ui

DEFAULT_PERIOD = "Last month"  # month-end close reconciles the month just ended
PREVIEW_KEY = "reprice_preview"
REPRICE_RANGE_KEY = "reprice_range"

runtime = data.get_runtime()
today = units.today_utc()


COLUMNS = {
    "provider": st.column_config.TextColumn("Provider"),
    "model": st.column_config.TextColumn("Model or line item"),
    "day": ui.date_column("Day (UTC)"),
    "billed": ui.money_column("Billed", help="On the days the provider billed; — : none billed"),
    "estimated": ui.money_column(
        "Estimated", help="On the same days as Billed; — : nothing to compare with"
    ),
    "variance": ui.money_column("Variance", help="Billed minus estimated"),
    "variance_pct": st.column_config.NumberColumn(
        "Variance %", format="%.2f%%", help="Of billed; — : nothing billed to compare with"
    ),
    "estimate_only": ui.money_column(
        "Estimate only", help="Estimated on days the provider has not billed: not compared"
    ),
    "unpriced_tokens": st.column_config.NumberColumn(
        "Unpriced tokens", format="localized", help="Tokens without a list price: not estimated"
    ),
    "cause": st.column_config.TextColumn("Cause", width="large"),
}


def table(frame: pd.DataFrame, name: str, **columns: object) -> None:
    """The frame as shown (cents; "—" where a side is missing) and its CSV (exact)."""
    shown = frame.copy()
    if "variance_pct" in shown:
        shown["variance_pct"] = shown["variance_pct"].map(lambda v: None if v is None else float(v))
    ui.table(shown, {**COLUMNS, **columns}, money_columns=rec.MONEY_COLUMNS)
    st.download_button(
        "Download (CSV)",
        ui.csv_bytes(frame),
        file_name=f"reconciliation-{name}-{start}-{end}.csv",
        mime="text/csv",
        key=f"recon_csv_{name}",
        on_click="ignore",
    )


def signed(amount: Decimal) -> str:
    return ("+" if amount > 0 else "") + ui.money(amount)


def summary(report: RepriceReport) -> str:
    verb = "would change" if report.dry_run else "changed"
    return (
        f"{report.rows_changed:,} of {report.rows:,} usage rows {verb}; the estimated total "
        f"{'would go' if report.dry_run else 'went'} from {ui.money(report.old_total)} to "
        f"{ui.money(report.new_total)} ({signed(report.new_total - report.old_total)}); "
        f"unpriced rows {report.old_unpriced_rows:,} → {report.new_unpriced_rows:,}."
    )


st.title("Reconciliation")
ui.show_flash()
st.caption(
    "What the providers billed against our estimate from list prices, in USD on UTC days. "
    "Billed is compared with the estimate only on the days a provider billed; estimates on "
    "other days are 'estimate only'. The cause says what explains a variance, where the data "
    "can tell."
)

start, end = ui.period_picker("recon", default=DEFAULT_PERIOD)
wanted = {"from": start.isoformat(), "to": end.isoformat()}
if {k: st.query_params.get(k) for k in st.query_params} != wanted:
    st.query_params.from_dict(wanted)
figures = data.reconciliation(start, end)
totals = figures.totals

if figures.days.empty:
    st.info(f"No usage from {start} to {end}. Pick other dates, or " + router.usage_hint())
else:
    m1, m2, m3, m4, m5 = st.columns(5)
    m1.metric("Billed", ui.money(totals.billed), help="On the days each provider billed")
    m2.metric("Estimated, same days", ui.money(totals.estimated_on_billed_days))
    m3.metric(
        "Variance",
        ui.money(totals.variance),
        help="Billed minus estimated; "
        + (
            f"{ui.percent(totals.variance_share * 100, 2)} of billed"
            if totals.variance_share is not None
            else "nothing billed to compare with"
        ),
    )
    m4.metric(
        "Estimate only",
        ui.money(figures.estimate_only),
        help="Estimated on days the provider has not billed (yet): not compared",
    )
    m5.metric("Unpriced tokens", ui.tokens(totals.unpriced_tokens))
    by_provider, by_model, by_day, unpriced = st.tabs(
        ["By provider", "By model", "By day", "Unpriced models"]
    )
    with by_provider:
        table(figures.providers, "providers")
    with by_model:
        table(figures.models, "models")
    with by_day:
        table(
            figures.days,
            "days",
            estimated=ui.money_column("Estimated", help="Every estimate of the day"),
            billed=ui.money_column("Billed", help="— : the provider has not billed this day"),
        )
    with unpriced:
        if figures.unpriced.empty:
            st.success("Every model in these dates has a price.")
        else:
            st.caption(
                "Their cost is missing from the estimate. Add a price for the model (Admin "
                "page, price overrides), then re-price these dates below."
            )
            ui.table(
                figures.unpriced,
                {
                    "provider": st.column_config.TextColumn("Provider"),
                    "model": st.column_config.TextColumn("Model"),
                    "rows": st.column_config.NumberColumn("Rows", format="localized"),
                    "tokens": st.column_config.NumberColumn("Tokens", format="localized"),
                    "first_day": ui.date_column("First day"),
                    "last_day": ui.date_column("Last day"),
                },
            )

st.divider()
st.subheader("Re-price estimates")
st.caption(
    "Prices every stored usage row of the dates again: each day at its own dated list price, "
    "with the organisation prices and discounts in force now. Preview first; nothing is "
    "written until you apply, and billed cost never changes. Applying is audited."
)
# The dates to re-price follow the dates above whenever those change.
if st.session_state.get("reprice_follows") != (start, end):
    st.session_state["reprice_follows"] = st.session_state[REPRICE_RANGE_KEY] = (start, end)
dates = st.date_input("Dates to re-price (UTC, inclusive)", max_value=today, key=REPRICE_RANGE_KEY)
if not isinstance(dates, tuple) or len(dates) != 2:
    st.info("Pick an end date to complete the range.")
    st.stop()
reprice_start, reprice_end = dates
if st.button("Preview", key="reprice_preview_go"):
    previewed = ui.attempt(
        lambda: book_actions.preview_reprice(runtime, start=reprice_start, end=reprice_end),
        failed="Could not preview the re-price: {reason}",
    )
    if previewed is not None:
        st.session_state[PREVIEW_KEY] = previewed

preview: RepriceReport | None = st.session_state.get(PREVIEW_KEY)
if preview is not None and (preview.start, preview.end) != (reprice_start, reprice_end):
    # A preview is applied only to the dates it shows.
    del st.session_state[PREVIEW_KEY]
    st.info("The dates changed since the preview: preview them before applying.")
elif preview is not None:
    if not preview.rows_changed:
        st.success(
            f"Nothing to change from {preview.start} to {preview.end}: the "
            f"{preview.rows:,} usage rows already have the prices in force."
        )
    else:
        st.info(f"Preview of {preview.start} to {preview.end}, nothing written: {summary(preview)}")
        changes = rec.reprice_frame(preview)
        ui.table(
            changes,
            {
                "day": ui.date_column("Day (UTC)"),
                "old_estimated": ui.money_column("Estimated now"),
                "new_estimated": ui.money_column("Estimated after"),
                "change": ui.money_column("Change", help="After minus now"),
                "rows_changed": st.column_config.NumberColumn("Rows changed", format="localized"),
                "old_unpriced_rows": st.column_config.NumberColumn("Unpriced rows now"),
                "new_unpriced_rows": st.column_config.NumberColumn("Unpriced rows after"),
            },
            money_columns=rec.REPRICE_MONEY_COLUMNS,
        )
        unchanged = len(preview.days) - len(changes)
        if unchanged:
            st.caption(f"{unchanged} day(s) without a change are not listed.")
        if st.button("Apply re-price", type="primary", key="reprice_apply"):
            applied = ui.attempt(
                lambda: book_actions.apply_reprice(runtime, start=preview.start, end=preview.end),
                failed="Could not re-price: {reason}",
            )
            if applied is not None:
                del st.session_state[PREVIEW_KEY]
                note = (
                    ""
                    if applied.as_json()["days"] == preview.as_json()["days"]
                    else " This differs from the preview: prices or usage changed in between."
                )
                ui.flash(
                    f"Re-priced {applied.start} to {applied.end}: {summary(applied)} "
                    f"Billed cost is unchanged.{note}"
                )
