"""Copilot, OpenRouter, DeepSeek, Groq and Perplexity connectors against the fake server."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.fakes.provider_server import (
    DEEPSEEK_KEY,
    GITHUB_ORG,
    GITHUB_TOKEN,
    GROQ_KEY,
    OPENROUTER_INFERENCE_KEY,
    OPENROUTER_KEY,
    PERPLEXITY_KEY,
    Reply,
    load,
)
from tracker.core.crypto import Secret
from tracker.providers.base import (
    ProviderAuthError,
    ProviderNotSupported,
    ProviderPermissionError,
    ProviderRateLimited,
)
from tracker.providers.deepseek import DeepSeekConnector
from tracker.providers.github_copilot import CopilotConnector
from tracker.providers.openai_compatible import GroqConnector, PerplexityConnector
from tracker.providers.openrouter import OpenRouterConnector


def copilot(server, http, key=GITHUB_TOKEN):
    return CopilotConnector(
        credential=Secret(key), http=http, base_url=server.url, organization=GITHUB_ORG
    )


def test_copilot_seats_are_prorated_per_day(server, http):
    rows = list(copilot(server, http).fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 9, 1)))
    seats = [r for r in rows if r.usage_type == "seats"]
    counts = {r.day: r.other_units for r in seats}
    # Two seats from page 1 all month; the third (page 2) from Aug 2.
    assert counts[dt.date(2026, 8, 1)] == 2 and counts[dt.date(2026, 8, 2)] == 3
    assert len(seats) == 31
    per_seat_day = Decimal(19) / 31
    assert seats[0].billed_cost == (2 * per_seat_day).quantize(Decimal("0.000001"))
    month = sum(r.billed_cost for r in seats)
    assert abs(month - (2 * 19 + Decimal(19) * 30 / 31)) < Decimal("0.0001")
    assert server.count(f"/orgs/{GITHUB_ORG}/copilot/billing/seats") == 2


def test_copilot_premium_requests_and_ai_credits_are_billed(server, http):
    rows = list(copilot(server, http).fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 8, 4)))
    premium = [r for r in rows if r.usage_type == "premium_requests"]
    credits = [r for r in rows if r.usage_type == "ai_credits"]
    assert {r.day for r in premium} == {dt.date(2026, 8, 2)}
    assert sum(r.billed_cost for r in premium) == Decimal("12.0")
    assert sum(r.requests for r in premium) == 750
    assert {r.user_id for r in premium} == {""}  # no user's report explains any of it
    # Per user, and the rest (a user no longer holding a seat) without one: same total.
    assert sorted((r.user_id, r.model, r.billed_cost, r.other_units) for r in credits) == [
        ("", "GPT-5", Decimal("0.5"), Decimal(700)),
        ("dlee-acme", "GPT-5", Decimal("3.0"), Decimal(4000)),
        ("rsingh-acme", "GPT-5", Decimal("1.5"), Decimal(1500)),
    ]
    assert sum(r.billed_cost for r in credits) == Decimal("5.0")
    query = server.last(f"/organizations/{GITHUB_ORG}/settings/billing/ai_credit/usage").query
    assert query == {"year": ["2026"], "month": ["8"], "day": ["3"], "user": ["rsingh-acme"]}


def test_copilot_without_enhanced_billing_still_gives_seats(server, http):
    server.enhanced_billing = False
    rows = list(copilot(server, http).fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 8, 4)))
    assert {r.usage_type for r in rows} == {"seats"}


def test_copilot_test_and_errors(server, http):
    assert copilot(server, http).test() == "Copilot business for acme-corp: 3 seat(s)"
    with pytest.raises(ProviderAuthError, match="Bad credentials"):
        copilot(server, http, key="ghp_wrongwrongwrong").test()
    server.script(
        f"/orgs/{GITHUB_ORG}/copilot/billing",
        Reply(403, load("github/error_403_secondary_rate_limit_observed.json")),
    )
    with pytest.raises(ProviderRateLimited):
        copilot(server, http).test()


def test_openrouter_balance_activity_and_key_check(server, http):
    conn = OpenRouterConnector(
        credential=Secret(OPENROUTER_KEY), http=http, base_url=server.url + "/api/v1"
    )
    assert "management key" in conn.test()
    balance = conn.fetch_balance()
    assert balance.remaining == Decimal("107.6825") and balance.currency == "USD"
    rows = list(conn.fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 8, 4)))
    assert sum(r.billed_cost for r in rows) == Decimal("5.282")
    assert sum(r.input_tokens for r in rows) == 1_840_000 and sum(r.requests for r in rows) == 1181
    assert list(conn.fetch_usage(dt.date(2026, 8, 3), dt.date(2026, 8, 4))) == []


def test_openrouter_regular_key_is_told_to_use_a_management_key(server, http):
    conn = OpenRouterConnector(
        credential=Secret(OPENROUTER_INFERENCE_KEY), http=http, base_url=server.url + "/api/v1"
    )
    with pytest.raises(ProviderPermissionError, match="management key"):
        conn.test()
    with pytest.raises(ProviderPermissionError, match="management key"):
        conn.fetch_balance()


def test_deepseek_balance_currency_as_given(server, http):
    conn = DeepSeekConnector(credential=Secret(DEEPSEEK_KEY), http=http, base_url=server.url)
    assert conn.fetch_balance().remaining == Decimal("24.87")
    assert conn.fetch_balance().currency == "USD"
    server.deepseek_balance = load("deepseek/balance_cny.json")
    balance = conn.fetch_balance()
    assert (balance.remaining, balance.currency) == (Decimal("110.00"), "CNY")
    assert "110.00 CNY" in conn.test()
    with pytest.raises(ProviderNotSupported):
        list(conn.fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 8, 2)))
    bad = DeepSeekConnector(credential=Secret("sk-bad-key-0000"), http=http, base_url=server.url)
    with pytest.raises(ProviderAuthError, match="401"):
        bad.test()


@pytest.mark.parametrize(
    ("cls", "key", "suffix"),
    [(GroqConnector, GROQ_KEY, "/openai/v1"), (PerplexityConnector, PERPLEXITY_KEY, "")],
)
def test_openai_compatible_key_check_keeps_rate_limits(server, http, cls, key, suffix):
    conn = cls(credential=Secret(key), http=http, base_url=server.url + suffix)
    assert "3 model(s)" in conn.test()
    assert conn.rate_limits.headers["x-ratelimit-limit-requests"] == "14400"
    assert not conn.has_usage_api
    with pytest.raises(ProviderNotSupported, match="CSV"):
        list(conn.fetch_usage(dt.date(2026, 8, 1), dt.date(2026, 8, 2)))
    bad = cls(credential=Secret("wrong-key-0000"), http=http, base_url=server.url + suffix)
    with pytest.raises(ProviderAuthError):
        bad.test()
