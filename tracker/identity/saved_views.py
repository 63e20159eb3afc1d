"""Saved views: a user's named views of the Usage explorer, Exports or Forecast.

A view is a page (its url path) and the query parameters that page reads from its address:
its filters, grouping or scope (`PAGE_PARAMS`, the one list of them). A view's query is
checked on the way in and again on the way out (`clean_query`): only the page's own
parameters, with values of a sane shape, so a row changed in the database can neither break
a page nor put anything else in its address. The same check rebuilds the address a sign-in
returns to (`address`, `checked_address`): a shared link survives the sign-in, and the
sign-in routes never send a browser anywhere else.

A date range can be kept as its dates (`from`, `to`) or as a named period (`period`, e.g.
"This month"), which a page turns into dates on the day it is opened. Whoever owns a view is
the signed-in user the caller names, never an id from the page.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tracker.core.errors import InvalidInput, NotFound
from tracker.models import User
from tracker.models.identity import SavedView

# The explorer's filters, shared by the Usage explorer and Exports (`tracker.ui.components`
# maps them to widgets).
FILTER_PARAMS = ("from", "to", "period", "provider", "account", "model", "project", "key", "user")
PAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "usage": (*FILTER_PARAMS, "group"),
    "exports": FILTER_PARAMS,
    "forecast": ("scope",),
}
# Parameters that hold one value; the others may repeat (several providers, say).
SINGLE = frozenset({"from", "to", "period", "scope"})
DATES = frozenset({"from", "to"})
MAX_VALUE_CHARS = 255  # the longest model, project, key or user label the tables hold
MAX_VALUES = 50  # per parameter
MAX_NAME_CHARS = 60
MAX_VIEWS_PER_USER = 50  # the sidebar lists them all


@dataclass(frozen=True)
class View:
    """A saved view as a page shows and opens it."""

    id: int
    name: str
    page: str
    query: dict[str, list[str]]


def _sound(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_VALUE_CHARS
        and not any(unicodedata.category(ch) == "Cc" for ch in value)
    )


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10  # YYYY-MM-DD, nothing fancier


def clean_query(page: str, query: Mapping[str, Any]) -> dict[str, list[str]]:
    """Only `page`'s own parameters from `query` (parameter -> a value or a list of values),
    each with sound values: text, short, no control characters, dates as YYYY-MM-DD, one value
    where the page reads one. Anything else is left out, never an error."""
    kept: dict[str, list[str]] = {}
    for param in PAGE_PARAMS.get(page, ()):
        raw = query.get(param)
        values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list | tuple) else []
        sound = list(dict.fromkeys(v for v in values if _sound(v)))
        if param in DATES:
            sound = [v for v in sound if _is_date(v)]
        sound = sound[:1] if param in SINGLE else sound[:MAX_VALUES]
        if sound:
            kept[param] = sound
    return kept


# A page's address under the app's root: one lower-case word (its url path), "" for home.
PAGE_ADDRESS = re.compile(r"[a-z][a-z0-9_]{0,63}")


def address(page: str, query: Mapping[str, Any]) -> str:
    """The address of `page` (its url path) with only the query parameters it reads, relative
    to the app's root; "" (the home page) when `page` is not a page's url path."""
    if not PAGE_ADDRESS.fullmatch(page):
        return ""
    kept = clean_query(page, query)
    return page + (f"?{urlencode(kept, doseq=True)}" if kept else "")


def checked_address(target: str) -> str:
    """`address` of a target a request brought (a sign-in's `next`): rebuilt from its page
    and that page's own parameters, so never another site, path or parameter."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return ""
    return address(parts.path, parse_qs(parts.query))


def check_name(name: str) -> str:
    """The name a view is saved under, stripped; refuse an empty, long or multi-line one."""
    name = name.strip()
    if not name:
        raise InvalidInput("give the view a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"a view's name has at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput("a view's name is one line of text")
    return name


def _user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def save_view(
    *, session: Session, username: str, name: str, page: str, query: Mapping[str, Any]
) -> View:
    """Save `username`'s view of `page` under `name` (unique for them, whatever the case)."""
    name = check_name(name)
    if page not in PAGE_PARAMS:
        raise InvalidInput("only the Usage explorer, Exports and Forecast can be saved as views")
    user = _user(session, username)
    names = session.scalars(select(SavedView.name).where(SavedView.user_id == user.id)).all()
    taken = next((n for n in names if n.casefold() == name.casefold()), None)
    if taken is not None:
        raise InvalidInput(
            f"you already have a view named {taken!r}; choose another name, or delete that view "
            "first"
        )
    if len(names) >= MAX_VIEWS_PER_USER:
        raise InvalidInput(
            f"you have {MAX_VIEWS_PER_USER} saved views, the most there can be; delete one first"
        )
    row = SavedView(user_id=user.id, name=name, page=page, query=clean_query(page, query))
    session.add(row)
    session.flush()
    return View(row.id, row.name, row.page, row.query)


def list_views(
    *, session: Session, username: str, pages: Iterable[str] | None = None
) -> list[View]:
    """`username`'s views (of `pages` only, when given), by name; each query checked again."""
    wanted = set(PAGE_PARAMS) if pages is None else set(pages) & set(PAGE_PARAMS)
    rows = session.execute(
        select(SavedView.id, SavedView.name, SavedView.page, SavedView.query)
        .join(User, User.id == SavedView.user_id)
        .where(User.username == username, SavedView.page.in_(sorted(wanted)))
        .order_by(func.lower(SavedView.name), SavedView.id)
    ).all()
    return [
        View(row.id, row.name, row.page, clean_query(row.page, row.query))
        for row in rows
        if isinstance(row.query, dict)
    ]


def delete_view(*, session: Session, username: str, view_id: int) -> str:
    """Delete one of `username`'s views; return its name. Another user's view is not found."""
    user = _user(session, username)
    name: str | None = session.scalar(
        delete(SavedView)
        .where(SavedView.id == view_id, SavedView.user_id == user.id)
        .returning(SavedView.name)
    )
    if name is None:
        raise NotFound("that view is not among your saved views (it may be deleted already)")
    return name
