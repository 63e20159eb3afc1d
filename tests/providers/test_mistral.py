"""Mistral's Admin API connector against its fake (tests/fakes/mistral_server.py): months per
category, model and workspace spread over their days to the micro-dollar, the workspace
pages, another currency refused, 429 with Retry-After, errors and unreadable bodies."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.mistral_server import BASE, DEFAULT, MISTRAL_KEY, RESEARCH, MistralServer
from tests.fakes.provider_server import Reply
from tracker.core.crypto import Secret
from tracker.providers import mistral
from tracker.providers.base import ProviderAuthError, ProviderRateLimited, ProviderResponseError
from tracker.providers.mistral import MistralConnector

USAGE = f"{BASE}/usage"
JUL1, AUG1, AUG5 = dt.date(2026, 7, 1), dt.date(2026, 8, 1), dt.date(2026, 8, 5)


@pytest.fixture
def mistral_server() -> Iterator[MistralServer]:
    with MistralServer() as fake:
        yield fake


def connector(server: MistralServer, http, key: str = MISTRAL_KEY) -> MistralConnector:
    return MistralConnector(credential=Secret(key), http=http, base_url=server.admin_url)


def by_month(rows) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[f"{r.day:%Y-%m}"] += r.billed_cost
    return dict(totals)


def test_months_by_category_model_and_workspace(mistral_server, http):
    rows = list(connector(mistral_server, http).fetch_usage(JUL1, AUG5))
    assert by_month(rows) == {"2026-07": Decimal("68.51"), "2026-08": Decimal("9.30")}
    july: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.day.month == 7:
            july[(r.project_id, r.usage_type, r.model)] += r.billed_cost
    assert july == {
        (DEFAULT, "cost:completion", "mistral-large-latest"): Decimal("40.00"),
        (DEFAULT, "cost:completion", "mistral-small-latest"): Decimal("3.10"),
        (DEFAULT, "cost:ocr", ""): Decimal("6.20"),
        (RESEARCH, "cost:completion", "mistral-large-latest"): Decimal("6.50"),
        (RESEARCH, "cost:fine_tuning", "ft:open-mistral-7b:acme:20260702"): Decimal("12.40"),
        # The organisation's figure beyond its workspaces: kept without a workspace.
        ("", "cost:libraries_api", ""): Decimal("0.31"),
    }
    names = {r.project_id: r.project_name for r in rows}
    assert names == {DEFAULT: "Default Workspace", RESEARCH: "Research", "": None}
    # Spread evenly over the days: $40.00 over July's 31 days, the remainder on the last.
    large = sorted(
        (r.day, r.billed_cost)
        for r in rows
        if r.project_id == DEFAULT and r.model == "mistral-large-latest" and r.day.month == 7
    )
    assert len(large) == 31
    assert large[0] == (JUL1, Decimal("1.290322"))
    assert large[-1] == (dt.date(2026, 7, 31), Decimal("1.290323"))
    # August so far: up to the last day asked for (the 4th), $9.30 in four shares.
    august = [r.billed_cost for r in rows if r.day.month == 8]
    assert august == [Decimal("2.325")] * 4
    assert all(r.input_tokens == 0 and r.requests == 0 for r in rows)


def test_the_workspace_list_is_read_page_after_page(mistral_server, http):
    list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))
    assert mistral_server.count(f"{BASE}/workspaces") == 2
    asked = {
        (r.query.get("workspace_id", [""])[0]) for r in mistral_server.requests if r.path == USAGE
    }
    assert asked == {"", DEFAULT, RESEARCH}


@given(st.decimals(min_value=0, max_value=10**6, places=6), st.integers(1, 31))
def test_a_spread_adds_up_to_the_total(total, days):
    shares = mistral._spread(total, days)
    assert sum(shares) == total and len(shares) == days
    assert max(shares) - min(shares) <= Decimal("0.000001")


def test_another_currency_is_refused(mistral_server, http):
    mistral_server.usage[(2026, 7, None)]["currency"] = "EUR"
    with pytest.raises(ProviderResponseError, match="in EUR; the tracker keeps US dollars"):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))


def test_workspaces_beyond_the_organisation_are_refused(mistral_server, http):
    mistral_server.usage[(2026, 7, RESEARCH)]["chat"] = {"cost": "1.00"}
    with pytest.raises(ProviderResponseError, match="costs the organisation does not"):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))
    mistral_server.usage[(2026, 7, RESEARCH)]["chat"] = None
    mistral_server.usage[(2026, 7, RESEARCH)]["ocr"] = {"cost": "7.00"}
    with pytest.raises(ProviderResponseError, match="ocr cost of 2026-07 is more than"):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))


@pytest.mark.parametrize(
    ("category", "value", "message"),
    [
        ("ocr", {"pages": 120}, "the ocr usage has no cost this tracker can read"),
        ("completion", {"models": ["large"]}, "a completion model entry is not an object"),
        ("completion", {"models": [{"model": "m", "tokens": 3}]}, "model m has no cost"),
        ("audio", {"cost": "free"}, "'free'"),
        ("chat", {"cost": "-2"}, "negative chat cost"),
    ],
)
def test_unreadable_categories_are_refused(mistral_server, http, category, value, message):
    mistral_server.usage[(2026, 7, None)][category] = value
    with pytest.raises(ProviderResponseError, match=message):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))


def test_a_usage_answer_that_is_not_an_object_is_refused(mistral_server, http):
    mistral_server.script(USAGE, Reply(200, [1, 2]))
    with pytest.raises(ProviderResponseError, match="not an object"):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))


def test_429_with_retry_after_is_waited_out(mistral_server, http):
    mistral_server.script(USAGE, Reply(429, {"detail": "rate limited"}, {"Retry-After": "1"}))
    started = time.monotonic()
    rows = list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))
    assert time.monotonic() - started >= 0.9
    assert by_month(rows) == {"2026-07": Decimal("68.51")}


def test_a_429_storm_gives_up_with_rate_limited(mistral_server, http):
    mistral_server.storm(USAGE, Reply(429, {"detail": "rate limited"}, {"Retry-After": "0"}))
    with pytest.raises(ProviderRateLimited):
        list(connector(mistral_server, http).fetch_usage(JUL1, AUG1))


def test_a_wrong_key_is_refused_without_echoing_it(mistral_server, http):
    with pytest.raises(ProviderAuthError, match="rejected the key") as refused:
        connector(mistral_server, http, key="mst-wrong-key-000000").test()
    assert "mst-wrong" not in str(refused.value)


def test_test_reads_this_month_and_says_when_the_currency_cannot_be_kept(
    mistral_server, http, monkeypatch
):
    monkeypatch.setattr(mistral, "today_utc", lambda: dt.date(2026, 7, 20))
    check = connector(mistral_server, http)
    assert check.test() == "admin key accepted; July 2026 so far: 68.51 USD"
    mistral_server.usage[(2026, 7, None)]["currency"] = "EUR"
    assert check.test() == (
        "admin key accepted; July 2026 so far: 68.51 EUR; usage in EUR is not stored: "
        "the tracker keeps US dollars"
    )
