"""Anthropic's Usage and Cost Analytics API (beta) against the fake server: billed and list
amounts per actor, key, workspace, model, product and tier; windows; fallback to the cost
report when the key may not use it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.fakes.provider_server import (
    ANALYTICS_BETA,
    ANALYTICS_COST,
    ANTHROPIC_KEY,
    Reply,
    _buckets,
    load,
)
from tracker.core.crypto import Secret
from tracker.providers import anthropic
from tracker.providers.anthropic import AnthropicConnector
from tracker.providers.base import ProviderRateLimited

AUG1, AUG4 = dt.date(2026, 8, 1), dt.date(2026, 8, 4)
COST_REPORT = "/v1/organizations/cost_report"
PAGES = ("anthropic/analytics/cost_page1.json", "anthropic/analytics/cost_page2.json")


@pytest.fixture
def analytics(server):
    server.anthropic_analytics = _buckets(*PAGES)
    return server


def connector(server, http):
    return AnthropicConnector(credential=Secret(ANTHROPIC_KEY), http=http, base_url=server.url)


def billed(rows):
    return [r for r in rows if r.usage_type.startswith("cost:")]


def test_billed_and_list_amounts_per_actor_product_and_key(analytics, http):
    rows = list(connector(analytics, http).fetch_usage(AUG1, AUG4))
    costs = billed(rows)
    per_day: dict[dt.date, Decimal] = {}
    for r in costs:
        per_day[r.day] = per_day.get(r.day, Decimal(0)) + r.billed_cost
    # The same money as the legacy cost report's ungrouped days, to the cent.
    assert per_day == {AUG1: Decimal("12.895"), dt.date(2026, 8, 2): Decimal("11.6375"),
                       dt.date(2026, 8, 3): Decimal("9.44")}  # fmt: skip
    assert sum(r.list_cost for r in costs) == Decimal("37.2317")
    assert analytics.count(COST_REPORT) == 0  # never both for one day
    first = costs[0]
    assert (first.usage_type, first.api_key_id, first.api_key_name, first.user_id) == (
        "cost:api", "apikey_01Rj2N8SVvo6BePZj99NhmiT", "support-agent prod", "")  # fmt: skip
    assert (first.billed_cost, first.list_cost, first.requests) == (
        Decimal("7.605"), Decimal("8.45"), 412)  # fmt: skip
    assert first.project_name == "Support agents" and first.service_tier == "standard"
    users = {(r.user_id, r.user_name, r.usage_type) for r in costs if r.user_id}
    assert users == {
        ("user_01WCz1FkmYMm4gnmykNKUu3Q", "alice@acme.example", "cost:claude_code"),
        ("user_01WCz1FkmYMm4gnmykNKUu3Q", "alice@acme.example", "cost:claude_ai"),
        ("svcacct_01Hq8Ma2", None, "cost:api"),
    }
    # Tokens still come from the usage report.
    assert sum(r.output_tokens for r in rows if r.usage_type == "messages") == 1_530_000


def test_headers_groups_and_pages(analytics, http):
    list(connector(analytics, http).fetch_usage(AUG1, AUG4))
    assert analytics.count(ANALYTICS_COST) == 4  # 7 rows, 2 a page
    last = analytics.last(ANALYTICS_COST)
    assert last.headers["anthropic-beta"] == ANALYTICS_BETA
    assert last.query["group_by[]"] == [
        "actor", "api_key_id", "workspace_id", "model", "product", "service_tier"]  # fmt: skip
    assert last.query["time_bucket_width"] == ["1d"]
    assert (last.query["starting_at"], last.query["ending_at"]) == (
        ["2026-08-01T00:00:00Z"], ["2026-08-04T00:00:00Z"])  # fmt: skip
    messages = analytics.last("/v1/organizations/usage_report/messages")
    assert "anthropic-beta" not in messages.headers


def test_long_ranges_are_asked_in_31_day_windows_and_old_days_fall_back(analytics, http):
    rows = list(connector(analytics, http).fetch_usage(dt.date(2025, 12, 20), dt.date(2026, 3, 1)))
    windows = [
        (r.query["starting_at"][0][:10], r.query["ending_at"][0][:10])
        for r in analytics.requests
        if r.path == ANALYTICS_COST
    ]
    assert windows == [("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01")]
    report = analytics.last(COST_REPORT).query
    assert (report["starting_at"], report["ending_at"]) == (
        ["2025-12-20T00:00:00Z"], ["2026-01-01T00:00:00Z"])  # fmt: skip
    assert billed(rows) == []  # the fakes have no money on those days


@pytest.mark.parametrize("status", [400, 403, 404])
def test_a_refusal_falls_back_to_the_cost_report_for_the_pass(analytics, http, status):
    analytics.storm(ANALYTICS_COST, Reply(status, load("anthropic/error_403_permission.json")))
    conn = connector(analytics, http)
    rows = list(conn.fetch_usage(AUG1, AUG4))
    assert sum(r.billed_cost for r in billed(rows)) == Decimal("33.9725")
    assert all(r.list_cost is None for r in rows)
    assert "refused" in (conn.analytics_refused or "")
    list(conn.fetch_usage(AUG1, AUG4))
    assert analytics.count(ANALYTICS_COST) == 1  # remembered for the pass


def test_a_key_without_analytics_uses_the_cost_report(server, http):
    rows = list(connector(server, http).fetch_usage(AUG1, AUG4))
    assert {r.usage_type for r in billed(rows)} >= {"cost:output_tokens", "cost:web_search"}


def test_an_expired_cursor_starts_the_window_again(analytics, http):
    expired = Reply(410, {"type": "error", "error": {"type": "not_found_error"}})
    analytics.script(ANALYTICS_COST, Reply(200, load(PAGES[0])), expired)
    rows = list(connector(analytics, http).fetch_usage(AUG1, AUG4))
    assert sum(r.billed_cost for r in billed(rows)) == Decimal("33.9725")


def test_429_is_waited_out_and_a_storm_is_rate_limited(analytics, http):
    limited = Reply(429, load("anthropic/error_429_rate_limit.json"), {"retry-after": "0"})
    analytics.script(ANALYTICS_COST, limited)
    assert len(billed(list(connector(analytics, http).fetch_usage(AUG1, AUG4)))) == 7
    analytics.storm(ANALYTICS_COST, limited)
    with pytest.raises(ProviderRateLimited):
        list(connector(analytics, http).fetch_usage(AUG1, AUG4))


def test_days_outside_the_last_365_are_not_asked(analytics, http, monkeypatch):
    monkeypatch.setattr(anthropic.units, "today_utc", lambda: dt.date(2027, 8, 2))
    list(connector(analytics, http).fetch_usage(AUG1, AUG4))
    assert analytics.last(ANALYTICS_COST).query["starting_at"] == ["2026-08-02T00:00:00Z"]
    assert analytics.last(COST_REPORT).query["ending_at"] == ["2026-08-02T00:00:00Z"]
