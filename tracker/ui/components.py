"""Widgets shared by the pages: money and percent formatting, cards, Plotly charts, tables.

Money arrives as exact `Decimal` and is rounded half-up to the cent only here, for display.
Charts and `st.dataframe` need floats; `display_frame` converts a copy, after which the table
shows cents through `column_config` (the download keeps the exact decimals).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, TypeVar

import pandas as pd
import streamlit as st

from tracker.core import units
from tracker.core.errors import TrackerError
from tracker.exports.rows import safe_text
from tracker.providers.registry import display_name
from tracker.reporting import sources
from tracker.reporting.overview import AccountCard, CostTotals
from tracker.ui import data

CENT = Decimal("0.01")
STATUS_COLORS: dict[str, Literal["green", "orange", "red"]] = {
    "OK": "green",
    "Warning": "orange",
    "Critical": "red",
}
# The same three colours as CSS, for a status cell in a table.
STATUS_CSS = {"OK": "#177233", "Warning": "#b35c00", "Critical": "#c41f1f"}
BASIS_TEXT = {
    "billed": "all billed by the provider",
    "estimated": "all estimated from list prices",
    "mixed": "billed where the provider reports it, estimated otherwise",
    "none": "no priced usage yet",
}


def money(amount: Decimal | None, currency: str = "USD") -> str:
    """Format an amount to the cent, half-up: `$1,234.57` (or `1,234.57 EUR`)."""
    if amount is None:
        return "—"
    cents = Decimal(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    if currency == "USD":
        return f"-${-cents:,.2f}" if cents < 0 else f"${cents:,.2f}"
    return f"{cents:,.2f} {currency}"


def amount_text(amount: Decimal | None) -> str:
    """An amount as a form field shows it for editing: `50.00`, `12.345678` (never the
    stored `50.000000`), '' for none."""
    if amount is None:
        return ""
    cents = Decimal(amount).quantize(CENT)
    return str(cents) if cents == amount else format(Decimal(amount).normalize(), "f")


def percent(value: Decimal | None, places: int = 1) -> str:
    if value is None:
        return "—"
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_UP)} %"


def tokens(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def duration(seconds: float) -> str:
    """A length of time in its largest unit, rounded up (a bound never understates):
    "40 seconds", "12 minutes", "3 hours"."""
    units = (("day", 86_400), ("hour", 3_600), ("minute", 60))
    unit, size = next(((u, size) for u, size in units if seconds >= size), ("second", 1))
    count = max(math.ceil(seconds / size), 0)
    return f"{count} {unit}{'' if count == 1 else 's'}"


def basis_caption(totals: CostTotals) -> str:
    """One line saying how much of a total is billed and how much estimated."""
    text = f"{money(totals.billed)} billed + {money(totals.estimated)} estimated"
    text += f" ({BASIS_TEXT[totals.basis]})"
    if totals.unpriced_rows:
        text += f"; {totals.unpriced_rows} usage row(s) have no price yet and count as $0"
    return text


def status_badge(status: str, *, about: str) -> None:
    """The one status badge (OK / Warning / Critical in the status palette), saying what the
    status is of: `about` is "Budget", "Quota" or "Organisation budget"."""
    st.badge(f"{about}: {status}", color=STATUS_COLORS[status])


def account_card(card: AccountCard, *, sync_health_open: bool) -> None:
    """One bordered card: name, provider, cost, budget/quota used, remaining, status. A failed
    last sync has a badge of its own, so "OK" never stands beside it unexplained."""
    with st.container(border=True):
        st.markdown(f"**{plain_text(card.name)}** · {card.provider_display_name}")
        if card.account_status == "error":
            st.badge("Last sync failed", color="red", icon=":material/sync_problem:")
        if card.budget_used_pct is not None or card.quota_used_pct is not None:
            about = "Budget" if card.budget_used_pct is not None else "Quota"
            if card.budget_used_pct is not None and card.quota_used_pct is not None:
                about = "Budget and quota"
            status_badge(card.status, about=about)
        st.metric("Cost this month", money(card.cost))
        if card.budget_used_pct is not None:
            st.progress(
                min(float(card.budget_used_pct) / 100, 1.0),
                text=f"Budget: {percent(card.budget_used_pct)} of {money(card.monthly_budget)}",
            )
        if card.quota_used_pct is not None:
            st.progress(
                min(float(card.quota_used_pct) / 100, 1.0),
                text=(
                    f"Tokens: {percent(card.quota_used_pct)} of {tokens(card.token_quota)}; "
                    f"{tokens(card.tokens_remaining)} left"
                ),
            )
        if card.balance_remaining is not None:
            st.caption(
                f"Credit remaining: {money(card.balance_remaining, card.balance_currency or 'USD')}"
            )
        if card.budget_used_pct is None and card.quota_used_pct is None:
            st.caption(f"{tokens(card.tokens)} tokens this month; no budget or quota set")
        if card.account_status == "error":
            st.caption(
                "Figures may miss the latest usage: "
                + (
                    "the error is on Sync health."
                    if sync_health_open
                    else "ask an admin to look at it."
                )
            )


# Streamlit's Markdown turns a bare http://, https:// or www. address into a link even when
# every character around it is escaped; an invisible word joiner after the scheme stops it.
_AUTOLINK = re.compile(r"(?i)(https?|ftp|www)(?=\\[:.])")
WORD_JOINER = "\u2060"


def plain_text(text: str) -> str:
    """Escape Markdown so names from the database render as text, not markup or links."""
    # & too (an entity such as &colon; is decoded before links are found) and = (a line of
    # them makes the line above a heading).
    for ch in "\\`*_{}[]()#+-.!|<>:$~&=":
        text = text.replace(ch, "\\" + ch)
    return _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER, text)


def display_frame(frame: pd.DataFrame, money_columns: Iterable[str]) -> pd.DataFrame:
    """A copy for `st.dataframe`: money columns rounded half-up to the cent, as floats."""
    out = frame.copy()
    for col in money_columns:
        if col in out.columns:
            out[col] = out[col].map(
                lambda v: None if v is None else float(Decimal(v).quantize(CENT, ROUND_HALF_UP))
            )
    return out


MISSING = "—"  # what a table shows where a value does not exist (never "None")
WIDE_TABLE_COLUMNS = 7  # beyond this many, a table may scroll sideways at a laptop's width


def table(
    frame: pd.DataFrame,
    column_config: dict[str, Any],
    *,
    money_columns: Iterable[str] = (),
    pinned: Iterable[str] | None = None,
    status_column: str | None = None,
    status_levels: dict[str, str] | None = None,
    key: str | None = None,
) -> None:
    """Every table of the app: no index, "—" for a missing value, money to the cent, and in a
    wide table the key columns (default: the first) pinned, so scrolling to the right-hand
    columns keeps them in view. A `status_column` of OK / Warning / Critical (or of values
    `status_levels` maps to them, e.g. "Matched": "OK") is written in the status palette."""
    config = dict(column_config)
    if pinned is None:
        pinned = [frame.columns[0]] if len(frame.columns) > WIDE_TABLE_COLUMNS else []
    for name in pinned:
        config[name] = {**config.get(name, {}), "pinned": True}
    shown: Any = display_frame(frame, money_columns)
    for name in shown.columns:
        # An empty text cell (no project, no cost center) reads "—" like any missing value.
        if pd.api.types.is_string_dtype(shown[name]) and (shown[name] == "").any():
            shown[name] = shown[name].map(lambda v: None if v == "" else v)
    if status_column is not None:
        levels = {**{level: level for level in STATUS_CSS}, **(status_levels or {})}
        css = {v: f"color: {STATUS_CSS[level]}; font-weight: 600" for v, level in levels.items()}
        shown = shown.style.map(lambda v: css.get(v, ""), subset=[status_column])
    st.dataframe(shown, hide_index=True, column_config=config, placeholder=MISSING, key=key)


def money_column(label: str, help: str | None = None) -> Any:
    """Dollars to the cent with thousands separators; a negative amount reads -$1.25."""
    return st.column_config.NumberColumn(label, format="dollar", help=help)


def date_column(label: str) -> Any:
    return st.column_config.DateColumn(label, format="YYYY-MM-DD")


def datetime_column(label: str) -> Any:
    return st.column_config.DatetimeColumn(label, format="YYYY-MM-DD HH:mm", timezone="UTC")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV of a frame for a download button: exact decimals (written as they are), and text
    cells a spreadsheet will not run as formulas (model, project and key names come from
    outside: the exports' `safe_text`)."""
    safe = frame.map(lambda value: safe_text(value) if isinstance(value, str) else value)
    return safe.to_csv(index=False).encode("utf-8")


# The explorer's and the exports' filters live in the page's URL (a reload keeps them, a link
# shares them): UsageFilter field -> query parameter, repeated for several values.
URL_FILTERS = {
    "providers": "provider",
    "accounts": "account",
    "models": "model",
    "projects": "project",
    "api_keys": "key",
    "users": "user",
}
CUSTOM_PERIOD = "Custom"


def period_presets(today: dt.date) -> dict[str, tuple[dt.date, dt.date]]:
    """Named date ranges a finance user reaches for, each ending today at the latest."""
    this_month = units.month_start(today)
    last_month = units.month_start(this_month - dt.timedelta(days=1))
    quarter = this_month.replace(month=(this_month.month - 1) // 3 * 3 + 1)
    return {
        "This month": (this_month, today),
        "Last month": (last_month, this_month - dt.timedelta(days=1)),
        "This quarter": (quarter, today),
        "Year to date": (today.replace(month=1, day=1), today),
        "Last 30 days": (today - dt.timedelta(days=29), today),
    }


def _url_day(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(st.query_params.get(name, ""))
    except ValueError:
        return None


def restore_from_url(widget_key: str, param: str, options: list[str]) -> None:
    """Before a multiselect is drawn the first time in a session, pick the values its URL
    parameter names (those still on offer)."""
    if widget_key not in st.session_state and param in st.query_params:
        wanted = st.query_params.get_all(param)
        st.session_state[widget_key] = [v for v in wanted if v in options]


def restore_choice_from_url(widget_key: str, param: str, options: list[str]) -> None:
    """Before a selectbox is drawn the first time in a session, pick the value its URL
    parameter names, if that is still on offer."""
    if widget_key not in st.session_state and st.query_params.get(param) in options:
        st.session_state[widget_key] = st.query_params[param]


# What the page last wrote to (or found in) its address, for `follow_url`.
URL_SEEN = "url_seen"


def url_query() -> dict[str, list[str]]:
    """The page's address's query: parameter -> its values (a parameter may repeat)."""
    return {name: st.query_params.get_all(name) for name in st.query_params}


def follow_url(prefix: str) -> None:
    """Let an address that changed under the page win over what its widgets hold.

    A link to the page being shown (a saved view in the sidebar, the browser's back button)
    reruns it with a new query while its widgets keep their values, and the page would write
    those straight back. So when the query differs from what the page last wrote, drop the
    page's widget values (keys starting with `prefix`): they start from the address again.
    """
    now = url_query()
    seen = st.session_state.get(URL_SEEN)
    if seen is not None and seen != now:
        for key in [k for k in st.session_state if str(k).startswith(prefix)]:
            del st.session_state[key]
    st.session_state[URL_SEEN] = now


def write_query(params: dict[str, str | list[str]]) -> None:
    """Make the page's address hold exactly `params` (and remember it for `follow_url`)."""
    # Sent even when the query already reads so here: after a link to the page being shown,
    # the browser's address bar can still hold the old query (the browser adds a history
    # entry only when the address changes).
    st.query_params.from_dict(params)
    st.session_state[URL_SEEN] = {
        k: [v] if isinstance(v, str) else list(v) for k, v in params.items()
    }


def url_period(key: str) -> str | None:
    """The named period (a preset, "This month") the filter form `key` shows, else None."""
    chosen = st.session_state.get(f"{key}_period")
    return chosen if isinstance(chosen, str) and chosen != CUSTOM_PERIOD else None


def period_picker(key: str, *, default: str = "This month") -> tuple[dt.date, dt.date]:
    """A named period (`period_presets`) beside a date range, from the URL at first (a
    `period` parameter, a saved view's "This month", names today's dates; else `from` and
    `to`), else `default`. Stops the page until the range is whole. `key` keeps each page's
    widgets apart."""
    today = units.today_utc()
    presets = period_presets(today)
    range_key = f"{key}_range"
    period_key = f"{key}_period"
    if range_key not in st.session_state:
        named = st.query_params.get("period", "")
        start, end = _url_day("from"), _url_day("to")
        if named in presets:
            start, end = presets[named]
            # Named, not guessed from the dates: "This quarter" and "This month" can agree.
            st.session_state[period_key] = named
        elif start is None or end is None or not start <= end <= today:
            start, end = presets[default]
        st.session_state[range_key] = (start, end)

    def name_period() -> None:  # the preset the dates are, else Custom
        dates = tuple(st.session_state[range_key])
        st.session_state[period_key] = next(
            (name for name, span in presets.items() if span == dates), CUSTOM_PERIOD
        )

    def apply_preset() -> None:
        chosen = st.session_state[period_key]
        if chosen in presets:
            st.session_state[range_key] = presets[chosen]

    if period_key not in st.session_state:
        name_period()

    p1, p2 = st.columns([1, 2])
    p1.selectbox(
        "Period",
        [CUSTOM_PERIOD, *presets],
        key=period_key,
        on_change=apply_preset,
        help="A named range; or pick any dates beside it",
    )
    picked = p2.date_input(
        "Date range (UTC, inclusive)", max_value=today, key=range_key, on_change=name_period
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick an end date to complete the range.")
        st.stop()
    return picked[0], picked[1]


def usage_filter_form(key: str) -> tuple[sources.UsageFilter, Any]:
    """Draw the usage explorer's date range and filters; return them and a free column.

    The filters start from the URL's query parameters (the page writes them back with
    `write_url`); a `period` parameter (a saved view's "This month") names the dates of today.
    Stops the page until a whole range is picked. `key` keeps each page's widgets apart.
    """
    follow_url(f"{key}_")
    start, end = period_picker(key)
    options = data.filter_options(start, end)
    labels = {
        "providers": "Provider",
        "accounts": "Account",
        "models": "Model",
        "projects": "Project / workspace",
        "api_keys": "API key",
        "users": "User",
    }
    chosen: dict[str, tuple[str, ...]] = {}
    columns = [*st.columns(3), *st.columns(3)]
    for column, (field_name, label) in zip(columns, labels.items(), strict=True):
        widget_key = f"{key}_{field_name}"
        values = getattr(options, field_name)
        restore_from_url(widget_key, URL_FILTERS[field_name], values)
        chosen[field_name] = tuple(
            column.multiselect(
                label,
                values,
                key=widget_key,
                format_func=display_name if field_name == "providers" else str,
            )
        )
    free = st.columns(3)[0]
    return sources.UsageFilter(start=start, end=end, **chosen), free


def write_url(flt: sources.UsageFilter, **extra: list[str]) -> None:
    """Put the filters (and a page's own `extra` parameters) in the URL."""
    params: dict[str, str | list[str]] = {"from": flt.start.isoformat(), "to": flt.end.isoformat()}
    for field_name, param in URL_FILTERS.items():
        if values := list(getattr(flt, field_name)):
            params[param] = values
    params.update({name: values for name, values in extra.items() if values})
    write_query(params)


FLASH_KEY = "flash"
T = TypeVar("T")


def flash(message: str) -> None:
    """After a successful change: drop cached frames, keep `message` for the next run, rerun.

    The rerun redraws every table with the change in it; `show_flash` at the top of the page
    then shows the message once.
    """
    data.clear_frames()
    st.session_state[FLASH_KEY] = message
    st.rerun()


def attempt(
    action: Callable[[], T], *, failed: str, done: str | Callable[[T], str] | None = None
) -> T | None:
    """Run one named action of `tracker.ui.actions` for a page.

    Refused (a `TrackerError`: bad input, a missing role): shows `failed` with `{reason}`
    filled in and returns None; nothing was written. Done: flashes `done` (a message, or a
    function of the result) and reruns, or returns the result when `done` is None.
    """
    try:
        result = action()
    except TrackerError as exc:
        # The reason can quote a provider or a person (a name, an error body): text, not markup.
        st.error(failed.format(reason=plain_text(str(exc))))
        return None
    if done is not None:
        flash(done(result) if callable(done) else done)
    return result


def remove_picker(
    labels: dict[int, str],
    *,
    pick: str,
    button: str,
    key: str,
    remove: Callable[[int], object],
    failed: str,
    done: Callable[[str], str],
) -> None:
    """Pick one row by id (shown by its label) and remove it through a named action: the
    Admin page's invitations, single-sign-on mappings and price overrides."""
    chosen = st.selectbox(pick, list(labels), format_func=labels.__getitem__, key=key)
    if st.button(button, key=f"{key}_go"):
        attempt(lambda: remove(int(chosen)), failed=failed, done=done(labels[int(chosen)]))


def show_flash() -> None:
    """Show the message a change left with `flash`, once."""
    if message := st.session_state.pop(FLASH_KEY, None):
        st.success(plain_text(message))  # it names what changed: names are text, not markup


# --- tabs and forms that keep their place and what was typed ----------------------------------


def page_tabs(labels: list[str], *, key: str) -> list[Any]:
    """Tabs that stay on the tab the user was on across reruns (a flash's too), with the
    flashed message at the top of that tab, where the user acted.

    Tracking the open tab makes a tab switch rerun the page; every tab is still drawn, so
    what was typed in the others is kept.
    """
    tabs = list(st.tabs(labels, key=key, on_change="rerun"))
    with next((tab for tab in tabs if tab.open), tabs[0]):
        show_flash()
    return tabs


# What a form's last submission left for the next run: "values" (widget key -> the value it
# starts from), "error" (why it was refused), "cleared" (what the emptied secrets held).
_FORM_STATE = "form_state:{}"


def form_state(form: str) -> None:
    """Call before drawing the widgets of `form` (an `attempt_form` name): start them from
    what its last submission left, and say why it was refused and which secrets were
    emptied."""
    state = st.session_state.pop(_FORM_STATE.format(form), None)
    if not isinstance(state, dict):
        return
    for widget_key, value in state["values"].items():
        st.session_state[widget_key] = value
    if state.get("error"):
        st.error(state["error"])
    if cleared := state.get("cleared"):
        st.caption(
            f"For safety the {' and '.join(cleared)} was cleared: paste it again. "
            "Everything else you typed is kept."
        )


def attempt_form(
    form: str,
    action: Callable[[], T],
    *,
    failed: str,
    done: str | Callable[[T], str],
    reset: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
) -> None:
    """Run a form's action like `attempt`, losing nothing the user typed.

    Refused: the page reruns with every typed value kept except the `secrets` (widget key ->
    what it holds, e.g. "API key"), which are emptied; `form_state` shows `failed` with
    `{reason}` filled in and says what was emptied. Done: the `reset` widgets (widget key ->
    starting value) and the secrets start afresh, and `done` is flashed.
    """
    emptied = dict.fromkeys(secrets or {}, "")
    try:
        result = action()
    except TrackerError as exc:
        st.session_state[_FORM_STATE.format(form)] = {
            "values": emptied,
            "error": failed.format(reason=plain_text(str(exc))),
            "cleared": list((secrets or {}).values()),
        }
        st.rerun()
    st.session_state[_FORM_STATE.format(form)] = {"values": {**(reset or {}), **emptied}}
    flash(done(result) if callable(done) else done)
