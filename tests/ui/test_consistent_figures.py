"""AppTests for figures that must not contradict each other: status badges, comparisons of
like with like, requests a provider does not count, and messages that point only to pages
the reader can open."""

from __future__ import annotations

import datetime as dt
import math

from tests.ui.test_app import AppAs, metrics, today
from tracker.core import units

OVERVIEW = "pages/overview.py"
USAGE = "pages/usage.py"
FORECAST = "pages/forecast.py"


def texts(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.value.replace("\\", "") for m in [*at.markdown, *at.caption]]


def test_a_failed_sync_has_its_own_badge_and_the_budget_status_says_what_it_is(
    app_as: AppAs,
) -> None:
    at = app_as("fin", "finance")
    at.switch_page(OVERVIEW).run()
    assert not at.exception
    shown = texts(at)
    # The Anthropic account's last sync failed: a red badge says so, beside its budget status
    # (never a bare green "OK"), and the note sends finance to a page it can open.
    assert any(":red-badge[" in t and "Last sync failed" in t for t in shown), shown
    assert not any("badge[OK]" in t for t in shown)
    assert any("the error is on Sync health" in t for t in shown)
    # The organisation's headline has a status badge in the same palette as the cards.
    assert any("Organisation budget:" in t and "-badge[" in t for t in shown), shown


def test_a_viewer_is_not_sent_to_pages_it_cannot_open(app_as: AppAs) -> None:
    at = app_as("vic", "viewer")
    at.switch_page(OVERVIEW).run()
    assert not at.exception
    shown = " ".join(texts(at))
    assert "Sync health" not in shown and "Forecast page" not in shown
    assert "ask an admin to look at it" in shown
    helps = " ".join(m.help or "" for m in at.metric)
    assert "Forecast page" not in helps


def test_month_to_date_compares_complete_days_with_the_same_days_last_month(
    app_as: AppAs,
) -> None:
    at = app_as("fin", "finance")
    at.switch_page(OVERVIEW).run()
    day = today()
    same = next(m for m in at.metric if m.label == "Same days last month")
    if day.day == 1:
        assert same.value == "—"
        return
    yesterday = day - dt.timedelta(days=1)
    prev_start, prev_end = units.same_days_last_month(yesterday)
    assert f"{prev_start:%d %b} – {prev_end:%d %b %Y}" in (same.help or "")
    assert "today is still arriving" in (same.help or "")


def test_requests_a_provider_does_not_count_read_as_missing(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.switch_page(OVERVIEW).run()
    models = at.dataframe[0].value
    anthropic = models[models["provider"] == "Anthropic"]
    assert not anthropic.empty
    # Anthropic's usage report has no request count: missing ("—" on screen), not 0.
    assert all(math.isnan(v) for v in anthropic["requests"]), anthropic
    openai = models[models["provider"] == "OpenAI"]
    assert all(v > 0 for v in openai["requests"])


def test_the_explorer_names_providers_and_the_parts_of_cost(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.switch_page(USAGE).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert {"billed_part", "estimated_part"} <= set(table.columns)
    assert "estimated_cost" not in table.columns
    assert set(table["provider"]) <= {"OpenAI", "Anthropic", "Groq", "DeepSeek", "OpenRouter"}
    assert "openai" not in set(table["provider"])
    # The provider filter offers ids (the URL keeps them) shown by their names.
    assert "OpenAI" in at.multiselect(key="usage_providers").options


def test_the_forecast_says_when_the_budget_lasts_past_month_end(app_as: AppAs) -> None:
    at = app_as("fin", "finance")
    at.switch_page(FORECAST).run()
    assert not at.exception
    runs_out = next(m for m in at.metric if m.label == "Budget runs out")
    month_end = units.month_bounds(today())[1]
    assert (
        runs_out.value == "—"
        or runs_out.value == f"After {month_end:%d %b}"
        or (len(runs_out.value) <= 6)
    ), runs_out.value
    actual = next(m for m in at.metric if m.label == "Actual to date")
    assert "today's usage so far" in (actual.help or "")
    assert metrics(at)["Actual to date"].startswith("$")
