"""Saved views and the addresses a sign-in returns to, on both backends; the 0017 migration."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select, text, update
from sqlalchemy.orm import Session

from tracker.core import migrate
from tracker.core.db import make_engine
from tracker.core.errors import InvalidInput, NotFound
from tracker.identity import saved_views, users
from tracker.identity.saved_views import address, checked_address, clean_query
from tracker.models import User
from tracker.models.identity import SavedView

PASSWORD = "quarterly ledger tangerine"
EXPLORER = {
    "from": ["2026-11-01"],
    "to": ["2026-11-30"],
    "provider": ["openai", "anthropic"],
    "group": ["Model"],
}


def add(session: Session, username: str) -> User:
    return users.add_user(
        session=session,
        username=username,
        email=f"{username}@example.com",
        role="viewer",
        password=PASSWORD,
    )


def save(session: Session, username: str, name: str, page: str = "usage", **query: list[str]):
    return saved_views.save_view(
        session=session, username=username, name=name, page=page, query=query or EXPLORER
    )


def test_a_user_saves_lists_and_deletes_only_their_own_views(session: Session) -> None:
    add(session, "ana")
    add(session, "bob")
    saved = save(session, "ana", "  OpenAI & Anthropic, November  ")
    save(session, "ana", "platform forecast", page="forecast", scope=["team:Platform"])
    save(session, "bob", "Bob's view")
    assert saved.name == "OpenAI & Anthropic, November"  # stripped
    mine = saved_views.list_views(session=session, username="ana")
    assert [(v.name, v.page) for v in mine] == [
        ("OpenAI & Anthropic, November", "usage"),
        ("platform forecast", "forecast"),
    ]
    assert mine[0].query == EXPLORER
    assert mine[1].query == {"scope": ["team:Platform"]}
    # A viewer's sidebar asks only for the pages the role may open.
    only_usage = saved_views.list_views(session=session, username="ana", pages=["usage"])
    assert [v.name for v in only_usage] == ["OpenAI & Anthropic, November"]
    assert [v.name for v in saved_views.list_views(session=session, username="bob")] == [
        "Bob's view"
    ]

    # Bob cannot delete Ana's view by its id: it is not among his.
    with pytest.raises(NotFound, match="not among your saved views"):
        saved_views.delete_view(session=session, username="bob", view_id=saved.id)
    assert saved_views.delete_view(session=session, username="ana", view_id=saved.id) == saved.name
    with pytest.raises(NotFound):
        saved_views.delete_view(session=session, username="ana", view_id=saved.id)
    assert [v.name for v in saved_views.list_views(session=session, username="ana")] == [
        "platform forecast"
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "give the view a name"),
        ("   ", "give the view a name"),
        ("x" * 61, "at most 60 characters"),
        ("two\nlines", "one line of text"),
        ("November", "you already have a view named 'November'"),
        ("NOVEMBER ", "you already have a view named 'November'"),
    ],
)
def test_bad_names_are_refused_with_what_to_do(session: Session, name: str, message: str) -> None:
    add(session, "ana")
    add(session, "bob")
    save(session, "ana", "November")
    save(session, "bob", "Other")
    with pytest.raises(InvalidInput, match=message):
        save(session, "ana", name)
    # Another user may use the same name.
    save(session, "bob", "November")


def test_only_the_three_pages_and_a_bounded_number_of_views(session: Session) -> None:
    add(session, "ana")
    with pytest.raises(InvalidInput, match="only the Usage explorer, Exports and Forecast"):
        save(session, "ana", "admin", page="admin")
    for i in range(saved_views.MAX_VIEWS_PER_USER):
        save(session, "ana", f"view {i}")
    with pytest.raises(InvalidInput, match="delete one first"):
        save(session, "ana", "one more")


def test_only_a_pages_own_parameters_with_sound_values_are_kept() -> None:
    hostile = {
        "from": ["2026-11-01", "2026-11-02"],  # one value only
        "to": "yesterday",  # not a date
        "period": ["This month"],
        "provider": ["openai", "openai", "x" * 256, "a\u0000b", 7],
        "model": "gpt-4o",  # a single value as text
        "group": ["Model"],
        "setup": ["a-single-use-token"],  # a sign-in link's parameter: never carried
        "javascript:alert(1)": ["x"],
        "key": {"not": "a list"},
    }
    assert clean_query("usage", hostile) == {
        "from": ["2026-11-01"],
        "period": ["This month"],
        "provider": ["openai"],
        "model": ["gpt-4o"],
        "group": ["Model"],
    }
    assert "group" not in clean_query("exports", hostile)  # the explorer's alone
    assert clean_query("forecast", {"scope": ["team:Web", "org"], "from": ["2026-11-01"]}) == {
        "scope": ["team:Web"]
    }
    assert clean_query("overview", hostile) == {}


def test_a_tampered_row_is_checked_again_on_the_way_out(session: Session) -> None:
    ana = add(session, "ana")
    kept = save(session, "ana", "kept")
    save(session, "ana", "junk query")
    save(session, "ana", "unknown page")
    session.execute(
        update(SavedView)
        .where(SavedView.name == "junk query")
        .values(query={"provider": ["openai"], "evil": ["<script>"], "to": ["not a date"]})
    )
    session.execute(update(SavedView).where(SavedView.name == "unknown page").values(page="admin"))
    session.add(SavedView(user_id=ana.id, name="not a dict", page="usage", query=["x"]))
    session.flush()
    shown = {v.name: v.query for v in saved_views.list_views(session=session, username="ana")}
    assert shown == {"kept": kept.query, "junk query": {"provider": ["openai"]}}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "usage?from=2026-11-01&to=2026-11-30&provider=openai&group=Model",
            "usage?from=2026-11-01&to=2026-11-30&provider=openai&group=Model",
        ),
        ("usage?provider=openai&invite=tok&signed_out=1", "usage?provider=openai"),
        ("forecast?scope=team:Platform", "forecast?scope=team%3APlatform"),
        ("budgets", "budgets"),  # a page without parameters of its own
        ("budgets?scope=org", "budgets"),
        ("", ""),
        ("//evil.example/usage", ""),
        ("https://evil.example/usage?provider=openai", ""),
        ("/usage", ""),
        ("/\\evil.example", ""),
        ("../usage", ""),
        ("usage/../../x", ""),
        ("Usage", ""),
        ("javascript:alert(1)", ""),
        ("usage%0d%0aSet-Cookie:x", ""),
    ],
)
def test_a_sign_in_returns_only_to_one_of_our_page_addresses(target: str, expected: str) -> None:
    assert checked_address(target) == expected


def test_an_address_is_rebuilt_from_the_page_and_its_parameters() -> None:
    assert address("usage", {"provider": ["open ai"], "x": ["1"]}) == "usage?provider=open+ai"
    assert address("", {"provider": ["openai"]}) == ""  # the home page


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_saved_views_table_comes_and_goes_with_its_migration(backend, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'views.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_databases").create()
    )
    engine = make_engine(url)
    migrate.upgrade(engine)
    with Session(engine) as session, session.begin():
        add(session, "ana")
        save(session, "ana", "November")
    with Session(engine) as session, session.begin():
        with pytest.raises(Exception, match="(?i)unique"):
            session.execute(
                text(
                    "INSERT INTO saved_views (user_id, name, page, query, created_at) "
                    "SELECT user_id, name, page, query, created_at FROM saved_views"
                )
            )
    config = migrate.alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")
    assert "saved_views" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with Session(engine) as session, session.begin():
        save(session, "ana", "November")  # ana is still there; her views went with the table
    with Session(engine) as session, session.begin():
        session.execute(text("DELETE FROM users"))  # a user's views go with the user
        assert session.scalars(select(SavedView)).all() == []
    engine.dispose()
