"""Saved views on screen: the "Save this view" control of a page, and the list in the sidebar.

A view is the page's address as the page keeps it (filters, grouping, scope: see
`components.write_url`), stored for the signed-in user by `tracker.identity.saved_views`
through the named actions. The sidebar opens a view with a link to its page and query; the
page then starts from that query (`components.follow_url`).
"""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from tracker.identity import saved_views
from tracker.ui import actions, data
from tracker.ui.components import attempt, plain_text, url_query

# A message for the sidebar after a view was saved or deleted (pages keep `flash` for theirs).
MESSAGE_KEY = "saved_views_message"


def _done(message: str) -> None:
    st.session_state[MESSAGE_KEY] = message
    st.rerun()


def query_to_save(*, period: str | None = None) -> dict[str, list[str]]:
    """The page's address as a view keeps it: with `period` (a named range such as "This
    month"), the name instead of today's dates, so the view keeps meaning that period."""
    query = url_query()
    if period is not None:
        query = {k: v for k, v in query.items() if k not in saved_views.DATES}
        query["period"] = [period]
    return query


def _what_is_kept(page: str, period: str | None) -> str:
    if "from" not in saved_views.PAGE_PARAMS[page]:
        return "Keeps the choices above."
    # `period` is one of the page's own preset names, not user text.
    dates = (
        f"the period “{period}” (its dates on the day it is opened)" if period else "these dates"
    )
    return f"Keeps {dates} and the filters above."


def save_control(page: str, *, period: str | None = None) -> None:
    """A "Save this view" button that keeps the page's current view under a name.

    `page` is the page's url path (`saved_views.PAGE_PARAMS`); `period` the named range the
    page shows, if any (`components.url_period`).
    """
    query = query_to_save(period=period)
    with st.popover("Save this view", icon=":material/bookmark_add:"):
        with st.form(f"save_view_{page}", clear_on_submit=True, border=False):
            name = st.text_input(
                "Name of the view",
                max_chars=saved_views.MAX_NAME_CHARS,
                placeholder="OpenAI this month by model",
                key=f"save_view_{page}_name",
            )
            st.caption(f"{_what_is_kept(page, period)} Listed in the sidebar, for you only.")
            submitted = st.form_submit_button("Save", type="primary")
        if submitted:
            saved = attempt(
                lambda: actions.save_view(data.get_runtime(), name=name, page=page, query=query),
                failed="Not saved: {reason}.",
            )
            if saved is not None:
                _done(f"Saved the view “{saved.name}”: it is listed below the pages.")


def sidebar(username: str, pages: Mapping[str, st.Page]) -> None:
    """List `username`'s saved views of the pages they may open (`pages`: url path -> page),
    each a link to its page and query, with a way to delete one. Draw inside the sidebar."""
    if message := st.session_state.pop(MESSAGE_KEY, None):
        st.success(plain_text(message))  # it quotes a name the user typed
    found = data.saved_views(username, tuple(p for p in saved_views.PAGE_PARAMS if p in pages))
    if not found:
        return
    st.caption("Saved views")
    for view in found:
        st.page_link(
            pages[view.page],
            label=plain_text(view.name),
            icon=":material/bookmark:",
            query_params=view.query,
        )
    names = {view.id: view.name for view in found}
    with st.expander("Delete a saved view"):
        chosen = st.selectbox(
            "Saved view", list(names), format_func=names.__getitem__, key="saved_view_delete"
        )
        if st.button("Delete", key="saved_view_delete_go"):
            deleted = attempt(
                lambda: actions.delete_view(data.get_runtime(), view_id=int(chosen)),
                failed="Not deleted: {reason}.",
            )
            if deleted is not None:
                _done(f"Deleted the view “{deleted}”.")
