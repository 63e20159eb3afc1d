"""AppTests of restorable views: the Forecast's scope in the address, saved views in the
sidebar (save, open, delete, names, whose), and a shared link that survives the sign-in.

A sidebar link is opened as the browser opens it: the same page (or another) rerun with the
link's query (`open_view`).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.testclient import TestClient
from streamlit.testing.v1 import AppTest

from tests.factories.dashboard import PASSWORD, expected_cost
from tests.ui.conftest import current_user_of, new_app
from tests.ui.test_app import AppAs, errors, metrics, today
from tests.ui.test_sign_in import sign_in
from tracker.identity import saved_views, sessions
from tracker.models import User
from tracker.models.identity import SavedView
from tracker.ui import auth, web
from tracker.ui.components import URL_FILTERS, money, plain_text

USAGE = "pages/usage.py"
EXPORTS = "pages/exports.py"
FORECAST = "pages/forecast.py"
VIEW_ICON = ":material/bookmark:"


def saved_links(at: AppTest) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """The sidebar's saved views: name as typed -> (page, the query its link opens)."""
    return {
        link.proto.label: (link.proto.page, parse_qs(link.proto.query_string))
        for link in at.get("page_link")
        if link.proto.icon == VIEW_ICON
    }


def save_view(at: AppTest, page: str, name: str) -> AppTest:
    at.text_input(key=f"save_view_{page}_name").input(name)
    next(b for b in at.button if b.label == "Save").click()
    return at.run()


def open_view(at: AppTest, name: str) -> AppTest:
    """Follow a saved view's sidebar link: its page, rerun with its query."""
    page, query = saved_links(at)[plain_text(name)]
    at.query_params.clear()
    at.query_params.update(query)
    return at.switch_page(f"pages/{page}.py").run()


def url(at: AppTest) -> dict[str, list[str]]:
    return {k: [v] if isinstance(v, str) else list(v) for k, v in at.query_params.items()}


def stored_views(engine: Engine, username: str) -> dict[str, tuple[str, dict[str, list[str]]]]:
    with Session(engine) as session:
        rows = session.execute(
            select(SavedView.name, SavedView.page, SavedView.query)
            .join(User, User.id == SavedView.user_id)
            .where(User.username == username)
        ).all()
    return {row.name: (row.page, row.query) for row in rows}


def test_a_view_keeps_every_parameter_the_filter_form_writes() -> None:
    written = {"from", "to", "period", *URL_FILTERS.values()}
    assert written == set(saved_views.FILTER_PARAMS)


# --- the Forecast's scope in the address ------------------------------------------------------


def test_forecast_scope_comes_from_the_url_and_goes_back_to_it(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.query_params["scope"] = "account:OpenAI Prod"
    at.switch_page(FORECAST).run()
    assert not at.exception
    assert at.selectbox(key="forecast_scope").value == "account:OpenAI Prod"
    assert url(at)["scope"] == ["account:OpenAI Prod"]
    at.selectbox(key="forecast_scope").select("org").run()
    assert url(at)["scope"] == ["org"]


def test_forecast_ignores_a_scope_no_longer_on_offer(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.query_params["scope"] = "team:Gone"
    at.switch_page(FORECAST).run()
    assert not at.exception
    assert at.selectbox(key="forecast_scope").value == "org"
    assert url(at)["scope"] == ["org"]


# --- saved views --------------------------------------------------------------------------------


def test_a_saved_view_is_listed_and_opens_with_its_filters_and_grouping(
    app_as: AppAs, seeded_db: Engine
) -> None:
    at = app_as("vic", "viewer")
    day = today()
    start, end = day - dt.timedelta(days=2), day - dt.timedelta(days=1)  # no named period
    at.query_params.update(
        {"from": start.isoformat(), "to": end.isoformat(), "provider": "openai", "group": "Model"}
    )
    at.switch_page(USAGE).run()
    assert not at.exception
    total = money(expected_cost(start, end, day, account="OpenAI Prod"))
    assert metrics(at)["Cost in selection"] == total
    assert saved_links(at) == {}

    save_view(at, "usage", "OpenAI by model: two days")
    assert not at.exception
    assert [s.value for s in at.sidebar.success] == [
        plain_text("Saved the view “OpenAI by model: two days”: it is listed below the pages.")
    ]
    query = {
        "from": [start.isoformat()],
        "to": [end.isoformat()],
        "provider": ["openai"],
        "group": ["Model"],
    }
    assert saved_links(at) == {plain_text("OpenAI by model: two days"): ("usage", query)}
    assert stored_views(seeded_db, "vic") == {"OpenAI by model: two days": ("usage", query)}

    # Wander off on the same page, then open the view: it wins over what the widgets hold.
    at.selectbox(key="usage_period").select("Last 30 days").run()
    at.multiselect(key="usage_providers").unselect("openai").run()
    at.multiselect(key="usage_group_by").select("Day").run()
    assert metrics(at)["Cost in selection"] != total
    open_view(at, "OpenAI by model: two days")
    assert not at.exception
    assert at.date_input(key="usage_range").value == (start, end)
    assert at.multiselect(key="usage_providers").value == ["openai"]
    assert at.multiselect(key="usage_group_by").value == ["Model"]
    assert metrics(at)["Cost in selection"] == total
    assert url(at) == query
    # ... and from another page.
    at.query_params.clear()
    at.switch_page("pages/overview.py").run()
    open_view(at, "OpenAI by model: two days")
    assert metrics(at)["Cost in selection"] == total
    assert at.multiselect(key="usage_group_by").value == ["Model"]


def test_a_view_of_this_month_keeps_meaning_this_month(app_as: AppAs, seeded_db: Engine) -> None:
    at = app_as("fin", "finance")
    at.switch_page(EXPORTS).run()
    assert at.selectbox(key="export_period").value == "This month"
    at.multiselect(key="export_accounts").select("Anthropic Team").run()
    save_view(at, "exports", "Anthropic, this month")
    assert not at.exception
    stored = {"period": ["This month"], "account": ["Anthropic Team"]}
    assert stored_views(seeded_db, "fin") == {"Anthropic, this month": ("exports", stored)}
    at.selectbox(key="export_period").select("Last month").run()
    open_view(at, "Anthropic, this month")
    day = today()
    assert at.date_input(key="export_range").value == (day.replace(day=1), day)
    assert at.selectbox(key="export_period").value == "This month"
    assert at.multiselect(key="export_accounts").value == ["Anthropic Team"]


def test_a_forecast_view_opens_its_scope(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.switch_page(FORECAST).run()
    at.selectbox(key="forecast_scope").select("account:OpenAI Prod").run()
    save_view(at, "forecast", "OpenAI Prod forecast")
    assert saved_links(at) == {
        plain_text("OpenAI Prod forecast"): ("forecast", {"scope": ["account:OpenAI Prod"]})
    }
    at.selectbox(key="forecast_scope").select("org").run()
    open_view(at, "OpenAI Prod forecast")
    assert not at.exception
    assert at.selectbox(key="forecast_scope").value == "account:OpenAI Prod"


def test_views_are_their_owners_alone_and_can_be_deleted(app_as: AppAs) -> None:
    fin = app_as("fin", "finance")
    fin.switch_page(USAGE).run()
    save_view(fin, "usage", "Fin's month")
    save_view(fin, "usage", "Fin's other")
    assert set(saved_links(fin)) == {plain_text("Fin's month"), plain_text("Fin's other")}

    alice = app_as("alice", "admin")
    alice.switch_page(USAGE).run()
    assert saved_links(alice) == {}
    assert not any(s.key == "saved_view_delete" for s in alice.selectbox)

    delete = fin.selectbox(key="saved_view_delete")
    chosen = next(o for o in delete.options if o == "Fin's month")
    delete.select(chosen)
    fin.button(key="saved_view_delete_go").click().run()
    assert not fin.exception
    assert [s.value for s in fin.sidebar.success] == [plain_text("Deleted the view “Fin's month”.")]
    assert set(saved_links(fin)) == {plain_text("Fin's other")}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "Not saved: give the view a name."),
        ("my view", "Not saved: you already have a view named 'My View'; choose another name, "
         "or delete that view first."),
    ],
)  # fmt: skip
def test_bad_names_say_what_to_do_and_change_nothing(
    app_as: AppAs, seeded_db: Engine, name: str, message: str
) -> None:
    at = app_as("vic", "viewer")
    at.switch_page(USAGE).run()
    save_view(at, "usage", "My View")
    save_view(at, "usage", name)
    assert not at.exception
    assert errors(at) == [message]
    assert list(stored_views(seeded_db, "vic")) == ["My View"]


def test_a_views_name_is_shown_as_text(app_as: AppAs) -> None:
    at = app_as("vic", "viewer")
    at.switch_page(USAGE).run()
    hostile = "**big** [click](http://evil.example) <b>x</b>"
    save_view(at, "usage", hostile)
    assert not at.exception
    assert list(saved_links(at)) == [plain_text(hostile)]


# --- a shared link through the sign-in ------------------------------------------------------------


def test_a_shared_link_survives_the_sign_in(
    seeded_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(auth, "redirect", sent.append)  # the browser's next address
    day = today()
    start = day - dt.timedelta(days=3)
    shared = {
        "from": start.isoformat(),
        "to": day.isoformat(),
        "provider": "openai",
        "group": "Model",
    }
    at = new_app()
    at.query_params.update({**shared, "signed_out": "1"})
    at.switch_page(USAGE).run()
    assert not at.exception
    assert current_user_of(at) is None
    assert not at.metric and not at.multiselect  # the sign-in form, nothing of the page
    sign_in(at, "vic", PASSWORD)
    assert not at.exception
    route = urlsplit(sent[-1])
    assert route.path == "/auth/session"
    (landing,) = parse_qs(route.query)["next"]
    assert landing == "usage?" + "&".join(f"{k}={v}" for k, v in shared.items())
    at.run()  # the page after the browser came back from the cookie route
    assert current_user_of(at) == ("vic", "viewer")
    assert at.multiselect(key="usage_providers").value == ["openai"]
    assert at.multiselect(key="usage_group_by").value == ["Model"]
    assert metrics(at)["Cost in selection"] == money(
        expected_cost(start, day, day, account="OpenAI Prod")
    )


@pytest.mark.parametrize(("username", "lands_on_forecast"), [("fin", True), ("vic", False)])
def test_a_link_to_a_page_the_role_may_not_open_signs_in_at_home(
    seeded_db: Engine, monkeypatch: pytest.MonkeyPatch, username: str, lands_on_forecast: bool
) -> None:
    sent: list[str] = []
    monkeypatch.setattr(auth, "redirect", sent.append)
    at = new_app()
    at.query_params["scope"] = "account:OpenAI Prod"
    at.switch_page(FORECAST).run()
    sign_in(at, username, PASSWORD)
    (route,) = sent
    landing = parse_qs(urlsplit(route).query).get("next")
    assert landing == (["forecast?scope=account%3AOpenAI+Prod"] if lands_on_forecast else None)


def _hand_off_code(engine: Engine, username: str) -> str:
    with Session(engine) as session, session.begin():
        user = session.scalars(select(User).where(User.username == username)).one()
        policy = sessions.Policy(dt.timedelta(minutes=60), dt.timedelta(hours=12))
        return sessions.start(
            session=session, user=user, method="password", policy=policy
        ).handoff_code


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("usage?provider=openai&setup=tok&group=Model", "/usage?provider=openai&group=Model"),
        ("forecast?scope=team:Platform", "/forecast?scope=team%3APlatform"),
        ("//evil.example/usage", "/"),
        ("https://evil.example/", "/"),
        ("", "/"),
    ],
)  # fmt: skip
def test_the_sign_in_route_returns_only_to_one_of_our_pages(
    seeded_db: Engine, target: str, location: str
) -> None:
    web._runtime.cache_clear()  # the route's runtime, for this test's database
    try:
        client = TestClient(Starlette(routes=web.routes()))
        answer = client.get(
            "/auth/session",
            params={"code": _hand_off_code(seeded_db, "vic"), "next": target},
            headers={"sec-fetch-site": "same-origin"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == location
        assert web.COOKIE_NAME in answer.headers["set-cookie"]
        # A used code sets no cookie, and still goes back to the (checked) page.
        again = client.get(
            "/auth/session",
            params={"code": "used-or-wrong", "next": target},
            headers={"sec-fetch-site": "same-origin"},
            follow_redirects=False,
        )
        assert again.headers["location"] == location
        assert "set-cookie" not in again.headers
    finally:
        web._runtime.cache_clear()
